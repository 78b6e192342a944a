"""Anonymized outputs: every face masked (blurred, pixelated or filled) on every frame.

Privacy is a matter of recall, so a mask is not just the box of the frame's face:

- `MaskTimeline` follows each face over the frames an output receives (by track id, or by
  overlap for untracked faces) and gives the regions to mask on each frame. A mask grows with
  its motion uncertainty: each side moves out by the face's speed (fitted on its recent
  measurements) times the time since it was last measured, plus one frame; a mask stays `hold`
  seconds after its face was last seen (a missed detection, a face turning away), moving on at
  its last speed. An output that may lag (a recording) also gets masks `hold` seconds before a
  face was first found: its frames wait `delay` seconds, so a face entering the picture is
  masked on the frames before the detector found it, placed by its speed backwards in time.
- `MaskAnnotator` draws the masks (an annotator: it draws on the array it is given and returns
  it), each box scaled by `scale` around its centre, as an ellipse or a box.
- `AnonymizedOutput` wraps an image output (recorder, window tile, image folder): it asks for the
  raw frame and hands its output the masked one, in order, with the frame's own timestamp.

One thread (the camera's writer) owns a timeline: no locks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from livefaces.boxes import iou
from livefaces.detections import Detections
from livefaces.frames import FrameResult
from livefaces.tracker import greedy_match

STYLES = ("blur", "pixelate", "solid", "none")
SHAPES = ("ellipse", "box")
MATCH_IOU = 0.3  # untracked faces (exact mode): overlap with a face's last box to be that face
VELOCITY_SECONDS = 0.5  # speeds are fitted on the measurements of the last half second
MIN_GROWTH = 1.0  # a predicted face of unknown speed is taken to move a face's size per second
TRAIL = 2.0  # tracked boxes are smoothed, so they trail a moving face: allow twice its travel since
# the last measurement (and one frame) on each side
MAX_GROWTH = 1.0  # a mask grows by at most its face's size on each side (a stale track after a scene
# cut, or a wild speed fit, would otherwise mask the whole picture)
MAX_LAG = 1.5  # seconds a lagging output waits at most for the detector's scan of a frame
MAX_SCAN_GAP = 1.0  # a live recording's frames between two full scans further apart than this many
# seconds' worth of frames are masked whole
BLUR_CELLS = 6  # a blurred face keeps about this many cells of detail across
PIXEL_CELLS = 10  # a pixelated face is this many blocks across


@dataclass(frozen=True)
class MaskSettings:
    """How faces are masked. style: blur, pixelate or solid (fill with `color`, BGR); scale: the
    mask's size over the face box (MTCNN boxes are tight: 1.3 covers hair line and chin); shape:
    ellipse or box; hold: seconds a mask stays after its face was last seen (and, on outputs that
    may lag, before it was first found)."""

    style: str = "blur"
    scale: float = 1.3
    shape: str = "ellipse"
    hold: float = 1.0
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.style not in STYLES[:-1]:
            raise ValueError(f"style must be one of {STYLES[:-1]}, got {self.style!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if not self.scale >= 1.0:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if not self.hold >= 0.0:
            raise ValueError(f"hold must be >= 0 seconds, got {self.hold}")


@dataclass(frozen=True)
class MaskAnnotator:
    """Masks each face of `faces` (their boxes, grown by `scale` around the centre) on the scene."""

    style: str = "blur"
    scale: float = 1.3
    shape: str = "ellipse"
    color: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_settings(cls, settings: MaskSettings) -> MaskAnnotator:
        return cls(settings.style, settings.scale, settings.shape, settings.color)

    def annotate(self, scene: np.ndarray, faces: Detections) -> np.ndarray:
        height, width = scene.shape[:2]
        for box in scaled_boxes(faces.boxes, self.scale):
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            left, top, right, bottom = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
            if right <= left or bottom <= top:
                continue
            region = scene[top:bottom, left:right]
            covered = self._cover(region, (x2 - x1, y2 - y1))
            if self.shape == "box":
                region[:] = covered
                continue
            inside = np.zeros(region.shape[:2], np.uint8)
            centre = ((x1 + x2) / 2 - left, (y1 + y2) / 2 - top)
            axes = ((x2 - x1) / 2, (y2 - y1) / 2)
            cv2.ellipse(inside, (centre, (2 * axes[0], 2 * axes[1]), 0.0), 255, -1)
            np.copyto(region, covered, where=inside[:, :, None] > 0)
        return scene

    def _cover(self, region: np.ndarray, face_size: tuple[int, int]) -> np.ndarray:
        """What replaces the face: solid colour, big blocks, or a blur as coarse as the face is big
        (shrunk to a few cells and smoothed back up: cheap whatever the face's size)."""
        height, width = region.shape[:2]
        if self.style == "solid":
            return np.full_like(region, self.color)
        cells = PIXEL_CELLS if self.style == "pixelate" else BLUR_CELLS
        small_size = (
            max(1, round(width * cells / max(face_size[0], 1))),
            max(1, round(height * cells / max(face_size[1], 1))),
        )
        small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
        if self.style == "pixelate":
            return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
        smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        kernel = max(3, (min(width, height) // 4) | 1)
        return cv2.blur(smooth, (kernel, kernel))


def _moved(box: np.ndarray, velocity: np.ndarray, seconds: float) -> np.ndarray:
    """`box` moved by its centre's velocity for `seconds`, its size kept: sizes change slowly,
    and a fitted rate of change extrapolated far would shrink it to nothing (the growth by
    uncertainty covers a size change)."""
    shift = (velocity[:2] + velocity[2:]) / 2 * seconds
    return box + np.tile(shift, 2)


def scaled_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes (N, 4) grown by `scale` around their centres."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    return np.concatenate([centres - halves, centres + halves], axis=1)


@dataclass
class _Face:
    """One face as the timeline saw it: per frame its time, box and seconds since measured."""

    times: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    measured_at: float | None = None
    since: float = math.inf  # the full scan before the one that found it: it may be there since

    def add(self, t: float, box: np.ndarray, measured: bool, measured_at: float | None) -> None:
        """A sighting at `t`; `measured_at`: when its box was last measured, if the runner said."""
        if measured_at is not None:
            self.measured_at = min(measured_at, t)
        elif measured or self.measured_at is None:
            self.measured_at = t if measured else (self.times[0] if self.times else t)
        self.times.append(t)
        self.boxes.append(np.asarray(box, np.float64))
        self.ages.append(0.0 if measured else t - self.measured_at)

    def velocity(self, near_end: bool) -> np.ndarray:
        """Speed of each coordinate (pixels per second), fitted on the measurements within
        `VELOCITY_SECONDS` of the last (or first) one."""
        times, boxes = np.array(self.times), np.array(self.boxes)
        measured = np.array(self.ages) == 0.0
        if measured.sum() >= 2:
            times, boxes = times[measured], boxes[measured]
        edge = times[-1] if near_end else times[0]
        near = np.abs(times - edge) <= VELOCITY_SECONDS
        times, boxes = times[near], boxes[near]
        if len(times) < 2 or np.ptp(times) <= 0:
            return np.zeros(4)
        dt = times - times.mean()
        return (dt[:, None] * (boxes - boxes.mean(axis=0))).sum(axis=0) / (dt**2).sum()

    def at(self, t: float, hold: float, frame_seconds: float) -> np.ndarray | None:
        """The face's mask box at `t`, grown by its uncertainty; None when `t` is more than `hold`
        from every sighting."""
        times = self.times
        if t < min(times[0], self.since) - hold or t > times[-1] + hold:
            return None
        k = int(np.searchsorted(times, t))
        if k < len(times) and times[k] == t:
            box, age, velocity = self.boxes[k], self.ages[k], self.velocity(near_end=True)
        elif k in (0, len(times)):  # before the first or after the last sighting: moved at its speed
            nearest = 0 if k == 0 else -1
            velocity = self.velocity(near_end=k > 0)
            box = _moved(self.boxes[nearest], velocity, t - times[nearest])
            age = self.ages[nearest] + abs(t - times[nearest])
        else:  # a gap between two sightings: in between, as uncertain as the nearer one
            before, after = times[k - 1], times[k]
            share = (t - before) / (after - before)
            box = self.boxes[k - 1] * (1 - share) + self.boxes[k] * share
            age = min(self.ages[k - 1] + t - before, self.ages[k] + after - t)
            velocity = self.velocity(near_end=True)
        centre, half = (box[:2] + box[2:]) / 2, np.abs(box[2:] - box[:2]) / 2
        size = np.tile(2 * half, 2)
        speed = np.maximum(np.abs(velocity), MIN_GROWTH * size if age > 0 else 0.0)
        growth = np.minimum(TRAIL * speed * (age + frame_seconds), MAX_GROWTH * size)
        return np.concatenate([centre - half, centre + half]) + growth * np.array([-1.0, -1.0, 1.0, 1.0])

    def forget_before(self, t: float) -> None:
        while len(self.times) > 2 and self.times[1] < t:
            del self.times[0], self.boxes[0], self.ages[0]


Released = tuple[FrameResult, Any, "np.ndarray | None"]


class MaskTimeline:
    """The mask regions of each frame of one camera, from the faces of the frames around it.

    `push(result, item)` takes the next frame's result (in order) with anything to carry along
    (its image) and returns the frames now ready, oldest first, each as (result, item, boxes to
    mask (N, 4), unscaled): a frame is ready once frames `delay` seconds newer were pushed, so
    its masks know the faces found up to then, and (at most `MAX_LAG` seconds) once the detector
    has fully scanned it or a later frame. A face found by a scan is masked back to the scan
    before (it may have been there unseen since) and `hold` seconds more. `flush()` returns the
    rest (at the end).

    Fail closed: a live camera's first frames go out before the detector has scanned any frame.
    Until a result says it has (`fresh`, `scanned_until`), nothing is known about faces: a frame
    released then, or more than `hold` seconds before the first frame scanned, has `None` for
    its boxes: mask the whole frame.

    A live camera's recording (`live_fps`: the source's frame rate) may get its frames in bursts
    faster than the detector answers (a backlog drained after a stall, or the frames a server
    buffered while TensorFlow loaded), stamped on arrival a few milliseconds apart: a face may
    come and go between two full scans. So a lagging live frame is masked whole too when no full
    scan reached it by its release (the end of a stream, or the detector `MAX_LAG` seconds
    behind), and when more than `MAX_SCAN_GAP` seconds' worth of frames at `live_fps` came
    between the two full scans around it: counted in frames, as the stamps of a burst are
    squeezed together.
    """

    def __init__(self, hold: float = 1.0, delay: float = 0.0, live_fps: float | None = None) -> None:
        if hold < 0 or delay < 0:
            raise ValueError(f"hold and delay must be >= 0 seconds, got {hold} and {delay}")
        self.hold, self.delay = hold, delay
        self._strict = live_fps is not None and delay > 0
        self._max_gap = max(2, round(MAX_SCAN_GAP * (live_fps or 30.0)))  # frames between two scans
        self._unscanned: deque[tuple[float, int]] = deque()  # (time, index): pending, after the last scan
        self._gone_unscanned = 0  # frames of the current gap already released (masked whole)
        self._blind: set[int] = set()  # pending frames in too long a gap between full scans
        self._faces: dict[int, _Face] = {}
        self._pending: deque[tuple[FrameResult, Any]] = deque()
        self._next_key = -2  # untracked faces get negative keys, tracks keep their ids
        self._newest: float | None = None
        self._frame_seconds = 0.0
        self._first_scan: float | None = None  # the time of the first frame the detector scanned
        self._scans: deque[float] = deque(maxlen=4)  # times of the newest frames fully scanned

    def push(self, result: FrameResult, item: Any = None) -> list[Released]:
        t = result.frame.timestamp
        if self._newest is not None and t > self._newest:  # the frame interval: the shortest step seen
            step = t - self._newest
            self._frame_seconds = min(self._frame_seconds, step) if self._frame_seconds else step
        self._newest = t if self._newest is None else max(self._newest, t)
        scanned = result.scanned_until if result.scanned_until is not None else (t if result.fresh else None)
        if self._strict:
            self._unscanned.append((t, result.frame.index))
        if scanned is not None and (not self._scans or scanned > self._scans[-1]):
            self._scans.append(scanned)
            self._close_gap(scanned)
        if scanned is not None and self._first_scan is None:
            self._first_scan = scanned
        self._record(result, t)
        self._pending.append((result, item))
        ready = []
        while self._pending and self._ready(self._pending[0][0].frame.timestamp):
            ready.append(self._release())
        return ready

    def _ready(self, t: float) -> bool:
        assert self._newest is not None
        waited = self._newest - t
        if waited < self.delay:
            return False
        scanned = self.delay == 0 or (self._scans and self._scans[-1] >= t)
        return bool(scanned) or waited >= max(MAX_LAG, self.delay)

    def _close_gap(self, scanned: float) -> None:
        """A full scan reached `scanned`: the frames since the previous one are judged."""
        gap = []
        while self._unscanned and self._unscanned[0][0] <= scanned:
            gap.append(self._unscanned.popleft())
        if len(gap) + self._gone_unscanned > self._max_gap:  # the scanned frame itself was looked at
            self._blind.update(index for t, index in gap if t < scanned)
        self._gone_unscanned = 0

    def _vouched(self, index: int) -> bool:
        """Whether a full scan vouches for the pending frame `index`, now released: one reached
        it, and the gap it came in was short (live recordings)."""
        if self._unscanned and self._unscanned[0][1] == index:  # released in order: the oldest
            self._unscanned.popleft()
            self._gone_unscanned += 1
            return False
        if index in self._blind:
            self._blind.remove(index)
            return False
        return True

    def flush(self) -> list[Released]:
        return [self._release() for _ in range(len(self._pending))]

    def boxes_at(self, t: float) -> np.ndarray:
        """Every face's mask box (N, 4) at time `t`, unscaled."""
        found = [self._faces[key].at(t, self.hold, self._frame_seconds) for key in sorted(self._faces)]
        return np.array([box for box in found if box is not None], np.float64).reshape(-1, 4)

    def _release(self) -> Released:
        result, item = self._pending.popleft()
        t = result.frame.timestamp
        first = self._first_scan
        known = first is not None and t >= first - self.hold
        if self._strict:
            known = self._vouched(result.frame.index) and known
        boxes = self.boxes_at(t) if known else None
        oldest = self._pending[0][0].frame.timestamp if self._pending else t
        self._forget(oldest - self.hold - VELOCITY_SECONDS)
        return result, item, boxes

    def _record(self, result: FrameResult, t: float) -> None:
        faces = result.faces
        boxes = np.asarray(faces.boxes, np.float64).reshape(-1, 4)
        keys = [int(k) if k >= 0 else None for k in faces.track_ids]
        loose = [i for i, key in enumerate(keys) if key is None]
        if loose:  # untracked faces (exact mode): the face of the previous frames they overlap
            alive = [k for k, face in self._faces.items() if k < 0 and t - self.hold <= face.times[-1] < t]
            previous = np.array([self._faces[k].boxes[-1] for k in alive]).reshape(-1, 4)
            for row, column in greedy_match(iou(boxes[loose], previous), MATCH_IOU):
                keys[loose[row]] = alive[column]
        for i, key in enumerate(keys):
            if key is None:
                key, self._next_key = self._next_key, self._next_key - 1
            if key not in self._faces:
                self._faces[key] = _Face(since=self._scans[-2] if len(self._scans) >= 2 else -math.inf)
            face = self._faces[key]
            if face.times and face.times[-1] >= t:
                continue  # one sample per face per frame time
            seen = None if faces.measured_at is None else float(faces.measured_at[i])
            face.add(t, boxes[i], bool(faces.measured[i]), seen)

    def _forget(self, before: float) -> None:
        for key in [k for k, face in self._faces.items() if face.times[-1] < before]:
            del self._faces[key]
        for face in self._faces.values():
            face.forget_before(before)


class ImageOutput(Protocol):
    render: str | None

    def write(self, result: FrameResult, image: np.ndarray | None) -> None: ...

    def close(self) -> None: ...

    def summary(self) -> str | None: ...


class AnonymizedOutput:
    """An image output that receives its frames masked: it asks the runtime for the raw frame,
    masks it as its `MaskTimeline` says (delayed by `delay` seconds, for outputs that may lag)
    and writes it to `output`. Frames keep their order and timestamps."""

    render: str | None = "raw"

    def __init__(
        self,
        output: ImageOutput,
        settings: MaskSettings,
        delay: float = 0.0,
        live_fps: float | None = None,
    ) -> None:
        self.output = output
        self.settings = settings
        self.annotator = MaskAnnotator.from_settings(settings)
        self.timeline = MaskTimeline(settings.hold, delay, live_fps)
        self.masks_drawn = 0

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("an anonymized output needs the frame's image (render = 'raw')")
        for ready in self.timeline.push(result, image):
            self._write(*ready)

    def on_events(self, events: Sequence[object]) -> Any:
        on_events = getattr(self.output, "on_events", None)
        return on_events(events) if on_events is not None else None

    def close(self) -> None:
        try:
            for ready in self.timeline.flush():
                self._write(*ready)
        finally:
            self.output.close()

    def summary(self) -> str | None:
        return self.output.summary()

    def _write(self, result: FrameResult, image: np.ndarray, boxes: np.ndarray | None) -> None:
        if boxes is None:  # nothing known about this frame's faces yet: all of it is masked
            height, width = image.shape[:2]
            whole = MaskAnnotator(self.settings.style, 1.0, "box", self.settings.color)
            image = whole.annotate(
                image.copy(), _as_detections(np.array([[0, 0, width, height]], np.float64))
            )
            self.masks_drawn += 1
        elif len(boxes):
            image = self.annotator.annotate(image.copy(), _as_detections(boxes))  # the raw frame is shared
            self.masks_drawn += len(boxes)
        self.output.write(result, image)


def _as_detections(boxes: np.ndarray) -> Detections:
    count = len(boxes)
    return Detections(
        boxes.astype(np.float32), np.ones(count, np.float32), np.full((count, 5, 2), np.nan, np.float32)
    )


def anonymized(
    output: ImageOutput, settings: MaskSettings | None, lag: bool, live_fps: float | None = None
) -> ImageOutput:
    """`output` anonymized as `settings` say (unchanged for None); `lag`: it may receive its
    frames `settings.hold` seconds late (a recording), so faces are also masked before they were
    first found; `live_fps`: the frame rate of the live camera it records (see `MaskTimeline`)."""
    if settings is None:
        return output
    return AnonymizedOutput(output, settings, settings.hold if lag else 0.0, live_fps)
