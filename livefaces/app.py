"""The app: cameras opened and checked, outputs built, one shared detector, the session run.

`open_cameras` opens every source (reading its first frame) and checks every output before
TensorFlow loads, so bad input fails fast with one line. In service mode (a config file, or
several cameras: a standing installation rather than a try at the command line) a live camera
that cannot be reached is not fatal: it is retried with backoff while the others run.
`run_session` then builds the detector, each camera's runner and outputs, and runs them on the
threaded runtime with the window (if any) pumped on this thread and the status panel on stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from livefaces.capture import LIVE_KINDS, NothingLeft, Source, SourceError, SourceInfo, open_source
from livefaces.frames import Frame
from livefaces.options import CameraSpec, RunConfig
from livefaces.runtime.camera_runner import COARSE_PIXELS_PER_SECOND, CameraRunner, RunnerSettings
from livefaces.runtime.threaded import CameraLimits, CameraSetup, SessionSummary, Sink

if TYPE_CHECKING:
    from livefaces.observe.metrics import SessionMetrics
    from livefaces.outputs.anonymize import MaskSettings
    from livefaces.outputs.events import EventLog
    from livefaces.outputs.mqtt import MqttPublisher
    from livefaces.outputs.retention import Retention
    from livefaces.outputs.web.live import EventStore, LiveFrames
    from livefaces.outputs.web.server import WebServer
    from livefaces.tiles import TileBoard

PHOTO_QUEUE = 2  # photos may be 50 MB decoded each: the decoding pool already reads ahead
TRACKING_BUDGET = 0.8  # share of real time the shared detector may be planned for, over all cameras
SNAPSHOTS_NEED_TRACKING = (
    "--snapshots: snapshots are taken of tracked faces; files need --realtime (or --detect-every auto), "
    "and --detect-every N turns tracking off"
)


SAVE_EVERY_NEEDS_TRACKING = (
    "--save-every: keeps one crop per tracked face per S seconds; files need --realtime (or --detect-every "
    "auto), and photos have no tracks"
)


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
    nothing_left: bool = False  # a photo folder whose every photo an earlier run did

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
        if config.snapshots and not tracking:
            raise BadInput(SNAPSHOTS_NEED_TRACKING)
        if config.save_every is not None and config.save_faces and not tracking:
            raise BadInput(SAVE_EVERY_NEEDS_TRACKING)
        _resume(config, spec.name, source)
        try:
            frames = source.frames()  # reads the first frame: a bad source fails here, before any output
        except NothingLeft:
            frames = (frame for frame in ())
            return OpenCamera(spec, source, frames, tracking, nothing_left=True)
        except SourceError as error:
            if not (service and source.info.kind in LIVE_KINDS):
                raise
            return OpenCamera(spec, source, None, tracking, open_error=error)
    except (BadInput, SourceError) as error:
        if named:
            raise type(error)(f"camera {spec.name}: {error}") from None
        raise
    return OpenCamera(spec, source, frames, tracking)


def _resume(config: RunConfig, camera: str, source: Source) -> None:
    """A photo folder whose crops an earlier run saved: leave out the photos its index names."""
    folder = source.info.path
    if not config.save_faces or source.info.kind != "images" or folder is None or not folder.is_dir():
        return
    from livefaces.outputs.crops import INDEX_NAME, read_done

    done = read_done(Path(config.save_faces) / camera / INDEX_NAME)
    if done:
        source.skip = done.__contains__


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
    if output is not None and source_kind == "images" and config.segment_time is not None:
        raise BadInput("--segment-time: cuts video recordings; an image source writes a folder of images")
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
    events = config.events_for(camera)
    if events and events != "-":
        _check_writable(Path(events), "the events")
    if config.snapshots:
        _check_folder(Path(config.snapshots), "--snapshots")
    if config.save_faces:
        _check_folder(Path(config.save_faces), "--save-faces")


def _check_folder(folder: Path, what: str) -> None:
    """A folder that exists and can be written, or that can be made in an existing folder."""
    parent = folder.parent if folder.parent != Path("") else Path(".")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder}: {what} must be a folder")
    if not folder.exists() and not parent.is_dir():
        raise BadInput(f"{folder}: cannot create the folder for {what}, {parent} does not exist")
    if not os.access(folder if folder.exists() else parent, os.W_OK):
        raise BadInput(f"{folder}: cannot write {what} there, permission denied")


def _runner_settings(camera: OpenCamera, cameras: int, every_frame: bool = True) -> RunnerSettings:
    """The camera's detection policy; `every_frame`: an output shows or keeps the faces of every
    frame (see `_every_frame_shown`), so new faces are looked for between full scans too."""
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
        coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND if every_frame or info.live else None,
    )


def _every_frame_shown(config: RunConfig, name: str, board: TileBoard | None) -> bool:
    """Whether an output of the camera shows or keeps the faces of every frame: the window, a
    video or images, JSON Lines, masks. Only then are coarse scans worth their cost (about half
    the detector's time on a moving scene): they find a new large face on the frame it enters,
    where a full scan finds it up to 0.2 s later. Face crops, events and snapshots of a file keep
    a best shot per track over seconds, which that delay does not change."""
    return (
        board is not None
        or config.output_for(name) is not None
        or bool(config.json_for(name))
        or config.mask_settings() is not None
    )


class SharedOutputs:
    """What several cameras' outputs share: the event logs (one per path; `reopen_event_logs` is
    for SIGHUP), the snapshot folder's retention, the MQTT publisher (started by `run_session`)
    and what the web view shows (its frames and events, served by `run_session`)."""

    def __init__(self, config: RunConfig) -> None:
        from livefaces.outputs.retention import Retention

        self.event_logs: dict[str, EventLog] = {}
        self.retention: Retention | None = None
        if config.snapshots and (config.keep_days is not None or config.max_disk is not None):
            self.retention = Retention(config.snapshots, config.keep_days, config.max_disk)
        self.mqtt = _mqtt_publisher(config)
        self.web_frames: LiveFrames | None = None
        self.web_events: EventStore | None = None
        if config.http is not None:
            from livefaces.outputs.web.live import EventStore, LiveFrames

            self.web_frames = LiveFrames([camera.name for camera in config.cameras])
            self.web_events = EventStore()

    def event_log(self, path: str) -> EventLog:
        from livefaces.outputs.events import EventLog

        if path not in self.event_logs:
            self.event_logs[path] = EventLog(path)
        return self.event_logs[path]

    def reopen_event_logs(self) -> None:
        """Reopen every event file (after logrotate moved them); safe from any thread."""
        for log in list(self.event_logs.values()):
            log.reopen()


def _sinks(
    config: RunConfig, camera: OpenCamera, board: TileBoard | None, shared: SharedOutputs
) -> list[Sink]:
    """The camera's outputs: its window tile, annotated video or images, JSON Lines, snapshots and
    then events (snapshots add their paths to the events the events file writes)."""
    from livefaces.outputs.anonymize import anonymized
    from livefaces.outputs.events import EventsSink
    from livefaces.outputs.snapshots import SnapshotLimit, SnapshotSink
    from livefaces.sinks import ImageFolderSink, JsonLinesSink
    from livefaces.tiles import TileSink

    sinks: list[Sink] = []
    name, info = camera.spec.name, camera.info
    masks = _mask_settings(config, info)
    if board is not None:
        sinks.append(anonymized(TileSink(board, name), None if config.window_boxes else masks, lag=False))
    output = config.output_for(name)
    if output is not None and info.kind == "images":
        sinks.append(anonymized(ImageFolderSink(output, info.path), masks, lag=False))
    elif output is not None:
        live_fps = (info.fps or 30.0) if info.live else None
        sinks.append(anonymized(_recorder(config, output, info), masks, lag=True, live_fps=live_fps))
    json_path = config.json_for(name)
    if json_path:
        sinks.append(JsonLinesSink(json_path))
    if config.snapshots:
        limit = SnapshotLimit(config.snapshot_limit)
        first = name == config.cameras[0].name  # reports the folder's retention once
        sinks.append(SnapshotSink(config.snapshots, name, limit, shared.retention, report_retention=first))
    events = config.events_for(name)
    if events:
        sinks.append(EventsSink(shared.event_log(events)))
    if config.save_faces:
        sinks.append(_face_crops(config, name, info))
    if shared.mqtt is not None:  # after the snapshots: its events carry their paths
        sinks.append(shared.mqtt.sink(name))
    if shared.web_frames is not None and shared.web_events is not None:
        from livefaces.outputs.web.live import WebSink

        view = WebSink(shared.web_frames, shared.web_events, name, snapshots=masks is None)
        sinks.append(anonymized(view, masks, lag=False))
    return sinks


def _mqtt_publisher(config: RunConfig) -> MqttPublisher | None:
    """`--mqtt`'s publisher, not yet connected (`run_session` starts and stops it)."""
    if config.mqtt is None:
        return None
    from livefaces.outputs.mqtt import MqttPublisher

    return MqttPublisher(config.mqtt)


