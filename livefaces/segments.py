"""Recordings cut into segments: a new file every `--segment-time` seconds of source time, and
whenever the picture's size changes (a camera that came back at another resolution).

File names come from the output pattern: `{start}` becomes the local wall-clock time the segment
began (20261125-143000), so a restarted service never overwrites what it recorded before; a
pattern without `{start}` gets `-{start}` before its suffix when segments are asked for. Each
segment is a complete recording of its own (timestamps from 0, crash-safe for live sources), so
a player opens any of them alone and a hard kill costs at most the last second or two of one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from livefaces.frames import FrameResult
from livefaces.recorder import VideoRecorder

START = "{start}"
START_FORMAT = "%Y%m%d-%H%M%S"


def return_freed_memory() -> None:
    """Hand the memory a finished encoder freed back to the system. glibc keeps freed blocks in
    its per-thread arenas, so each rotated segment left a few MB behind (a 10-minute soak with
    60 s segments grew 15 MB a minute); `malloc_trim` releases them. A no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def with_start(pattern: Path) -> Path:
    """`pattern` with a `{start}` in its file name (added before the suffix if missing)."""
    if START in pattern.name:
        return pattern
    return pattern.with_name(f"{pattern.stem}-{START}{pattern.suffix}")


def segment_path(pattern: Path, wall_time: float, taken: set[Path]) -> Path:
    """The file for a segment starting at `wall_time`; never one of `taken` (-2, -3... appended
    when two segments start within the same second)."""
    stamp = datetime.fromtimestamp(wall_time).strftime(START_FORMAT)
    path = Path(str(pattern).replace(START, stamp))
    number = 2
    candidate = path
    while candidate in taken or candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


class SegmentedRecorder:
    """A video output that rotates files: every `seconds` of source time (None: only when the
    frame size changes), each file made by `make(path)`."""

    render: str | None = "annotated"

    def __init__(
        self,
        pattern: Path,
        make: Callable[[Path], VideoRecorder],
        seconds: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError(f"segment length must be > 0 seconds, got {seconds}")
        self.pattern = with_start(pattern) if seconds is not None else pattern
        self.seconds = seconds
        self._make = make
        self._wall_clock = wall_clock
        self._current: VideoRecorder | None = None
        self._started_at = 0.0
        self._size: tuple[int, ...] = ()
        self.finished: list[VideoRecorder] = []

    @property
    def paths(self) -> list[Path]:
        """Every segment written so far, oldest first."""
        done = [r.path for r in self.finished]
        return done + ([self._current.path] if self._current is not None else [])

    def write(self, item: FrameResult, canvas: np.ndarray | None) -> None:
        if canvas is None:
            raise ValueError("the recorder needs the annotated image")
        timestamp = item.frame.timestamp
        if self._current is None or self._due(timestamp) or canvas.shape != self._size:
            self._rotate(timestamp, canvas.shape)
        assert self._current is not None
        self._current.write(item, canvas)

    def close(self) -> None:
        """Finish the open segment (the others are finished already)."""
        if self._current is not None:
            current, self._current = self._current, None
            self.finished.append(current)
            current.close()

    def summary(self) -> str | None:
        recorders = self.finished + ([self._current] if self._current is not None else [])
        if not recorders:
            return f"{self.pattern}: not written (no frame reached it)"
        if len(recorders) == 1:
            return recorders[0].summary()
        frames = sum(r.frames_in_file for r in recorders)
        incomplete = [r.path.name for r in recorders if not r.complete]
        lost = f" - INCOMPLETE: {', '.join(incomplete)}" if incomplete else ""
        return (
            f"{len(recorders)} segments {recorders[0].path} ... {recorders[-1].path.name}: "
            f"{frames} frames{lost}"
        )

    def _due(self, timestamp: float) -> bool:
        return self.seconds is not None and timestamp - self._started_at >= self.seconds

    def _rotate(self, timestamp: float, size: tuple[int, ...]) -> None:
        if self._current is not None:
            self.close()
            return_freed_memory()
        path = segment_path(self.pattern, self._wall_clock(), {r.path for r in self.finished})
        self._current = self._make(path)
        self._started_at, self._size = timestamp, size
