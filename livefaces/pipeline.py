"""The real-time pipeline: a capture thread, a detector thread and the display loop feeding sinks.

    source --capture thread--> display channel ------------------------> display loop -> sinks
                          \\--> detect channel --detector thread--> results --^

Live sources: the display channel and the detector's slot keep only the newest frames (drops
are counted) and the display loop draws the newest result on every frame, so the display keeps
the source's rate whatever the detector costs. Files and images: nothing is dropped, and every
frame waits for the result of its own detection (or of the last detected frame when detecting
every Nth), so the output is exact and repeatable.

One stop event ends everything; every wait has a timeout; each thread closes its channels in
`finally`, carrying its exception to the display loop, which re-raises it as `PipelineError`
after the sinks were closed, so a recording is always finalized.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from livefaces import overlay
from livefaces.capture import Source
from livefaces.channels import Closed, FrameChannel
from livefaces.detections import Detections
from livefaces.frames import AnnotatedFrame, Frame
from livefaces.scheduler import ScanScheduler, SchedulerSettings
from livefaces.stats import PipelineStats
from livefaces.tracking import TrackingDetector, detect_all_downscaled

JOIN_SECONDS = 5.0


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB image, like `livefaces.MTCNN`."""

    def detect(self, image: np.ndarray) -> Detections: ...


class Sink(Protocol):
    """An output the pipeline feeds: a window, a recorder, a JSON log..."""

    needs_canvas: bool

    def write(self, item: AnnotatedFrame, canvas: np.ndarray | None) -> None: ...

    def close(self) -> None:
        """Finish the output: flush, finalize, release."""

    def summary(self) -> str | None:
        """What was written, for the final report ("out.mp4: 120 frames, 4.0 s"); None for a window."""


class PipelineError(Exception):
    """A pipeline thread or sink failed; the message says which and why.

    stage: "capture", "detector" or "outputs"; reason: the failure without the stage prefix.
    """

    def __init__(self, message: str, stage: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.reason = reason or message


@dataclass(frozen=True)
class PipelineSettings:
    """How frames are scheduled for detection.

    detect_every: detect every Nth frame, reuse the result in between. None: every frame for
        files and images; for live sources, the newest frame whenever the detector is free.
    tracking: track faces instead (`--detect-every auto`): full scans as often as the machine
        affords (at least 5 a second), O-Net refinement of the tracks on the other frames, and
        on live sources every displayed frame gets the tracks predicted to its time.
    detect_width: downscale frames wider than this before detection (boxes are mapped back).
    min_confidence: faces below it are dropped from everything shown, recorded and logged.
    max_frames, duration: bound the run (frames read, seconds of source time).
    queue_size: capacity of the display channel (and of the detect channel for files).
    batch_size: for files in exact mode, up to this many frames already waiting are detected in
        one `detect_batch` call (about 10 % faster per frame at 640x480, measured).
    """

    detect_every: int | None = None
    tracking: bool = False
    batch_size: int = 4
    detect_width: int | None = None
    min_confidence: float = 0.0
    max_frames: int | None = None
    duration: float | None = None
    queue_size: int = 8


ENDED_BY_SOURCE, ENDED_BY_LIMIT, ENDED_BY_STOP = "source", "limit", "stop"


@dataclass(frozen=True)
class RunSummary:
    """How a run went: frames read from the source, frames given to the outputs, detector runs,
    and what ended it: the source itself ("source"), --max-frames/--duration ("limit"), or the
    stop event ("stop": q, Esc, a signal). `aborted`: a second stop request cut the finish short.
    """

    frames: int
    detections: int
    stopped: bool
    captured: int = 0
    dropped: int = 0
    ended_by: str = ENDED_BY_SOURCE
    aborted: bool = False


def detect_frames(
    detector: FaceDetector, frames: Sequence[Frame], settings: PipelineSettings
) -> list[Detections]:
    """Faces on BGR frames, in their own pixel coordinates: colour conversion happens here, once;
    several frames share one `detect_batch` call when the detector has one."""
    rgbs = [cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB) for frame in frames]
    found = detect_all_downscaled(detector, rgbs, settings.detect_width)
    return [result.confident(settings.min_confidence) for result in found]