def _mask_settings(config: RunConfig, info: SourceInfo) -> MaskSettings | None:
    """`--anonymize`'s masks; photos of a folder are unrelated pictures: no mask carries over."""
    masks = config.mask_settings()
    return dataclasses.replace(masks, hold=0.0) if masks is not None and info.kind == "images" else masks


def _face_crops(config: RunConfig, name: str, info: SourceInfo) -> Sink:
    from livefaces.outputs.crops import CropSettings, FaceCropSink

    settings = CropSettings(
        config.margin, config.face_size, config.align, config.face_format, config.save_every
    )
    return FaceCropSink(config.save_faces or "", name, info.path if info.kind == "images" else None, settings)


def _recorder(config: RunConfig, output: Path, info: SourceInfo) -> Sink:
    """The camera's video output: one file, or segments when asked for (or named by {start})."""
    from livefaces.recorder import VideoRecorder
    from livefaces.runtime.cores import threads_each
    from livefaces.segments import START, SegmentedRecorder

    segmented = config.segment_time is not None
    audio = info.path if info.kind == "file" and not segmented else None
    make = functools.partial(
        VideoRecorder,
        fps=info.fps,
        codec=config.codec,
        crf=config.crf,
        preset=config.preset,
        audio_from=audio,
        crash_safe=info.live,
        rebase=segmented,
        threads=threads_each(len(config.cameras)),  # every camera records: they share the cores
    )
    if segmented or START in output.name:
        return SegmentedRecorder(output, make, config.segment_time)
    return make(output)


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
    shared: SharedOutputs | None = None,
) -> SessionOutcome:
    """Build the shared detector, every camera's runner and outputs, and run them until every
    camera ends or `stop` is set. Always finalizes every output. `shared`: the outputs cameras
    share, made by the caller when it needs them during the run (to reopen the event logs). On a
    terminal the panel shows the session; state changes are logged (`livefaces.observe.state_log`);
    with `--metrics` the session is served to Prometheus while it runs."""
    from livefaces.display import TiledWindow, display_available
    from livefaces.observe.logs import log
    from livefaces.observe.state_log import StateLog, StatusWatcher
    from livefaces.panel import SessionReporter
    from livefaces.runtime.threaded import Session
    from livefaces.tiles import TileBoard

    metrics = web = None
    try:
        metrics = _serve_metrics(config)
        shared = shared or SharedOutputs(config)
        web = _serve_web(config, shared.web_frames, shared.web_events, metrics)
        show = config.display and display_available()
        if config.display and not show:
            log().info("livefaces: no display available, running headless (--no-display)")
        detector, device = _detector(config, cameras)
        board = TileBoard([camera.spec.name for camera in cameras]) if show else None
        setups = [_setup(config, camera, board, len(cameras), shared, metrics) for camera in cameras]
    except BaseException:
        if web is not None:
            web.stop()
        if metrics is not None:
            metrics.stop()
        for camera in cameras:
            camera.close()
        raise

    def report(line: str) -> None:  # a camera's link: lost, retrying, back (one line each)
        log().warning(line)

    session = Session(setups, detector, device, report=report)
    if metrics is not None:
        metrics.collector.attach(session.status)
    if web is not None:
        web.attach(session.status, session.service)
    window = None
    if board is not None:
        title = f"livefaces - {cameras[0].info.name}" if len(cameras) == 1 else "livefaces"
        window = TiledWindow(board, title, stop)
    reporter = SessionReporter(session.status, console) if console.is_terminal else None
    watcher = StatusWatcher(session.status, StateLog()).start()
    if reporter is not None:
        reporter.start()
    mqtt = shared.mqtt.start() if shared.mqtt is not None else None
    try:
        summary = session.run(stop, abort, pump=window.pump if window is not None else None)
    finally:
        if mqtt is not None:  # after every camera's outputs closed: their last states are queued
            mqtt.stop()
        if reporter is not None:
            reporter.stop()
        watcher.stop()
        if window is not None:
            window.close()
        if web is not None:
            web.stop()
        if metrics is not None:
            metrics.stop()
    return SessionOutcome(summary, tuple(cameras))


