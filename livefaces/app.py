"""The app: cameras opened and checked, outputs built, one shared detector, the session run.

`open_cameras` opens every source (reading its first frame) and checks every output before
TensorFlow loads, so bad input fails fast with one line. In service mode (a config file, or
several cameras: a standing installation rather than a try at the command line) a live camera
that cannot be reached is not fatal: it is retried with backoff while the others run.
`run_session` then builds the detector, each camera's runner and outputs, and runs them on the
threaded runtime with the window (if any) pumped on this thread and the status panel on stderr.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from livefaces.capture import LIVE_KINDS, Source, SourceError, SourceInfo, open_source
from livefaces.frames import Frame
from livefaces.options import CameraSpec, RunConfig
from livefaces.runtime.camera_runner import CameraRunner, RunnerSettings
from livefaces.runtime.threaded import CameraLimits, CameraSetup, SessionSummary, Sink

if TYPE_CHECKING:
    from livefaces.tiles import TileBoard

TRACKING_BUDGET = 0.8  # share of real time the shared detector may be planned for, over all cameras


class BadInput(Exception):
    """An argument, source or output the run cannot start with (exit code 2)."""


def wants_tracking(detect_every: int | str | None, live: bool, realtime: bool) -> bool:
    """Tracking for `--detect-every auto`, and by default for live sources and `--realtime` files."""
    return detect_every == "auto" or (detect_every is None and (live or realtime))


@dataclass
class OpenCamera:
    """A camera whose source is open (its first frame read) and whose outputs were checked; in
    service mode, a live camera whose opening failed (`open_error`, no `frames`) is retried."""

    spec: CameraSpec
    source: Source
    frames: Iterator[Frame] | None
    tracking: bool
    open_error: SourceError | None = None

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()  # type: ignore[attr-defined]

    @property
    def info(self) -> SourceInfo:
        return self.source.info


def service_mode(config: RunConfig) -> bool:
    """A config file or several cameras: an installation meant to keep running, where a camera
    that is down at start-up is retried and must not stop the others. A single `--source` is
    someone trying a camera: a typo in its address must fail at once."""
    return config.config_path is not None or len(config.cameras) > 1


def open_cameras(config: RunConfig) -> list[OpenCamera]:
    """Open every camera's source and check its outputs; raises `BadInput` or `SourceError`
    (naming the camera when there are several) before anything else starts, except for live
    cameras that cannot be reached in service mode (they are retried once the session runs)."""
    opened: list[OpenCamera] = []
    try:
        for spec in config.cameras:
            opened.append(_open_camera(spec, config, len(config.cameras) > 1, service_mode(config)))
    except BaseException:
        for camera in opened:
            camera.close()
        raise
    return opened


def _open_camera(spec: CameraSpec, config: RunConfig, named: bool, service: bool) -> OpenCamera:
    options = spec.options
    try:
        source = open_source(spec.source, options.capture_settings())
        check_outputs(config, spec.name, source.info.kind)
        tracking = wants_tracking(options.detect_every, source.info.live, options.realtime)
        if tracking and source.info.kind == "images":
            raise BadInput("--detect-every auto and --realtime track faces across video frames, not images")
        try:
            frames = source.frames()  # reads the first frame: a bad source fails here, before any output
        except SourceError as error:
            if not (service and source.info.kind in LIVE_KINDS):
                raise
            return OpenCamera(spec, source, None, tracking, open_error=error)
    except (BadInput, SourceError) as error:
        if named:
            raise type(error)(f"camera {spec.name}: {error}") from None
        raise
    return OpenCamera(spec, source, frames, tracking)


def _check_writable(path: Path, what: str) -> None:
    parent = path.parent if path.parent != Path("") else Path(".")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, {what} must be a file")
    if not parent.is_dir():
        raise BadInput(f"{path}: cannot write {what}, folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadInput(f"{path}: cannot write {what}, permission denied")


def check_outputs(config: RunConfig, camera: str, source_kind: str) -> None:
    """Refuse output paths that cannot be written and codecs that cannot record to them,
    before anything starts."""
    from livefaces.recorder import VIDEO_SUFFIXES, check_codec

    output = config.output_for(camera)
    if output is not None and source_kind == "images":
        if output.exists() and not output.is_dir():
            raise BadInput(f"{output}: for image sources --output must be a folder")
        parent = output.parent if output.parent != Path("") else Path(".")
        if not output.exists() and not parent.is_dir():
            raise BadInput(f"{output}: cannot create the folder, {parent} does not exist")
        if not os.access(output if output.exists() else parent, os.W_OK):
            raise BadInput(f"{output}: cannot write there, permission denied")
    elif output is not None:
        if output.suffix.lower() not in VIDEO_SUFFIXES:
            raise BadInput(f"{output}: the output video must end in one of {', '.join(VIDEO_SUFFIXES)}")
        _check_writable(output, "the video")
        try:
            check_codec(config.codec, output)
        except ValueError as error:
            raise BadInput(str(error)) from None
    json_path = config.json_for(camera)
    if json_path and json_path != "-":
        _check_writable(Path(json_path), "the JSON log")


def _runner_settings(camera: OpenCamera, cameras: int) -> RunnerSettings:
    from livefaces.cascade import Settings

    options, info = camera.spec.options, camera.info
    every = options.detect_every
    return RunnerSettings(
        tracking=camera.tracking,
        detect_every=every if isinstance(every, int) else None,
        detect_width=options.detect_width,
        min_confidence=options.min_confidence,
        live=info.live,
        adaptive=info.live,
        budget=TRACKING_BUDGET / cameras,
        cascade=Settings(min_face_size=options.min_face_size, thresholds=options.thresholds),
        patches=True,
    )


def _sinks(config: RunConfig, camera: OpenCamera, board: TileBoard | None) -> list[Sink]:
    """The camera's outputs: its window tile, annotated video or images, JSON Lines."""
    from livefaces.recorder import VideoRecorder
    from livefaces.sinks import ImageFolderSink, JsonLinesSink
    from livefaces.tiles import TileSink

    sinks: list[Sink] = []
    name, info = camera.spec.name, camera.info
    if board is not None:
        sinks.append(TileSink(board, name))
    output = config.output_for(name)
    if output is not None and info.kind == "images":
        sinks.append(ImageFolderSink(output, info.path))
    elif output is not None:
        audio = info.path if info.kind == "file" else None
        recorder = VideoRecorder(
            output, info.fps, config.codec, config.crf, config.preset, audio_from=audio, crash_safe=info.live
        )
        sinks.append(recorder)
    json_path = config.json_for(name)
    if json_path:
        sinks.append(JsonLinesSink(json_path))
    return sinks


