"""`--save-faces DIR`: face crops written as files, with a JSON Lines index of what was saved.

Layout: `DIR/<camera>/index.jsonl` and the crops beside it. A photo's crops mirror the folder's
tree: `DIR/photos/trip/img_001_0.jpg` for the first face of `photos/trip/img_001.jpg`. A video's
carry the camera, frame index, time and track: `DIR/clip/clip_0000123_4.100s_track7.jpg`.

The index has one JSON object per line: per saved crop its file (`crop`, relative to the index),
`box` (x1, y1, x2, y2), five `landmarks`, `confidence`, `sharpness` (variance of the Laplacian),
`track`, and its `photo` or `frame` and `time`; a photo without faces gets one line with `crop`
null, so that it too counts as done. Photos are resumable: every photo's lines are written in
one call and flushed, so a crash or Ctrl-C loses at most the photo in progress (a half-written
last line is cut off when the index is opened again), and re-running the same command leaves out
every photo the index already names.

Only measured faces of confirmed tracks are cut (a box predicted between detections has no
landmarks of its own). With `save_every` S, each track keeps at most one crop per window of S
seconds of source time (windows [kS, (k+1)S)): the best of the window, by confidence rounded to
0.01 and then by sharpness, so that among equally sure faces the sharpest wins.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livefaces.faces import Margin, crop_faces, sharpness
from livefaces.frames import FrameResult

INDEX_NAME = "index.jsonl"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CropSettings:
    """How crops are cut and written: margin, square size (None: the box's own), alignment to the
    ArcFace template, file format ("jpg" or "png"), and at most one crop per track per
    `save_every` seconds (None: every measured face of every frame)."""

    margin: str = "0"
    size: int | None = None
    align: bool = False
    format: str = "jpg"
    save_every: float | None = None


def read_done(index: Path) -> set[str]:
    """The photos (paths relative to their folder) the index already records as done."""
    done: set[str] = set()
    try:
        with open(index, encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a run that crashed while writing it
                if isinstance(record, dict) and isinstance(record.get("photo"), str):
                    done.add(record["photo"])
    except FileNotFoundError:
        pass
    return done


def _open_for_append(index: Path) -> Any:
    """The index opened for appending, a half-written last line (a crash) cut off first."""
    index.parent.mkdir(parents=True, exist_ok=True)
    stream = open(index, "a+b")  # noqa: SIM115 - owned by the sink, closed in close()
    size = stream.seek(0, os.SEEK_END)
    if size:
        stream.seek(max(0, size - 65536))
        tail = stream.read()
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            stream.truncate(size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))
        stream.seek(0, os.SEEK_END)
    return stream


@dataclass
class _Held:
    """The best crop of one track in the current window, waiting for the window to end."""

    window: int
    key: tuple[float, float]
    crop: np.ndarray
    record: dict[str, Any]


class FaceCropSink:
    """One camera's face crops and index (an output of the threaded runtime)."""

    render: str | None = None  # crops are cut from the frame itself

    def __init__(self, folder: str | Path, camera: str, root: Path | None, settings: CropSettings) -> None:
        self.folder = Path(folder) / camera
        self.camera = camera
        self.root = root if root is None or root.is_dir() else root.parent
        self.settings = settings
        self._margin = Margin.parse(settings.margin)
        self.index_path = self.folder / INDEX_NAME
        self.done_before = len(read_done(self.index_path))
        self._index = _open_for_append(self.index_path)
        self._held: dict[int, _Held] = {}
        self.saved = self.photos = 0

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        faces = result.faces
        found = faces.detections.select(faces.measured & faces.confirmed)
        frame = result.frame
        crops = crop_faces(frame.image, found, self._margin, self.settings.size, self.settings.align)
        if frame.name is not None:
            self._write_photo(frame.name, found, crops)
            return
        lines = []
        window = self._window(frame.timestamp)
        for k, crop in enumerate(crops):
            record = self._record(found, k, crop, frame=frame.index, time=round(frame.timestamp, 6))
            track = int(found.track_ids[k])
            if window is None or track < 0:
                lines.append(self._save(crop, record, f"face{k}" if track < 0 else f"track{track}"))
                continue
            key = (round(record["confidence"], 2), record["sharpness"])
            held = self._held.get(track)
            if held is not None and held.window != window:
                lines.append(self._save_held(track))
                held = None
            if held is None or key > held.key:
                self._held[track] = _Held(window, key, crop, record)
        if window is not None:
            lines += [
                self._save_held(track) for track in list(self._held) if self._held[track].window < window
            ]
        self._append(lines)

    def close(self) -> None:
        """Save the crops still held for their window, then close the index."""
        try:
            self._append([self._save_held(track) for track in list(self._held)])
        finally:
            self._index.close()

    def summary(self) -> str:
        what = f"{self.saved} face crops"
        if self.photos:
            what += f" from {self.photos} photos"
        if self.done_before:
            what += f"; {self.done_before} photos already in the index were skipped"
        return f"{self.folder}: {what}, index {self.index_path.name}"

    def _write_photo(self, name: str, found: Any, crops: list[np.ndarray]) -> None:
        path = Path(name)
        relative = (
            path.relative_to(self.root) if self.root and path.is_relative_to(self.root) else Path(path.name)
        )
        photo = relative.as_posix()
        lines = []
        for k, crop in enumerate(crops):
            record = self._record(found, k, crop, photo=photo)
            lines.append(self._save(crop, record, str(k), relative.with_suffix("")))
        if not lines:
            lines.append({"camera": self.camera, "photo": photo, "crop": None})
        self.photos += 1
        self._append(lines)

    def _record(self, found: Any, k: int, crop: np.ndarray, **where: Any) -> dict[str, Any]:
        """A crop's line: camera, where it comes from (photo, or frame and time), the crop's file
        (filled in when saved), track, confidence, sharpness, box and landmarks."""
        track = int(found.track_ids[k])
        return {
            "camera": self.camera,
            **where,
            "crop": None,
            "confidence": round(float(found.scores[k]), 6),
            "sharpness": round(sharpness(crop), 2),
            "track": track if track >= 0 else None,
            "box": [round(float(v), 2) for v in found.boxes[k]],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in found.landmarks[k]],
        }

    def _window(self, timestamp: float) -> int | None:
        every = self.settings.save_every
        return None if every is None else math.floor(timestamp / every + 1e-9)

    def _save_held(self, track: int) -> dict[str, Any]:
        held = self._held.pop(track)
        return self._save(held.crop, held.record, f"track{track}")

    def _save(
        self, crop: np.ndarray, record: dict[str, Any], tag: str, stem: Path | None = None
    ) -> dict[str, Any]:
        """Write the crop's file; its index record, with the file's name."""
        if stem is None:
            stem = Path(f"{self.camera}_{record['frame']:07d}_{record['time']:.3f}s")
        relative = stem.with_name(f"{stem.name}_{tag}.{self.settings.format}")
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if self.settings.format == "jpg" else []
        if not cv2.imwrite(str(target), crop, params):
            raise OSError(f"{target}: the face crop could not be written")
        self.saved += 1
        record["crop"] = relative.as_posix()
        return record

    def _append(self, records: list[dict[str, Any]]) -> None:
        """The records as lines, in one write, flushed: a crash loses no finished photo."""
        if records:
            self._index.write("".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))
            self._index.flush()