def _detector(config: RunConfig, cameras: list[OpenCamera]) -> tuple[object, str]:
    """The shared MTCNN and its device; none when every camera resumed with nothing left (a
    finished extraction run again answers in a second, without loading TensorFlow)."""
    if all(camera.nothing_left for camera in cameras):
        return object(), "none"
    from livefaces.detector import MTCNN
    from livefaces.runtime.cores import share_detector_cores

    share_detector_cores(len(cameras))
    detector = MTCNN(device=config.device)
    return detector, detector.device


def _setup(
    config: RunConfig,
    camera: OpenCamera,
    board: TileBoard | None,
    count: int,
    shared: SharedOutputs,
    metrics: SessionMetrics | None,
) -> CameraSetup:
    """One camera's runner, outputs (the metrics' observer last) and bounds."""
    name = camera.spec.name
    sinks = _sinks(config, camera, board, shared)
    observer = metrics.camera(name) if metrics is not None else None
    if observer is not None:
        sinks.append(observer.sink())
    return CameraSetup(
        camera.source,
        CameraRunner(
            name, camera.info.fps, _runner_settings(camera, count, _every_frame_shown(config, name, board))
        ),
        sinks,
        CameraLimits(config.max_frames, config.duration),
        camera.frames,
        queue_size=PHOTO_QUEUE if camera.info.kind == "images" else 8,
        on_reply=observer.replied if observer is not None else None,
        reconnect=camera.spec.options.reconnect_settings(),
        open_error=camera.open_error,
    )