@dataclass(frozen=True)
class SessionOutcome:
    """A finished session and what the report needs about its cameras."""

    summary: SessionSummary
    cameras: tuple[OpenCamera, ...]


def run_session(
    config: RunConfig,
    cameras: list[OpenCamera],
    console: Console,
    stop: threading.Event,
    abort: threading.Event,
) -> SessionOutcome:
    """Build the shared detector, every camera's runner and outputs, and run them until every
    camera ends or `stop` is set. Always finalizes every output."""
    from livefaces.display import TiledWindow, display_available
    from livefaces.panel import SessionReporter
    from livefaces.runtime.threaded import Session
    from livefaces.tiles import TileBoard

    try:
        show = config.display and display_available()
        if config.display and not show:
            console.print(
                "livefaces: no display available, running headless (--no-display)",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
        from livefaces.detector import MTCNN

        detector = MTCNN(device=config.device)
        board = TileBoard([camera.spec.name for camera in cameras]) if show else None
        setups = [
            CameraSetup(
                camera.source,
                CameraRunner(camera.spec.name, camera.info.fps, _runner_settings(camera, len(cameras))),
                _sinks(config, camera, board),
                CameraLimits(config.max_frames, config.duration),
                camera.frames,
                reconnect=camera.spec.options.reconnect_settings(),
                open_error=camera.open_error,
            )
            for camera in cameras
        ]
    except BaseException:
        for camera in cameras:
            camera.close()
        raise

    def report(line: str) -> None:  # above the live panel, on the console the panel uses
        console.print(line, highlight=False, soft_wrap=True, markup=False)

    session = Session(setups, detector, detector.device, report=report)
    window = None
    if board is not None:
        title = f"livefaces - {cameras[0].info.name}" if len(cameras) == 1 else "livefaces"
        window = TiledWindow(board, title, stop)
    reporter = SessionReporter(session.status, console)
    reporter.start()
    try:
        summary = session.run(stop, abort, pump=window.pump if window is not None else None)
    finally:
        reporter.stop()
        if window is not None:
            window.close()
    return SessionOutcome(summary, tuple(cameras))
