"""Many cameras in one process: each camera on three threads, one detector thread for all.

    source --reader--> frames --runner (CameraRunner)--> results --writer--> outputs
                                   |  ^
                          requests v  | replies
                        DetectorService on its ThreadedDetectorHost (shared)

Per camera: the reader owns the source, the runner owns the tracker (through its `CameraRunner`),
the writer owns the outputs (it renders each output's profile and writes). Plain values cross the
threads: frames, requests, replies, `FrameResult`s. Live sources: the frame channel keeps the
newest frames (drops are counted) and the runner never waits for the detector, so every frame is
shown at the source's rate with the faces predicted to its time. Files: nothing is dropped; every
frame waits for its own answer (exact mode keeps a few frames in flight so decoding, detection and
encoding overlap).

Live cameras (streams, devices) are read through a `Watchdog`, which reopens them when they fail,
stall or end: its `StreamDown`/`StreamUp` events travel in order with the frames, and the runner,
which owns the tracker, ends the open tracks at a drop (face_left "stream_down") and hands the
events on to the outputs as an `EventNotice`. Recordings keep going across the gap.

One stop event ends every camera; each thread ends its output channel in `finally`, carrying its
error; every wait has a timeout. A camera that ends or fails leaves the others running. The
writer closes its outputs whatever happened, so recordings are finalized.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from livefaces import overlay
from livefaces.capture import LIVE_KINDS, Source, SourceError
from livefaces.channels import Closed, FrameChannel
from livefaces.events import STREAM_DOWN, Event, StreamDown, StreamUp
from livefaces.frames import EventNotice, Frame, FrameResult
from livefaces.runtime import status as states
from livefaces.runtime.camera_runner import CameraRunner, DetectorFailed, RunnerSettings
from livefaces.runtime.detector_service import (
    DetectorReply,
    DetectorService,
    Mailbox,
    ServiceClosed,
    ServiceSettings,
    ThreadedDetectorHost,
)
from livefaces.runtime.status import CameraStatus, SessionStatus
from livefaces.sources.reconnect import ReconnectSettings
from livefaces.sources.watchdog import Report, Watchdog, print_line
from livefaces.stats import PipelineStats
from livefaces.tracker import Tracker

POLL_SECONDS = 0.1
JOIN_SECONDS = 5.0
DRAIN_SECONDS = 1.0  # after a stop, how long the writer waits for the runner's last events
END_REASONS = {"stop": "stopped", "limit": "stopped", "source": "source_ended", "error": "error"}
LIVE_REPLY_POLL = 0.005  # live: how often a camera waiting for frames checks for the detector's answer
EXACT_IN_FLIGHT = 4  # exact mode: frames asked ahead, so detection overlaps decoding and encoding
ENDED_BY_SOURCE, ENDED_BY_LIMIT, ENDED_BY_STOP, ENDED_BY_ERROR = "source", "limit", "stop", "error"


class Sink(Protocol):
    """An output of one camera: a window tile, a recorder, a JSON log...

    render: the image it wants with each result: "annotated", "raw", or None (no image).
    An output that wants events defines `on_events(events)`: the writer calls it with every event
    of the camera, in order, each frame's events right after that frame's `write`. It may return
    the events enriched (e.g. with snapshot paths; same events, same order): the outputs after it
    get those instead.
    """

    render: str | None

    def write(self, result: FrameResult, image: np.ndarray | None) -> None: ...

    def close(self) -> None:
        """Finish the output: flush, finalize, release."""

    def summary(self) -> str | None:
        """What was written, for the final report ("out.mp4: 120 frames, 4.0 s"); None: nothing."""


@dataclass(frozen=True)
class CameraLimits:
    """Bounds of one camera's run: frames read, seconds of source time."""

    max_frames: int | None = None
    duration: float | None = None

    def reached(self, read: int, elapsed: float) -> bool:
        return (self.max_frames is not None and read >= self.max_frames) or (
            self.duration is not None and elapsed >= self.duration
        )


@dataclass(frozen=True)
class CameraSummary:
    """How one camera's run went.

    frames: results written to the outputs; captured: frames read; dropped: frames a live source
    dropped to keep up; detections: detector answers absorbed. ended_by: "source" (it ended),
    "limit" (--max-frames / --duration), "stop", or "error"; error / error_stage ("capture",
    "detector", "outputs") tell what failed.
    """

    camera: str
    frames: int
    captured: int
    dropped: int
    detections: int
    ended_by: str
    error: str | None = None
    error_stage: str | None = None
    outputs: tuple[str, ...] = ()