def _serve_metrics(config: RunConfig, observed_here: bool = True) -> SessionMetrics | None:
    """The session's metrics, served at `--metrics` (BadInput when that address cannot be bound);
    kept unserved for the web view's `/metrics` when only `--http` asks for them.
    observed_here=False: a fleet's driver, serving what its camera workers observed."""
    if config.metrics is None and config.http is None:
        return None
    from livefaces.observe.logs import log
    from livefaces.observe.metrics import SessionMetrics, is_loopback

    metrics = SessionMetrics(observed_here)
    if config.metrics is None:
        return metrics
    host, port = config.metrics
    try:
        endpoint = metrics.serve(host, port)
    except OSError as error:
        reason = error.strerror or str(error)
        raise BadInput(f"--metrics {host}:{port}: cannot serve metrics there: {reason}") from None
    log().info(f"livefaces: metrics at {endpoint.url()}")
    if not is_loopback(host):
        log().warning(
            f"livefaces: warning: metrics are served beyond this machine ({endpoint.url()}): anyone "
            "who reaches it reads camera names and counts"
        )
    return metrics


def _serve_web(
    config: RunConfig, frames: LiveFrames | None, events: EventStore | None, metrics: SessionMetrics | None
) -> WebServer | None:
    """The web view of these pictures and events (a session's, or a fleet's over Ray), bound at
    `--http` (BadInput when that address cannot be bound), with a warning line when it is
    reachable beyond this machine without a token."""
    if config.http is None or frames is None or events is None:
        return None
    from livefaces.observe.logs import log
    from livefaces.observe.metrics import is_loopback
    from livefaces.outputs.web.server import WebServer

    token = config.http_token.text if config.http_token is not None else None
    registry = metrics.registry if metrics is not None else None
    web = WebServer(frames, events, registry, token)
    host, port = config.http
    try:
        endpoint = web.start(host, port)
    except OSError as error:
        reason = error.strerror or str(error)
        raise BadInput(f"--http {host}:{port}: cannot serve the web view there: {reason}") from None
    log().info(f"livefaces: web view at {endpoint.url()}")
    if not is_loopback(host) and token is None:
        log().warning(
            f"livefaces: warning: the web view is served beyond this machine ({endpoint.url()}) without "
            "--http-token: anyone who reaches it sees the cameras and their events"
        )
    return web
