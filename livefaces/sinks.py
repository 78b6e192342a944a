"""Outputs the pipeline feeds besides video: a JSON Lines log and annotated image files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from livefaces.frames import FrameResult


class JsonLinesSink:
    """One JSON line per processed frame: camera, index, time in seconds, faces in `detect_faces`
    format.

    `detected` tells whether the faces were found on this very frame or reused from an earlier
    one; image sources add the file name. `path="-"` writes to standard output.
    """

    render: str | None = None

    def __init__(self, path: str) -> None:
        self._stream: IO[str] = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115
        self._owned = path != "-"
        self._name = "standard output" if path == "-" else path
        self.lines_written = 0

    def write(self, item: FrameResult, canvas: np.ndarray | None) -> None:
        height, width = item.frame.image.shape[:2]
        record: dict = {
            "camera": item.camera,
            "frame": item.frame.index,
            "time": round(item.frame.timestamp, 6),
        }
        if item.frame.name is not None:
            record["file"] = item.frame.name
        record["detected"] = item.fresh
        record["faces"] = item.detections.to_dicts(height, width)
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()
        self.lines_written += 1

    def close(self) -> None:
        """Every line is flushed as it is written, so there is nothing left to lose."""
        if self._owned and not self._stream.closed:
            self._stream.close()

    def summary(self) -> str:
        return f"{self._name}: {self.lines_written} JSON lines"


class ImageFolderSink:
    """Annotated copies of image-source frames, under `folder`, keeping names relative to `root`."""

    render: str | None = "annotated"

    def __init__(self, folder: str | Path, root: Path | None) -> None:
        self.folder = Path(folder)
        self.root = root if root is None or root.is_dir() else root.parent
        self.written = 0

    def write(self, item: FrameResult, canvas: np.ndarray | None) -> None:
        if canvas is None:
            raise ValueError("the image writer needs the annotated image")
        name = Path(item.frame.name or f"frame_{item.frame.index:06d}.png")
        relative = name.relative_to(self.root) if self.root and name.is_relative_to(self.root) else name.name
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), canvas):
            raise OSError(f"{target}: the annotated image could not be written")
        self.written += 1

    def close(self) -> None:
        """Nothing is buffered."""

    def summary(self) -> str:
        return f"{self.folder}: {self.written} annotated images"