def detect_frame(detector: FaceDetector, frame: Frame, settings: PipelineSettings) -> Detections:
    """`detect_frames` for one frame."""
    return detect_frames(detector, [frame], settings)[0]


class Pipeline:
    """Runs one source through one detector into the given sinks."""

    def __init__(
        self,
        source: Source,
        detector: FaceDetector,
        sinks: Sequence[Sink],
        settings: PipelineSettings | None = None,
        stats: PipelineStats | None = None,
        style: overlay.OverlayStyle = overlay.DEFAULT_STYLE,
    ) -> None:
        self.source = source
        self.detector = detector
        self.sinks = list(sinks)
        self.settings = settings or PipelineSettings()
        self.stats = stats or PipelineStats()
        self.style = style
        self.lossless = not source.info.live
        self._ended_by = ENDED_BY_SOURCE
        self.tracking: TrackingDetector | None = None
        if self.settings.tracking:
            self.tracking = TrackingDetector(
                detector,  # tracking also needs `refine`, which MTCNN has
                ScanScheduler(source.info.fps, SchedulerSettings(adaptive=source.info.live)),
                detect_width=self.settings.detect_width,
                min_confidence=self.settings.min_confidence,
            )
            self.stats.detect_every = self.tracking.scheduler.describe()
        else:
            every = self.settings.detect_every
            if every:
                self.stats.detect_every = f"every {every} frames" if every > 1 else "every frame"
            else:
                self.stats.detect_every = "every frame" if self.lossless else "newest frame when free"

    def run(
        self,
        stop: threading.Event,
        frames: Iterator[Frame] | None = None,
        abort: threading.Event | None = None,
    ) -> RunSummary:
        """Process the source until it ends, a bound is reached or `stop` is set.

        `frames`: the source's already opened iterator; by default the source is opened here
        (a bad source raises `SourceError` before any thread starts). Always closes the sinks;
        once `abort` is set, it stops waiting for the threads and closes the sinks at once.
        Raises `PipelineError` when a thread or sink failed.
        """
        abort = abort or threading.Event()
        self._ended_by = ENDED_BY_SOURCE
        frames = frames if frames is not None else self.source.frames()
        size = self.settings.queue_size
        display: FrameChannel[Frame] = FrameChannel(size, self.lossless, stop, self.stats.dropped_frame)
        to_detect: FrameChannel[Frame] = FrameChannel(size if self.lossless else 1, self.lossless, stop)
        results: FrameChannel[tuple[int, Detections]] = FrameChannel(
            max(size, 2) if self.lossless else 1, self.lossless, stop
        )
        threads = [
            threading.Thread(
                target=self._capture, args=(frames, display, to_detect, stop), name="capture", daemon=True
            ),
            threading.Thread(target=self._detect, args=(to_detect, results), name="detector", daemon=True),
        ]
        for thread in threads:
            thread.start()
        shown, stopped = 0, False
        try:
            shown = self._display_loop(display, results, stop)
            stopped = stop.is_set()
        finally:
            stop.set()
            _join_all(threads, abort)
            self._close_sinks()
        return RunSummary(
            frames=shown,
            detections=self.stats.detected,
            stopped=stopped,
            captured=self.stats.captured,
            dropped=self.stats.dropped,
            ended_by=ENDED_BY_STOP if stopped else self._ended_by,
            aborted=abort.is_set(),
        )

    def _wants_detection(self, index: int) -> bool:
        every = self.settings.detect_every
        return self.tracking is not None or every is None or index % every == 0

    def _capture(
        self, frames: Iterator[Frame], display: FrameChannel, to_detect: FrameChannel, stop: threading.Event
    ) -> None:
        error: BaseException | None = None
        read = 0
        first_time: float | None = None
        try:
            for frame in frames:
                first_time = frame.timestamp if first_time is None else first_time
                if stop.is_set():
                    self._ended_by = ENDED_BY_STOP
                    break
                if self._bound_reached(read, frame.timestamp - first_time):
                    self._ended_by = ENDED_BY_LIMIT
                    break
                read += 1
                self.stats.captured_frame()
                self.stats.set_corrupt(self.source.info.corrupt_frames)
                if self._wants_detection(frame.index) and not to_detect.put(frame):
                    break
                if not display.put(frame):
                    break
        except BaseException as exc:  # carried to the display loop, re-raised there
            error = exc
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            to_detect.close()
            display.close(error)

    def _bound_reached(self, read: int, elapsed: float) -> bool:
        max_frames, duration = self.settings.max_frames, self.settings.duration
        return (max_frames is not None and read >= max_frames) or (
            duration is not None and elapsed >= duration
        )

    def _detect(self, to_detect: FrameChannel, results: FrameChannel) -> None:
        error: BaseException | None = None
        try:
            while True:
                frame = to_detect.get()
                if frame is None or isinstance(frame, Closed):
                    break
                started = time.perf_counter()
                if self.tracking is not None:
                    found, _ = self.tracking.process(frame)
                    self.stats.detect_every = self.tracking.scheduler.describe()
                    batch, detections = [frame], [found]
                else:
                    batch = self._waiting_batch(frame, to_detect)
                    detections = detect_frames(self.detector, batch, self.settings)
                seconds = (time.perf_counter() - started) / len(batch)
                for frame, found in zip(batch, detections):
                    self.stats.detected_frame(seconds)
                    if not results.put((frame.index, found)):
                        return
        except BaseException as exc:  # carried to the display loop, re-raised there
            error = exc
        finally:
            results.close(error)

    def _waiting_batch(self, first: Frame, to_detect: FrameChannel) -> list[Frame]:
        """`first` and, for files, the frames already queued behind it (up to `batch_size`)."""
        batch = [first]
        while self.lossless and len(batch) < self.settings.batch_size:
            frame = to_detect.poll()
            if frame is None or isinstance(frame, Closed):
                break
            batch.append(frame)
        return batch

    def _display_loop(self, display: FrameChannel, results: FrameChannel, stop: threading.Event) -> int:
        current, current_index, shown = Detections.empty(), -1, 0
        needs_canvas = any(sink.needs_canvas for sink in self.sinks)
        while not stop.is_set():
            frame = display.get()
            if frame is None:
                break
            if isinstance(frame, Closed):
                _raise_from("capture", frame)
                break
            if self.lossless and self._wants_detection(frame.index):
                result = results.get()
                if result is None:
                    break
                if isinstance(result, Closed):
                    _raise_from("detector", result)
                    raise PipelineError(f"detector: ended before frame {frame.index} was detected")
                current_index, current = result
            elif not self.lossless:
                current_index, current = self._newest_result(results, current_index, current)
                if self.tracking is not None:
                    current = self.tracking.predict(frame.timestamp)
            started = time.perf_counter()
            item = AnnotatedFrame(frame, current, current_index == frame.index, current_index)
            canvas = overlay.draw(frame.image.copy(), current, self.style) if needs_canvas else None
            for sink in self.sinks:
                sink.write(item, canvas)
            shown += 1
            self.stats.displayed_frame(
                time.perf_counter() - started,
                time.monotonic() - frame.captured_at,
                len(current),
                len(display),
            )
        return shown

    @staticmethod
    def _newest_result(results: FrameChannel, index: int, detections: Detections) -> tuple[int, Detections]:
        while True:
            result = results.poll()
            if result is None or (isinstance(result, Closed) and result.error is None):
                return index, detections
            if isinstance(result, Closed):
                _raise_from("detector", result)
            index, detections = result

    def _close_sinks(self) -> None:
        failures = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:
                failures.append(f"{type(sink).__name__}: {error}")
        if failures:
            raise PipelineError("; ".join(failures), "outputs")


def _join_all(threads: Sequence[threading.Thread], abort: threading.Event) -> None:
    """Wait for the threads (at most `JOIN_SECONDS` in all), or no longer once `abort` is set."""
    deadline = time.monotonic() + JOIN_SECONDS
    for thread in threads:
        while thread.is_alive() and not abort.is_set() and time.monotonic() < deadline:
            thread.join(0.05)


def _raise_from(stage: str, closed: Closed) -> None:
    if closed.error is not None:
        error = closed.error
        message = str(error) or type(error).__name__
        raise PipelineError(f"{stage}: {message}", stage, message) from error
