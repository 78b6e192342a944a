"""Old snapshots removed, oldest first: past `--keep-days`, or while the folder is over `--max-disk`.

Only this app's own snapshot files are touched: JPEGs named as `livefaces.outputs.snapshots`
names them, in the `DIR/<camera>/<date>/` layout (and their half-written `.part` leftovers of a
crash, after an hour); date folders left empty are removed. One
`Retention` serves every camera of a run (the disk budget is the folder's): each camera's
snapshot output calls `maybe_sweep()` with every frame; a sweep runs at the first call and then
once per `interval` of the clock, in the thread of the camera whose turn it is (a lock lets one
sweep run at a time; another camera skips instead of waiting). The clock is injected for tests.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DAY = 86400.0
INTERVAL = 60.0  # seconds of wall clock between sweeps
LEFTOVER_SECONDS = 3600.0  # a half-written snapshot this old was left by a crash
SNAPSHOT_NAME = re.compile(r".+_\d{8}T\d{6}\.\d{3}Z_track\d+_(face|frame|best)(-\d+)?\.jpg")
DATE_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Swept:
    """What one sweep removed."""

    files: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _Found:
    path: Path
    mtime: float
    size: int


def snapshot_files(root: Path) -> list[_Found]:
    """This app's snapshot files under `root` (DIR/<camera>/<date>/<name>.jpg), oldest first."""
    found = []
    for path in root.glob("*/*/*.jpg"):
        if not (SNAPSHOT_NAME.fullmatch(path.name) and DATE_FOLDER.fullmatch(path.parent.name)):
            continue
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        found.append(_Found(path, stat.st_mtime, stat.st_size))
    found.sort(key=lambda f: (f.mtime, f.path.name))
    return found


def leftovers(root: Path, before: float) -> list[Path]:
    """Half-written snapshots (`<name>.jpg.part`, left by a crash) last touched before `before`."""
    found = []
    for path in root.glob("*/*/*.jpg.part"):
        with contextlib.suppress(OSError):
            if SNAPSHOT_NAME.fullmatch(path.name[: -len(".part")]) and path.stat().st_mtime < before:
                found.append(path)
    return found


def sweep(root: Path, now: float, keep_days: float | None, max_bytes: int | None) -> Swept:
    """Remove snapshots older than `keep_days` (by modification time against `now`, Unix seconds),
    then the oldest ones while the rest hold more than `max_bytes`; and what a crash left
    half-written more than an hour ago."""
    for path in leftovers(root, now - LEFTOVER_SECONDS):
        _remove(path)
    files = snapshot_files(root)
    oldest_kept = now - keep_days * DAY if keep_days is not None else None
    total = sum(f.size for f in files)
    doomed = []
    for found in files:
        expired = oldest_kept is not None and found.mtime < oldest_kept
        if expired or (max_bytes is not None and total > max_bytes):
            doomed.append(found)
            total -= found.size
    removed = [found for found in doomed if _remove(found.path)]
    for folder in {found.path.parent for found in removed}:
        with contextlib.suppress(OSError):  # only an empty folder goes
            folder.rmdir()
    return Swept(len(removed), sum(found.size for found in removed))


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class Retention:
    """The removal policy of one snapshot folder, run now and then from the cameras' threads."""

    def __init__(
        self,
        root: str | Path,
        keep_days: float | None,
        max_bytes: int | None,
        clock: Callable[[], float] = time.time,
        interval: float = INTERVAL,
    ) -> None:
        self.root = Path(root)
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self.interval = interval
        self.removed = Swept()
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None  # None: sweep at the first call

    def maybe_sweep(self) -> Swept | None:
        """Sweep if one is due and no other thread is sweeping; what it removed, or None."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            now = self._clock()
            if self._next is not None and self._next - self.interval <= now < self._next:
                return None  # not due (a clock set back makes it due at once)
            self._next = now + self.interval
            swept = sweep(self.root, now, self.keep_days, self.max_bytes)
            self.removed = Swept(self.removed.files + swept.files, self.removed.bytes + swept.bytes)
            return swept
        finally:
            self._lock.release()

    def summary(self) -> str | None:
        """What every sweep of the run removed, or None when nothing was."""
        if not self.removed.files:
            return None
        megabytes = self.removed.bytes / 1e6
        return f"{self.root}: removed {self.removed.files} old snapshots ({megabytes:.1f} MB)"
