"""What a fleet's workers host: plain objects, so a test, a thread or a Ray actor can hold them.

`DetectorWorker` is the shared detector: MTCNN and the same `DetectorService` (on its
`ThreadedDetectorHost`) as the one-process runtime, answering `exchange` calls from many cameras.
`CameraHost` is one camera: its source opened where it runs, its outputs, and the same
`CameraWorker` and `CameraRunner` as the one-process runtime, talking to its detector through a
`DetectorLink`. A host restarted after a crash writes new files (`rec-front-2.mp4`, never over
the first segment) and starts its events with a `stream_down` (reason "worker_restart"); the
stream's own `stream_up` follows when it is read again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livefaces.events import Event, StreamDown, StreamUp
from livefaces.fleet.link import DetectorEndpoint, DetectorLink, LinkStats
from livefaces.options import RunConfig
from livefaces.runtime.detector_service import (
    DetectorReply,
    DetectorService,
    Request,
    ServiceClosed,
    ServiceLoad,
    ServiceSettings,
    ThreadedDetectorHost,
)
from livefaces.runtime.status import CameraStatus

if TYPE_CHECKING:
    from livefaces.outputs.web.live import StoredEvent

WORKER_RESTART = "worker_restart"  # the reason of the events a restarted camera worker starts with
MAX_LINES = 200


class DetectorWorker:
    """MTCNN behind the shared detector service, serving cameras in other processes.

    `incarnation` is new each time the worker is built, so a camera's link sees a restarted
    detector (whose queue was lost) and drops what it was waiting for. `threads`: TensorFlow's
    op threads (the cores this worker was given).
    """

    def __init__(self, device: str = "auto", threads: int | None = None, per_camera: int = 4) -> None:
        import contextlib

        import tensorflow as tf

        from livefaces.detector import MTCNN

        if threads is not None:
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(threads)
        self.detector = MTCNN(device=device)
        self.service = DetectorService(self.detector, ServiceSettings(per_camera=per_camera))  # type: ignore[arg-type]
        self.host = ThreadedDetectorHost(self.service).start()
        self.incarnation = uuid.uuid4().hex

    def exchange(self, camera: str, requests: list[Request], wait: float) -> tuple[str, list[DetectorReply]]:
        """Queue the camera's requests, then return its replies: waiting up to `wait` seconds
        for the first, then whatever else is ready."""
        mailbox = self.service.connect(camera)
        for request in requests:
            if not self.service.submit(request):
                raise RuntimeError("the detector service stopped")
        replies: list[DetectorReply] = []
        reply = mailbox.get(wait)
        while isinstance(reply, DetectorReply):
            replies.append(reply)
            reply = mailbox.get(0.0)
        if isinstance(reply, ServiceClosed) and not replies:
            raise RuntimeError(reply.error or "the detector service stopped")
        return self.incarnation, replies

    def forget(self, camera: str) -> None:
        """Drop what a camera left pending (its worker restarted: its frame numbers start over)."""
        self.service.disconnect(camera)

    def load(self) -> ServiceLoad:
        return self.service.load()

    def device(self) -> str:
        return self.detector.device

    def stop(self) -> None:
        self.host.stop()


@dataclass(frozen=True)
class HostStatus:
    """A camera host's state for the driver: the camera (None before it opened), the lines its
    link reported since the last call (lost, retrying, back), its traffic to the detector, and
    the full scans and refinements its runner asked for (since this worker started)."""

    camera: CameraStatus | None
    lines: tuple[str, ...]
    link: LinkStats
    full_scans: int = 0
    refinements: int = 0
    observations: tuple[Any, ...] = ()  # prometheus_client Metric families (`--metrics`)


@dataclass(frozen=True)
class HostReport:
    """How a camera host's run went: its summary and what the final report needs of its source."""

    summary: object  # CameraSummary
    kind: str
    name: str
    frame_count: int | None
    skipped: tuple[str, ...]
    corrupt_frames: int
    link: LinkStats
    segment: int


