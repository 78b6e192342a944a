"""The snapshots output (`--snapshots DIR`): JPEGs of every confirmed face, when it appears and at
its end.

When a track is confirmed (its `face_appeared` event, handed right after the frame it came
with), two files: the face cut out with a margin around its box, and the whole frame. When it
ends (`face_left`), its best shot: the face cut from the frame where its measured confidence was
highest. The output keeps only that small crop per open track (never frames), updated whenever a
frame shows the track with a higher score (a frame where the face was measured wins a tie). The
paths are added to the events (`snapshots`), which the writer passes on to the outputs after
this one (the events file).

Layout: `DIR/<camera>/<YYYY-MM-DD>/<camera>_<start>_track<id>_<kind>.jpg`, with the date and
`start` (the track's `face_appeared` wall time, `20240501T120000.250Z`) in UTC as the events
are, and kind `face`, `frame` or `best`. The camera's name is made file-name safe (credentials
masked first, in case a library caller named a camera after its URL). Files are written under a
temporary name and renamed, so a crash never leaves half a JPEG under a snapshot's name (the
retention sweep removes such leftovers after an hour).

`--snapshot-limit N` caps the files of each camera to N per minute (a crowd cannot fill the
disk): an event whose files do not fit is left without them, and the skipped files are counted
in the summary. A file that cannot be written (a full disk) is counted too; it never stops the
camera.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from livefaces.events import Event, FaceAppeared, FaceLeft
from livefaces.frames import FrameResult
from livefaces.outputs.retention import Retention
from livefaces.redact import redact_url

MARGIN = 0.3  # of the box's width and height, added on every side of a face crop
QUALITY = 90  # JPEG
WINDOW = 60.0  # seconds: --snapshot-limit counts files per minute


def safe_name(camera: str) -> str:
    """`camera` as a file-name part: credentials masked, then anything but letters, digits, `_`,
    `.` and `-` made `-`, no leading dot or dash ("camera" if nothing is left)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", redact_url(camera)).strip(".-")
    return safe or "camera"


def crop(image: np.ndarray, box: Sequence[float], margin: float = MARGIN) -> np.ndarray | None:
    """A copy of the face at `box` (x1, y1, x2, y2) with `margin` of its size on every side,
    clipped to the image; None when nothing of it lies in the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = image.shape[:2]
    left, top = max(int(x1 - dx), 0), max(int(y1 - dy), 0)
    right, bottom = min(int(np.ceil(x2 + dx)), width), min(int(np.ceil(y2 + dy)), height)
    if right <= left or bottom <= top:
        return None
    return image[top:bottom, left:right].copy()


class SnapshotLimit:
    """At most `per_minute` files in any 60 s of the (monotonic, injected) clock."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._times: deque[float] = deque()

    def allow(self, files: int) -> bool:
        """Whether `files` more fit in the last minute's budget (if so they are counted)."""
        now = self._clock()
        while self._times and self._times[0] <= now - WINDOW:
            self._times.popleft()
        if len(self._times) + files > self.per_minute:
            return False
        self._times.extend([now] * files)
        return True


@dataclass
class _Best:
    score: float
    measured: bool
    image: np.ndarray


class BestShots:
    """Each open track's best face crop so far: the crop from the frame where its score was
    highest (a measured face wins a tie). One small crop per track, never frames. A confirmed
    track (`announce`d: its face_appeared was handed out) keeps its crop until `pop` at its end;
    a tentative one is forgotten as soon as a frame no longer shows it (no face_left will come)."""

    def __init__(self) -> None:
        self._best: dict[int, _Best] = {}
        self._announced: set[int] = set()

    def __len__(self) -> int:
        return len(self._best)

    def update(self, result: FrameResult, image: np.ndarray) -> None:
        """Keep the crops of `image` (the raw frame) that beat each track's best so far."""
        faces = result.faces
        ids = [int(i) for i in faces.track_ids]
        for row, track_id in enumerate(ids):
            if track_id < 0:
                continue
            score, measured = float(faces.scores[row]), bool(faces.measured[row])
            best = self._best.get(track_id)
            if best is not None and (score, measured) <= (best.score, best.measured):
                continue
            picture = crop(image, faces.boxes[row])
            if picture is not None:
                self._best[track_id] = _Best(score, measured, picture)
        present = set(ids)
        for track_id in [t for t in self._best if t not in present and t not in self._announced]:
            del self._best[track_id]

    def announce(self, track_id: int) -> None:
        """The track is confirmed: keep its crop until its end, in or out of view."""
        self._announced.add(track_id)

    def pop(self, track_id: int) -> np.ndarray | None:
        """The track ended: its best crop (None if none was kept), forgotten here."""
        self._announced.discard(track_id)
        best = self._best.pop(track_id, None)
        return None if best is None else best.image

    def clear(self) -> None:
        self._best.clear()
        self._announced.clear()


