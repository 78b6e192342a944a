"""A live camera's connection quality over the last hour: reconnects, stalls, frames received.

Counts are kept per minute (60 small buckets, whatever the frame rate), so the window slides
with bounded memory for runs of weeks. One thread records (the camera's reader); the panel
reads `summary`, a plain value, from another, hence the lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True)
class LinkQuality:
    """Over the last `seconds` (an hour, or since the camera started when that is shorter):
    reconnections that succeeded, stalls, frames received, and the rate the source announced;
    `minutes`: the per-minute counts behind them, oldest first (the web view's history)."""

    seconds: float
    reconnects: int
    stalls: int
    frames: int
    expected_fps: float | None
    minutes: tuple[tuple[int, int, int, int], ...] = ()  # (minutes ago, frames, reconnects, stalls)

    @property
    def fps(self) -> float | None:
        """Frames received per second over the window, offline time included (None under 1 s)."""
        return self.frames / self.seconds if self.seconds >= 1.0 else None


class QualityWindow:
    """Per-minute counts of frames, reconnects and stalls over the last `span` seconds."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, span: float = HOUR, bucket: float = MINUTE
    ):
        self._clock = clock
        self._bucket = bucket
        self._buckets_kept = max(1, round(span / bucket))
        self._start = clock()
        self._counts: deque[list[int]] = deque()  # [bucket number, frames, reconnects, stalls]
        self._lock = threading.Lock()

    def frame(self) -> None:
        self._add(1, 0, 0)

    def reconnected(self) -> None:
        self._add(0, 1, 0)

    def stalled(self) -> None:
        self._add(0, 0, 1)

    def summary(self, expected_fps: float | None = None) -> LinkQuality:
        with self._lock:
            now = self._clock()
            current = self._expire(now)
            window_start = self._start + (current - self._buckets_kept + 1) * self._bucket
            frames = sum(counts[1] for counts in self._counts)
            reconnects = sum(counts[2] for counts in self._counts)
            stalls = sum(counts[3] for counts in self._counts)
            minutes = tuple((current - n, f, r, st) for n, f, r, st in self._counts)
        seconds = now - max(self._start, window_start)
        return LinkQuality(seconds, reconnects, stalls, frames, expected_fps, minutes)

    def _add(self, frames: int, reconnects: int, stalls: int) -> None:
        with self._lock:
            current = self._expire(self._clock())
            if not self._counts or self._counts[-1][0] != current:
                self._counts.append([current, 0, 0, 0])
            counts = self._counts[-1]
            counts[1] += frames
            counts[2] += reconnects
            counts[3] += stalls

    def _expire(self, now: float) -> int:
        """The current bucket's number, after dropping the buckets that left the window."""
        current = int((now - self._start) // self._bucket)
        while self._counts and self._counts[0][0] <= current - self._buckets_kept:
            self._counts.popleft()
        return current