def next_segment(config: RunConfig, camera: str) -> tuple[RunConfig, int]:
    """`config` with this camera's recording and JSON log moved to the first free segment name
    (`rec-front-2.mp4`, `-3`...), so a restarted worker never writes over what the one before it
    recorded; and that segment's number."""
    output, json_path = config.output_for(camera), config.json_for(camera)
    paths = [Path(p) for p in (output, json_path) if p is not None and str(p) != "-"]
    number = 2
    while any(_numbered(path, number).exists() for path in paths):
        number += 1
    changes: dict[str, str] = {}
    if output is not None:
        changes["output"] = str(_numbered(output, number))
    if json_path is not None and json_path != "-":
        changes["json_path"] = str(_numbered(Path(json_path), number))
    cameras = tuple(spec for spec in config.cameras if spec.name == camera)
    return dataclasses.replace(config, cameras=cameras, **changes), number


def _numbered(path: Path, number: int) -> Path:
    return path.with_name(f"{path.stem}-{number}{path.suffix}")


class CameraHost:
    """One camera of the fleet: `open` (one error line, or None), `start`, `status`, `finish`.

    sharing: the cameras that share its detector (they split the detector's time; default every
    camera of `config`). restarted: this is a restarted worker (its first events tell the gap).
    A restarted camera, or one that joins again (`new_segment`), records to the next free
    segment (`rec-front-2.mp4`), never over what was recorded before."""

    def __init__(
        self,
        config: RunConfig,
        index: int,
        endpoint: DetectorEndpoint,
        restarted: bool = False,
        sharing: int | None = None,
        new_segment: bool = False,
    ) -> None:
        spec = config.cameras[index]
        self.name = spec.name
        self.segment = 1
        self.restarted = restarted
        self.sharing = sharing or len(config.cameras)
        self.config = config
        if restarted or new_segment:
            self.config, self.segment = next_segment(config, spec.name)
        self.spec = spec
        self.link = DetectorLink(spec.name, endpoint)
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._lines_lock = threading.Lock()
        self._camera = None
        self._worker = None
        self._shared = None
        self._metrics = None

    def open(self) -> str | None:
        """Open the source (its first frame read) and check the outputs; the error, or None."""
        from livefaces.app import BadInput, _open_camera, service_mode
        from livefaces.capture import SourceError

        try:
            self._camera = _open_camera(self.spec, self.config, True, service_mode(self.config))
        except (BadInput, SourceError, ValueError) as error:
            return str(error)
        return None

    def start(self) -> None:
        """Build the outputs and the camera's worker, and start them (after a successful `open`)."""
        from livefaces.app import SharedOutputs, _sinks
        from livefaces.runtime.camera_runner import CameraRunner
        from livefaces.runtime.threaded import CameraLimits, CameraSetup, CameraWorker
        from livefaces.stats import PipelineStats

        camera = self._camera
        if camera is None:
            raise RuntimeError(f"camera {self.name}: start before a successful open")
        config = self.config
        self._shared = SharedOutputs(config)
        sinks = _sinks(config, camera, None, self._shared)
        observer = None
        if config.metrics is not None or config.http is not None:
            from livefaces.observe.metrics import SessionMetrics

            self._metrics = SessionMetrics()
            observer = self._metrics.camera(self.name)
            sinks.append(observer.sink())
        setup = CameraSetup(
            camera.source,
            CameraRunner(self.name, camera.info.fps, fleet_runner_settings(camera, self.sharing)),
            sinks,
            CameraLimits(config.max_frames, config.duration),
            camera.frames,
            queue_size=2 if camera.info.kind == "images" else 8,
            reconnect=camera.spec.options.reconnect_settings(),
            open_error=camera.open_error,
            lead_events=self._restart_events(camera.info.kind) if self.restarted else (),
            on_reply=observer.replied if observer is not None else None,
        )
        if self._shared.mqtt is not None:
            self._shared.mqtt.start()
        self.link.start()
        self._worker = CameraWorker(setup, self.link, PipelineStats(), report=self._report)  # type: ignore[arg-type]
        self._worker.start()

    def status(self) -> HostStatus:
        with self._lines_lock:
            lines = tuple(self._lines)
            self._lines.clear()
        worker = self._worker
        if worker is None:
            return HostStatus(None, lines, self.link.stats())
        runner = worker.setup.runner
        observations = self._metrics.observations() if self._metrics is not None else ()
        return HostStatus(
            worker.status(), lines, self.link.stats(), runner.full_scans, runner.refinements, observations
        )

    def finish(self, timeout: float = 30.0) -> HostReport:
        """Stop the camera, finalize its outputs, and report (also when it never started)."""
        from livefaces.runtime.threaded import CameraSummary

        worker, camera = self._worker, self._camera
        if worker is not None:
            worker.stop.set()
            worker.join(threading.Event(), timeout)
            summary = worker.summary()
        else:
            summary = CameraSummary(self.name, 0, 0, 0, 0, "stop")
            if camera is not None:
                camera.close()
        self.link.close()
        if self._shared is not None and self._shared.mqtt is not None:
            self._shared.mqtt.stop()
        source = camera.source if camera is not None else None
        info = source.info if source is not None else None
        return HostReport(
            summary,
            info.kind if info else "",
            info.name if info else self.name,
            info.frame_count if info else None,
            tuple(source.skipped) if source is not None else (),
            source.corrupt_frames if source is not None else 0,
            self.link.stats(),
            self.segment,
        )

    def jpeg(self, annotated: bool, width: int | None) -> tuple[int, bytes] | None:
        """The web view's picture of this camera (`--http`): (version, JPEG), None before the
        first frame. Encoded here, on the camera's machine: only the JPEG travels."""
        frames = self._shared.web_frames if self._shared is not None else None
        return None if frames is None else frames.jpeg(self.name, annotated, width)

    def recent_events(self, since: float | None, limit: int) -> list[StoredEvent]:
        """This camera's newest events for the web view's API, newest first."""
        events = self._shared.web_events if self._shared is not None else None
        return [] if events is None else events.recent(self.name, since, limit)

    def snapshot(self, event_id: str) -> bytes | None:
        """The JPEG of one of this camera's event snapshots, None when it has none."""
        events = self._shared.web_events if self._shared is not None else None
        return None if events is None else events.snapshot(event_id)

    def reopen_event_logs(self) -> None:
        """Reopen the camera's event files (SIGHUP on the driver, for logrotate)."""
        if self._shared is not None:
            self._shared.reopen_event_logs()

    def wait_ended(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the camera to end on its own (a file); True if it has."""
        deadline = time.monotonic() + timeout
        while self._worker is not None and self._worker.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._worker is None or not self._worker.alive

    def _report(self, line: str) -> None:
        with self._lines_lock:
            self._lines.append(line)

    def _restart_events(self, kind: str) -> tuple[Event, ...]:
        """A restarted worker's first events: the gap (`stream_down`), and for a source without a
        watchdog (whose `stream_up` would announce the stream again) the way back too."""
        from livefaces.capture import LIVE_KINDS

        now = time.time()
        down = StreamDown(camera=self.name, source_time=0.0, wall_time=now, reason=WORKER_RESTART, attempt=0)
        if kind in LIVE_KINDS:
            return (down,)
        return down, StreamUp(
            camera=self.name, source_time=0.0, wall_time=now, reason=WORKER_RESTART, attempt=0
        )


def fleet_runner_settings(camera: object, cameras: int) -> object:
    """The camera's detection policy on a fleet: the app's, with scans sent as the pyramid's input
    and no coarse scans (they would ship whole frames to the detector).

    A full scan's first pyramid level is the frame scaled by 12 / min_face_size, so a frame wider
    than that level is shrunk to it before it is sent, and looked at with 12-pixel faces: the
    detector sees what it would have made of the whole frame, for a third of the bytes at the
    default 20-pixel faces. A `--detect-width` the user set is kept as given.
    """
    from livefaces.app import _runner_settings

    settings = _runner_settings(camera, cameras, every_frame=False)  # type: ignore[arg-type]
    options, info = camera.spec.options, camera.info  # type: ignore[attr-defined]
    changes: dict[str, object] = {"coarse_pixels_per_second": None}
    if options.detect_width is None and info.size is not None:
        width = info.size[0]
        level = int(width * 12 / options.min_face_size + 0.5)
        if level < width and settings.cascade is not None:
            changes["detect_width"] = level
            changes["cascade"] = dataclasses.replace(settings.cascade, min_face_size=12)
    return dataclasses.replace(settings, **changes)
