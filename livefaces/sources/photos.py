"""Photo folders at scale: walked lazily in sorted order, decoded ahead by a small pool of threads.

A folder of hundreds of thousands of photos is never listed into memory with its images: the walk
holds one folder's names per level of depth, and at most `ahead` decoded images wait for the
detector. `cv2.imread` releases the GIL, so the pool's threads decode while TensorFlow detects.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

DECODE_THREADS = 2
DECODE_AHEAD = 4


def walk_images(
    folder: Path, suffixes: tuple[str, ...], skip: Callable[[str], bool] | None = None
) -> Iterator[Path]:
    """The image files under `folder` (recursively; symlinked files yes, symlinked folders no),
    in name order folder by folder, leaving out those whose path relative to `folder` (with `/`)
    `skip` says were done already."""
    for path in _walk(folder, suffixes):
        if skip is None or not skip(path.relative_to(folder).as_posix()):
            yield path


def _walk(folder: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return  # an unreadable sub-folder holds nothing we can read
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), suffixes)
        elif entry.name.lower().endswith(suffixes) and entry.is_file():
            yield Path(entry.path)


def count_images(folder: Path, suffixes: tuple[str, ...], skip: Callable[[str], bool] | None = None) -> int:
    """How many images `walk_images` will give (a second walk: names only, memory flat)."""
    return sum(1 for _ in walk_images(folder, suffixes, skip))


def read_image(path: Path) -> np.ndarray | None:
    """The image as BGR, or None when it cannot be decoded."""
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def decode_ahead(
    paths: Iterable[Path],
    decode: Callable[[Path], np.ndarray | None] = read_image,
    threads: int = DECODE_THREADS,
    ahead: int = DECODE_AHEAD,
) -> Iterator[tuple[Path, np.ndarray | None]]:
    """(path, image or None) in the order of `paths`, decoded by `threads` threads, at most
    `ahead` images decoded or in progress beyond the one just given out."""
    pending: deque[tuple[Path, Future[np.ndarray | None]]] = deque()
    names = iter(paths)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode") as pool:
        try:
            while True:
                while len(pending) < ahead + 1:
                    path = next(names, None)
                    if path is None:
                        break
                    pending.append((path, pool.submit(decode, path)))
                if not pending:
                    return
                path, future = pending.popleft()
                yield path, future.result()
        finally:
            for _, future in pending:
                future.cancel()