class EventPictures:
    """The picture that goes with each face event, for outputs that send pictures (MQTT, the web
    view): the file `--snapshots` wrote for it when it did (the face as it appeared, the best shot
    as it left), else the output's own crop of the raw frame. `update` with every frame result."""

    def __init__(self) -> None:
        self._best = BestShots()
        self._last: FrameResult | None = None

    def update(self, result: FrameResult) -> None:
        self._last = result
        self._best.update(result, result.frame.image)

    def picture(self, event: FaceAppeared | FaceLeft) -> Path | np.ndarray | None:
        """The event's picture: a file's path, a BGR crop, or None when there is none."""
        if isinstance(event, FaceAppeared):
            self._best.announce(event.track_id)
            return Path(event.snapshots[0]) if event.snapshots else self._face_now(event.track_id)
        best = self._best.pop(event.track_id)
        return Path(event.snapshots[-1]) if event.snapshots else best

    def clear(self) -> None:
        self._best.clear()
        self._last = None

    def _face_now(self, track_id: int) -> np.ndarray | None:
        result = self._last
        if result is None:
            return None
        rows = np.flatnonzero(result.faces.track_ids == track_id)
        return crop(result.frame.image, result.faces.boxes[rows[0]]) if rows.size else None


class SnapshotSink:
    """One camera's snapshots under `root`; returns its events with the paths filled in."""

    render: str | None = "raw"

    def __init__(
        self,
        root: str | Path,
        camera: str,
        limit: SnapshotLimit | None = None,
        retention: Retention | None = None,
        report_retention: bool = False,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.folder = self.root / safe_name(camera)
        self.limit = limit
        self.retention = retention
        self.report_retention = report_retention
        self.written = self.skipped = self.failed = 0
        self.last_error: str | None = None
        self._result: FrameResult | None = None
        self._image: np.ndarray | None = None
        self._best = BestShots()  # per open track (tentative ones included)
        self._started: dict[int, float] = {}  # announced tracks: their face_appeared wall time

    @property
    def crops_held(self) -> int:
        """Crops kept for open tracks: all this output holds in memory (one small crop a track)."""
        return len(self._best)

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("the snapshot output needs the raw image")
        self._result, self._image = result, image
        self._best.update(result, image)
        if self.retention is not None:
            self.retention.maybe_sweep()

    def on_events(self, events: Sequence[Event]) -> tuple[Event, ...]:
        return tuple(self._snap(event) for event in events)

    def close(self) -> None:
        """Every file is complete once written; the open tracks' crops are let go."""
        self._best.clear()
        self._result = self._image = None

    def summary(self) -> str:
        text = f"{self.folder}: {self.written} snapshots"
        if self.skipped:
            per_minute = self.limit.per_minute if self.limit else 0
            text += f", {self.skipped} skipped by --snapshot-limit ({per_minute} a minute)"
        if self.failed:
            text += f", {self.failed} could not be written ({self.last_error})"
        if self.report_retention and self.retention is not None and (swept := self.retention.summary()):
            text += f"; {swept}"
        return text

    def _snap(self, event: Event) -> Event:
        if isinstance(event, FaceAppeared):
            return self._appeared(event)
        if isinstance(event, FaceLeft):
            return self._left(event)
        return event

    def _appeared(self, event: FaceAppeared) -> FaceAppeared:
        self._started[event.track_id] = event.wall_time
        self._best.announce(event.track_id)
        result, image = self._result, self._image
        if result is None or image is None:
            return event
        rows = np.flatnonzero(result.faces.track_ids == event.track_id)
        face = crop(image, result.faces.boxes[rows[0]]) if rows.size else None
        pictures = [("face", face), ("frame", image)] if face is not None else [("frame", image)]
        paths = self._save(event.track_id, event.wall_time, pictures)
        return dataclasses.replace(event, snapshots=paths) if paths else event

    def _left(self, event: FaceLeft) -> FaceLeft:
        started = self._started.pop(event.track_id, event.wall_time - event.seconds_in_view)
        best = self._best.pop(event.track_id)
        if best is None:
            return event
        paths = self._save(event.track_id, started, [("best", best)])
        return dataclasses.replace(event, snapshots=(*event.snapshots, *paths)) if paths else event

    def _save(self, track_id: int, started: float, pictures: list[tuple[str, np.ndarray]]) -> tuple[str, ...]:
        """Write the pictures (all or none, as the limit allows); the paths written."""
        if self.limit is not None and not self.limit.allow(len(pictures)):
            self.skipped += len(pictures)
            return ()
        moment = datetime.fromtimestamp(started, timezone.utc)
        folder = self.folder / moment.strftime("%Y-%m-%d")
        stem = f"{self.folder.name}_{moment.strftime('%Y%m%dT%H%M%S')}.{moment.microsecond // 1000:03d}Z"
        paths = []
        for kind, picture in pictures:
            path = _free(folder / f"{stem}_track{track_id}_{kind}.jpg")
            try:
                _write_jpeg(path, picture)
            except OSError as error:
                self.failed += 1
                self.last_error = error.strerror or str(error)
                continue
            self.written += 1
            paths.append(str(path))
        return tuple(paths)


def _free(path: Path) -> Path:
    """`path`, or `name-2.jpg`, `name-3.jpg`... if it is taken (a restart reusing track ids)."""
    candidate, number = path, 2
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
    return candidate


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    """Encode and write under a temporary name, then rename: never half a JPEG under `path`."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise OSError(f"{path}: the JPEG could not be encoded")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data.tobytes())
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