@dataclass
class CameraSetup:
    """What one camera needs to run: its source (and its already opened frames, if any, or the
    error its opening met), its runner, its outputs, its bounds and, for live cameras, how they
    are reconnected. on_reply: called on the runner thread with every detector answer absorbed
    (metrics observe its latency there). lead_events: link events handed on before the first
    frame (a fleet's restarted camera worker starts with the gap its crash left)."""

    source: Source
    runner: CameraRunner
    sinks: list[Sink]
    limits: CameraLimits = field(default_factory=CameraLimits)
    frames: Iterator[Frame] | None = None
    queue_size: int = 8
    on_reply: Callable[[DetectorReply], None] | None = None
    reconnect: ReconnectSettings = field(default_factory=ReconnectSettings)
    open_error: SourceError | None = None
    lead_events: tuple[Event, ...] = ()

    @property
    def name(self) -> str:
        return self.runner.camera


class CameraWorker:
    """One camera on its reader, runner and writer threads, served by the shared detector."""

    def __init__(
        self, setup: CameraSetup, service: DetectorService, stats: PipelineStats, report: Report = print_line
    ) -> None:
        self.setup = setup
        self.name = setup.name
        self.stats = stats
        self.stop = threading.Event()  # this camera's: set by the session's stop or its own failure
        self.lossless = not setup.source.info.live
        self.state = states.CONNECTING
        self._service = service
        self._mailbox: Mailbox = service.connect(self.name)
        self._watchdog: Watchdog | None = None
        if setup.source.info.kind in LIVE_KINDS:
            self._watchdog = Watchdog(
                self.name,
                setup.source,
                setup.reconnect,
                self.stop,
                report,
                opened=setup.frames,
                open_error=setup.open_error,
            )
        size, stop = setup.queue_size, self.stop
        self._frames: FrameChannel[Frame | Event] = FrameChannel(
            size, self.lossless, stop, stats.dropped_frame, droppable=_is_frame
        )
        self._results: FrameChannel[FrameResult | EventNotice] = FrameChannel(
            size, self.lossless, stop, stats.dropped_frame, droppable=_without_events
        )
        self._last_time: float | None = None  # the runner's: source time of the last result
        self._ended_by = ENDED_BY_SOURCE
        self._error: tuple[str, str] | None = None
        self._written = 0
        self._threads = [
            threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True),
            threading.Thread(target=self._run, name=f"{self.name}-runner", daemon=True),
            threading.Thread(target=self._write, name=f"{self.name}-writer", daemon=True),
        ]
        stats.detect_every = setup.runner.cadence

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, abort: threading.Event, seconds: float = JOIN_SECONDS) -> None:
        """Wait for the reader and runner (at most `seconds`, or no longer once `abort` is set),
        then for the writer, which finalizes the outputs."""
        deadline = time.monotonic() + seconds
        for thread in self._threads[:2]:
            while thread.is_alive() and not abort.is_set() and time.monotonic() < deadline:
                thread.join(POLL_SECONDS / 2)
        self._threads[2].join()

    def status(self) -> CameraStatus:
        info = self.setup.source.info
        error = self._error[1] if self._error else None
        base = CameraStatus(
            name=self.name,
            source=info.name,
            kind=info.kind,
            live=info.live,
            state=self.state,
            size=info.size,
            fps=info.fps,
            frame_count=info.frame_count,
            stats=self.stats.snapshot(),
            error=error,
        )
        if self._watchdog is None:
            return base
        link = self._watchdog.status
        retry_in = None if link.retry_at is None else max(0.0, link.retry_at - time.monotonic())
        return replace(
            base,
            state=link.state if self.state in states.RUNNING else self.state,
            error=error or link.error,
            reconnects=link.reconnects,
            stalls=link.stalls,
            attempt=link.attempt,
            next_try_in=retry_in,
            quality=self._watchdog.quality.summary(info.fps),
        )

    def summary(self) -> CameraSummary:
        snap = self.stats.snapshot()
        stage, error = self._error if self._error else (None, None)
        outputs = tuple(text for sink in self.setup.sinks if (text := sink.summary()))
        return CameraSummary(
            camera=self.name,
            frames=self._written,
            captured=snap.captured,
            dropped=snap.dropped,
            detections=snap.detected,
            ended_by=ENDED_BY_ERROR if self._error else self._ended_by,
            error=error,
            error_stage=stage,
            outputs=outputs,
        )

    def _fail(self, stage: str, error: BaseException | str) -> None:
        """Record the first failure and stop this camera (the others go on). A source that fails
        stops nothing: the frames it gave before still go through, as its channel ends."""
        if self._error is None:
            message = error if isinstance(error, str) else (str(error) or type(error).__name__)
            self._error = (stage, message)
            lost = stage == "capture" and isinstance(error, (SourceError, OSError))
            self.state = states.LOST if lost and self.setup.source.info.live else states.FAILED
        if stage != "capture":
            self.stop.set()

    # The reader: source (through its watchdog, for live cameras) -> frames channel.
    def _read(self) -> None:
        items: Iterator[Frame | Event] | None = self.setup.frames
        error: BaseException | None = None
        try:
            for event in self.setup.lead_events:
                self._frames.put(event)
            if self._watchdog is not None:
                items = self._watchdog.items()
            elif items is None:
                items = self.setup.source.frames()
            first_time, read = None, 0
            for item in items:
                if self.stop.is_set():
                    self._ended_by = ENDED_BY_STOP
                    break
                if isinstance(item, Frame):
                    first_time = item.timestamp if first_time is None else first_time
                    if self.setup.limits.reached(read, item.timestamp - first_time):
                        self._ended_by = ENDED_BY_LIMIT
                        break
                    read += 1
                    self.stats.captured_frame()
                    self.stats.set_corrupt(self.setup.source.corrupt_frames)
                self.state = states.RECONNECTING if isinstance(item, StreamDown) else states.ONLINE
                if not self._frames.put(item):
                    self._ended_by = ENDED_BY_STOP
                    break
            else:
                if self.stop.is_set():  # the watchdog returns when stopped between attempts
                    self._ended_by = ENDED_BY_STOP
        except BaseException as exc:  # carried to the runner and reported in the summary
            error = exc
            self._fail("capture", exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._frames.close(error)

    # The runner: frames -> (detector) -> results.
    def _run(self) -> None:
        error: BaseException | None = None
        try:
            if self.lossless:
                self._run_lossless()
            else:
                self._run_live()
        except BaseException as exc:
            error = exc
            self._fail("detector" if isinstance(exc, DetectorFailed) else "runner", exc)
        finally:
            self._service.disconnect(self.name)
            self._end_tracks(ENDED_BY_STOP if self.stop.is_set() else self._ended_by)
            self._results.close(error)

    def _end_tracks(self, reason: str) -> None:
        """Close every open track with a face_left event (why: `reason`), as a frameless notice."""
        if self._last_time is None:
            return
        events = self.setup.runner.end_tracks(self._last_time, END_REASONS[reason])
        if events:
            self._results.put(EventNotice(self.name, events))

    def _link_changed(self, event: Event) -> None:
        """The stream went down (its tracks end: face_left "stream_down") or came up. Events the
        last answer raised (after its frame was passed on) go first."""
        runner = self.setup.runner
        events: tuple[Event, ...] = (*runner.take_events(), event)
        if isinstance(event, StreamDown) and self._last_time is not None:
            events += runner.end_tracks(self._last_time, STREAM_DOWN)
        self._results.put(EventNotice(self.name, events))

    def _run_live(self) -> None:
        """Every frame is passed on at once with the faces as they stand; whenever this camera
        has nothing in flight, the detector gets the newest frame (at once when an answer comes
        in, not only when the next frame does, so the detector never idles waiting for one)."""
        runner = self.setup.runner
        in_flight: Frame | None = None
        newest: Frame | None = None
        planned = -1  # the index of the newest frame given to `plan`
        while not self.stop.is_set():
            # While a request is out, wake now and then to fold its answer in without a new frame.
            frame = self._frames.get(LIVE_REPLY_POLL if in_flight is not None else None)
            while in_flight is not None:
                reply = self._next_reply(0.0)
                if reply is None:
                    break
                if reply.seq == in_flight.index:
                    self._absorb(in_flight, reply)
                    in_flight = None
            if isinstance(frame, Closed):
                return
            if isinstance(frame, (StreamDown, StreamUp)):
                if isinstance(frame, StreamDown) and in_flight is not None:
                    if not self._await(in_flight):
                        return  # stopped while waiting
                    in_flight = None
                self._link_changed(frame)
                continue
            newest = frame if frame is not None else newest
            if in_flight is None and newest is not None and newest.index != planned:
                planned = newest.index
                request = runner.plan(newest)
                if request is not None and self._service.submit(request):
                    in_flight = newest
            if frame is not None:
                self._pass_on(runner.result(frame))

    def _await(self, frame: Frame) -> bool:
        """Wait for the answer about `frame` and absorb it; False if stopped first."""
        early: dict[int, DetectorReply] = {}
        reply = self._reply_for(frame.index, early)
        if reply is None:
            return False
        self._absorb(frame, reply)
        return True

    def _run_lossless(self) -> None:
        """Every frame waits for its own answer, in order; exact mode asks a few frames ahead.
        A link event waits for the frames before it, and nothing is asked past it."""
        runner = self.setup.runner
        ahead = 1 if runner.settings.tracking else EXACT_IN_FLIGHT
        pending: deque[tuple[Frame | Event, bool]] = deque()
        early: dict[int, DetectorReply] = {}
        source_done = False
        while not self.stop.is_set():
            while not source_done and len(pending) < ahead:
                frame = self._frames.get() if not pending else self._frames.poll()
                if frame is None:
                    if not pending:
                        return  # stopped
                    break
                if isinstance(frame, Closed):
                    source_done = True
                    break
                if not isinstance(frame, Frame):
                    pending.append((frame, False))
                    break
                request = runner.plan(frame)
                asked = request is not None and self._service.submit(request)
                pending.append((frame, asked))
            if not pending:
                return
            frame, asked = pending.popleft()
            if not isinstance(frame, Frame):
                self._link_changed(frame)
                continue
            if asked:
                reply = self._reply_for(frame.index, early)
                if reply is None:
                    return  # stopped while waiting
                self._absorb(frame, reply)
            self._pass_on(runner.result(frame))

    def _reply_for(self, seq: int, early: dict[int, DetectorReply]) -> DetectorReply | None:
        while seq not in early:
            if self.stop.is_set():
                return None
            reply = self._next_reply(POLL_SECONDS)
            if reply is not None:
                early[reply.seq] = reply
        return early.pop(seq)

    def _next_reply(self, timeout: float) -> DetectorReply | None:
        reply = self._mailbox.get(timeout)
        if isinstance(reply, ServiceClosed):
            raise DetectorFailed(reply.error or "the detector service stopped")
        return reply

    def _absorb(self, frame: Frame, reply: DetectorReply) -> None:
        self.setup.runner.absorb(frame, reply)
        if not reply.replaced:
            self.stats.detected_frame(reply.compute_seconds / max(reply.batch_size, 1))
            self.stats.detect_every = self.setup.runner.cadence
            if self.setup.on_reply is not None:
                self.setup.on_reply(reply)

    def _pass_on(self, result: FrameResult) -> None:
        self._last_time = result.frame.timestamp
        self._results.put(result)

    # The writer: results -> outputs.
    def _write(self) -> None:
        try:
            while True:
                result = self._results.get()
                if result is None:  # stopped: still hand over the runner's last events
                    for item in self._results.drain(DRAIN_SECONDS):
                        if isinstance(item, EventNotice):
                            self._hand_events(item.events)
                    break
                if isinstance(result, Closed):
                    break
                if isinstance(result, EventNotice):
                    self._hand_events(result.events)
                    continue
                started = time.perf_counter()
                self._render_and_write(result)
                self._written += 1
                self.stats.displayed_frame(
                    time.perf_counter() - started,
                    time.monotonic() - result.frame.captured_at,
                    len(result.faces),
                    len(self._frames),
                )
        except BaseException as exc:
            self._fail("outputs", exc)
        finally:
            self._close_sinks()
            if self.state in states.RUNNING:
                self.state = self._final_state()

    def _final_state(self) -> str:
        if self._ended_by == ENDED_BY_STOP:
            return states.STOPPED
        if self._ended_by == ENDED_BY_SOURCE and self.setup.source.info.kind in LIVE_KINDS:
            return states.LOST  # a camera or stream does not end on its own
        return states.ENDED

    def _render_and_write(self, result: FrameResult) -> None:
        images: dict[str, np.ndarray] = {}
        for sink in self.setup.sinks:
            profile = sink.render
            image = None
            if profile is not None:
                if profile not in images:
                    images[profile] = overlay.render(result.frame.image, result.detections, profile)
                image = images[profile]
            sink.write(result, image)
        self._hand_events(result.events)

    def _hand_events(self, events: tuple[Event, ...]) -> None:
        """Every output that wants events gets them in order; one that returns events (the same,
        enriched) passes those on to the outputs after it."""
        if not events:
            return
        for sink in self.setup.sinks:
            on_events = getattr(sink, "on_events", None)
            if on_events is not None:
                enriched = on_events(events)
                events = events if enriched is None else tuple(enriched)

    def _close_sinks(self) -> None:
        failures = []
        for sink in self.setup.sinks:
            try:
                sink.close()
            except Exception as error:
                failures.append(f"{type(sink).__name__}: {error}")
        if failures:
            self._fail("outputs", "; ".join(failures))


def _is_frame(item: Frame | Event) -> bool:
    """Whether a live camera may drop this item to keep up: frames yes, link events never."""
    return isinstance(item, Frame)


def _without_events(item: FrameResult | EventNotice) -> bool:
    """Whether a live camera may drop this result to keep up: only if it carries no event."""
    return isinstance(item, FrameResult) and not item.events


@dataclass(frozen=True)
class SessionSummary:
    """Every camera's summary, and whether the stop event ended the session."""

    cameras: tuple[CameraSummary, ...]
    stopped: bool
    aborted: bool


class Session:
    """Cameras sharing one detector service, hosted on threads of this process."""

    def __init__(
        self,
        setups: Sequence[CameraSetup],
        detector: object,
        device: str = "",
        service_settings: ServiceSettings | None = None,
        stats: Sequence[PipelineStats] | None = None,
        report: Report = print_line,
    ) -> None:
        self.stop = threading.Event()
        # Files in exact mode keep EXACT_IN_FLIGHT frames pending: let them share one call.
        settings = service_settings or ServiceSettings(per_camera=EXACT_IN_FLIGHT)
        self.service = DetectorService(detector, settings)  # type: ignore[arg-type]
        self.host = ThreadedDetectorHost(self.service)
        self.device = device
        stats = stats or [PipelineStats() for _ in setups]
        self.workers = [CameraWorker(s, self.service, st, report) for s, st in zip(setups, stats)]

    def status(self) -> SessionStatus:
        """Every camera's state and the detector's load, as a plain value (for the panel)."""
        cameras = tuple(worker.status() for worker in self.workers)
        return SessionStatus(cameras, self.device, self.service.load())

    def run(
        self,
        stop: threading.Event | None = None,
        abort: threading.Event | None = None,
        pump: Callable[[], None] | None = None,
    ) -> SessionSummary:
        """Run until every camera has ended or `stop` is set; `pump` (a window's event loop) is
        called on this thread meanwhile. Always finalizes every camera's outputs."""
        stop = stop or self.stop
        abort = abort or threading.Event()
        self.host.start()
        for worker in self.workers:
            worker.start()
        stopped = False
        try:
            while any(worker.alive for worker in self.workers):
                if stop.is_set():
                    stopped = True
                    break
                if pump is not None:
                    pump()
                stop.wait(0.01 if pump is not None else POLL_SECONDS)
        finally:
            for worker in self.workers:
                worker.stop.set()
            for worker in self.workers:
                worker.join(abort)
            self.host.stop()
        return SessionSummary(tuple(w.summary() for w in self.workers), stopped, abort.is_set())


def run_camera(
    source: Source,
    detector: object,
    sinks: list[Sink],
    settings: RunnerSettings | None = None,
    limits: CameraLimits | None = None,
    stop: threading.Event | None = None,
    tracker: Tracker | None = None,
    stats: PipelineStats | None = None,
    reconnect: ReconnectSettings | None = None,
    report: Report = print_line,
) -> CameraSummary:
    """Run one source through `detector` into `sinks` on this runtime, until it ends or `stop`
    (tests, benchmarks and simple programs). The camera is named after the source; a live camera
    is reconnected as `reconnect` says (default: forever)."""
    settings = settings or RunnerSettings(live=source.info.live, adaptive=source.info.live)
    runner = CameraRunner(source.info.name, source.info.fps, settings, tracker)
    setup = CameraSetup(
        source, runner, sinks, limits or CameraLimits(), reconnect=reconnect or ReconnectSettings()
    )
    session = Session([setup], detector, stats=[stats or PipelineStats()], report=report)
    return session.run(stop).cameras[0]
