"""Pipeline health: rates measured over a sliding window on an injected clock, and counters.

Every thread records into one `PipelineStats`; the panel reads `snapshot()` a few times a
second. Rates are (n - 1) / elapsed over the last ticks, so a burst of re-reads of the same
frame cannot inflate them, and tests drive the clock by hand instead of sleeping. A rate is
only given once enough events over enough time stand behind it (None before: "25126 fps"
after two images says nothing).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class RateMeter:
    """Events per second over the last `window` events.

    min_events, min_seconds: the least data a rate is given for (events seen, and seconds
    between the first and last of them); before that `rate()` is None.
    """

    def __init__(
        self, window: int = 30, clock: Clock = time.monotonic, min_events: int = 5, min_seconds: float = 0.5
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2 events, got {window}")
        if not 2 <= min_events <= window:
            raise ValueError(f"min_events must be in [2, window={window}], got {min_events}")
        self._times: deque[float] = deque(maxlen=window)
        self._clock = clock
        self._min_events, self._min_seconds = min_events, min_seconds
        self._first: float | None = None

    def tick(self) -> None:
        now = self._clock()
        self._first = now if self._first is None else self._first
        self._times.append(now)

    def rate(self) -> float | None:
        """Events per second, or None while too few events or too little time stand behind it."""
        if len(self._times) < self._min_events or self._first is None:
            return None
        if self._times[-1] - self._first < self._min_seconds:
            return None
        elapsed = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / elapsed if elapsed > 0 else None


class RollingMedian:
    """Median of the last `window` values (milliseconds of a stage, latency)."""

    def __init__(self, window: int = 60) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self._values.append(value)

    def median(self) -> float:
        if not self._values:
            return 0.0
        ordered = sorted(self._values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class StatsSnapshot:
    """One consistent reading of the pipeline's health."""

    elapsed: float
    captured: int
    detected: int
    displayed: int
    capture_fps: float | None
    detect_fps: float | None
    display_fps: float | None
    detect_ms: float
    draw_ms: float
    latency_ms: float
    dropped: int
    queue_depth: int
    faces: int
    corrupt: int
    detect_every: str


class PipelineStats:
    """Thread-safe counters and meters for the capture, detector and display stages."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._capture = RateMeter(clock=clock)
        self._detect = RateMeter(clock=clock)
        self._display = RateMeter(clock=clock)
        self._detect_ms = RollingMedian()
        self._draw_ms = RollingMedian()
        self._latency_ms = RollingMedian()
        self.captured = self.detected = self.displayed = 0
        self.dropped = self.queue_depth = self.faces = self.corrupt = 0
        self.detect_every = "-"

    def captured_frame(self) -> None:
        with self._lock:
            self.captured += 1
            self._capture.tick()

    def dropped_frame(self) -> None:
        with self._lock:
            self.dropped += 1

    def detected_frame(self, seconds: float) -> None:
        with self._lock:
            self.detected += 1
            self._detect.tick()
            self._detect_ms.add(seconds * 1000)

    def displayed_frame(
        self, draw_seconds: float, latency_seconds: float, faces: int, queue_depth: int
    ) -> None:
        with self._lock:
            self.displayed += 1
            self._display.tick()
            self._draw_ms.add(draw_seconds * 1000)
            self._latency_ms.add(latency_seconds * 1000)
            self.faces = faces
            self.queue_depth = queue_depth

    def set_corrupt(self, count: int) -> None:
        with self._lock:
            self.corrupt = count

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                elapsed=self._clock() - self._started,
                captured=self.captured,
                detected=self.detected,
                displayed=self.displayed,
                capture_fps=self._capture.rate(),
                detect_fps=self._detect.rate(),
                display_fps=self._display.rate(),
                detect_ms=self._detect_ms.median(),
                draw_ms=self._draw_ms.median(),
                latency_ms=self._latency_ms.median(),
                dropped=self.dropped,
                queue_depth=self.queue_depth,
                faces=self.faces,
                corrupt=self.corrupt,
                detect_every=self.detect_every,
            )
