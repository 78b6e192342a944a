"""One camera's detection policy: what to ask the detector for each frame, and what to show.

`CameraRunner` is plain computation owned by one thread (no locks, no threads, no I/O):

- `plan(frame)` decides whether the detector has work for this frame: a full scan (the whole
  cascade, to find new faces), a coarse scan (the coarse pyramid levels, for new large faces, with
  O-Net measuring the boxes the tracks predict), a refinement (O-Net alone on those boxes), or
  nothing. It returns a plain request for the shared detector service, or None.
- `absorb(frame, reply)` folds the detector's answer back: into the tracker (tracking mode) or as
  the current detections (exact mode), and turns track births and ends into events.
- `result(frame)` gives any frame its faces: the tracks predicted to its time (tracking) or the
  newest detections (exact), with the events raised since the last result.

Modes. Tracking (`tracking=True`): full scans at the cadence `ScanScheduler` affords from the
measured costs (and at once after a scene cut), and on the frames between either coarse scans
(with `coarse_pixels_per_second`, when the picture moved away from the tracked faces: a large
face is found on the frame it enters, a small one at the next full scan) or refinements. A
shared detector that is saturated (this camera's requests queue behind others') sheds the coarse
scans first: they cost three refinements, and the full scans at their floor still find every
new face within 0.2 s.
Exact: a full scan of every frame, or of every `detect_every`-th frame with the result reused
in between.

The same runner serves the threaded runtime (through `DetectorService`), the synchronous
`TrackingDetector` of the library, and later a Ray actor: one implementation of the policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from livefaces import boxes as bx
from livefaces.cascade import PNET_CELL, Settings
from livefaces.detections import Detections
from livefaces.events import Event, track_events
from livefaces.frames import Frame, FrameResult
from livefaces.runtime.detector_service import DetectorReply, RefineRequest, Request, ScanRequest
from livefaces.scheduler import ScanScheduler, SchedulerSettings
from livefaces.tracker import TrackedFaces, Tracker, TrackSnapshot

CUT_THUMBNAIL = (32, 18)
CUT_THRESHOLD = 25.0  # mean absolute grey-level change of the thumbnail that marks a scene cut
MOTION_THRESHOLD = 8  # grey-level change of a thumbnail cell that counts as motion there
# A coarse scan's P-Net first level per second of video: 144x144 px per frame at 30 fps.
COARSE_PIXELS_PER_SECOND = 30 * 144 * 144


class DetectorFailed(Exception):
    """The detector service answered this camera's request with an error."""


@dataclass(frozen=True)
class RunnerSettings:
    """How one camera is detected.

    tracking: track faces (full scans now and then, refinement between) instead of exact mode.
    detect_every: exact mode: scan every Nth frame and reuse the result (None: every frame; for
        live sources, the newest frame whenever the detector is free).
    detect_width: frames wider than this are shrunk for full scans (results mapped back).
    min_confidence: faces below it are dropped everywhere.
    live: requests may be replaced by newer ones from this camera (live sources).
    adaptive: tracking cadence adapts to measured costs (live sources); False keeps the floor of
        `min_scans_per_second`, the fastest cadence for files processed as fast as possible.
    budget: share of real time this camera may plan detector work for (the shared detector's
        budget divided among the cameras).
    cascade: this camera's MTCNN settings (None: the detector's own).
    patches: refinements hand the detector 48x48 patches cut here instead of the whole frame
        (the detector needs `refine_patches`, as `livefaces.MTCNN` has): less to copy and one
        O-Net call for the patches of every camera, whatever their frame sizes.
    coarse_pixels_per_second: tracking: a frame between full scans on which the picture moved
        away from the tracked faces gets a coarse scan (the tracks measured in the same call)
        whose pyramid stops where P-Net's first level would exceed this budget divided by the
        frame rate, so its cost per second of video is bounded whatever the size and rate: it
        looks for faces of at least 12 * sqrt(frame pixels * fps / coarse_pixels_per_second).
        With `COARSE_PIXELS_PER_SECOND` (the app's) that is 80 px at 1280x720 30 fps, 40 px at
        640x360 30 fps, and every face (the whole pyramid) at 480x270 12 fps. None: refinements
        alone between full scans (new faces wait for the next full scan). The detector needs
        `detect_batch(..., min_face_size=, known=)`, as `livefaces.MTCNN` has.
    """

    tracking: bool = False
    detect_every: int | None = None
    detect_width: int | None = None
    min_confidence: float = 0.0
    live: bool = False
    adaptive: bool = True
    budget: float = 0.8
    cascade: Settings | None = None
    patches: bool = False
    coarse_pixels_per_second: float | None = None

    def __post_init__(self) -> None:
        budget = self.coarse_pixels_per_second
        if budget is not None and not budget > 0:
            raise ValueError(f"coarse_pixels_per_second must be > 0, got {budget}")
        if self.detect_every is not None and self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.detect_width is not None and self.detect_width < 48:
            raise ValueError(f"detect_width must be >= 48, got {self.detect_width}")

    def describe(self) -> str:
        """The exact-mode cadence, for the panel."""
        if self.detect_every:
            return f"every {self.detect_every} frames" if self.detect_every > 1 else "every frame"
        return "newest frame when free" if self.live else "every frame"


@dataclass(frozen=True)
class _Asked:
    """What a request in flight was for: its kind and the factors that map its boxes back."""

    kind: str
    factors: tuple[float, float]


class CameraRunner:
    """Owns one camera's tracker (or current detections) and plans its detector work."""

    def __init__(
        self,
        camera: str,
        fps: float | None,
        settings: RunnerSettings | None = None,
        tracker: Tracker | None = None,
        scheduler: ScanScheduler | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.camera = camera
        self.settings = settings or RunnerSettings()
        self.tracker = tracker if tracker is not None else Tracker()
        scheduler_settings = SchedulerSettings(adaptive=self.settings.adaptive, budget=self.settings.budget)
        self.scheduler = scheduler if scheduler is not None else ScanScheduler(fps, scheduler_settings)
        self.full_scans = self.coarse_scans = self.refinements = 0
        self._wall_clock = wall_clock
        self._asked: dict[int, _Asked] = {}
        self._snapshot = TrackSnapshot.empty()
        self._current = Detections.empty()
        self._current_time = 0.0  # exact mode: the time of the frame `_current` was measured on
        self._measured_index = -1
        self._scanned_time: float | None = None
        self._events: list[Event] = []
        self._thumbnail: np.ndarray | None = None
        self._change: np.ndarray | None = None  # per thumbnail cell, grey-level change since the last frame

    @property
    def cadence(self) -> str:
        """What the runner does, for the panel: 'tracking, 5.2 full scans/s' or 'every frame'."""
        return self.scheduler.describe() if self.settings.tracking else self.settings.describe()

    def plan(self, frame: Frame) -> Request | None:
        """The detector's work for `frame` (BGR), or None when the frame needs none."""
        if not self.settings.tracking:
            every = self.settings.detect_every
            return self._scan(frame) if every is None or frame.index % every == 0 else None
        cut = self._scene_cut(frame.image)
        if cut or self.scheduler.wants_full_scan(frame.timestamp):
            return self._scan(frame)
        expected = self._snapshot.at(frame.timestamp).boxes
        smallest = None if self.scheduler.contended else self._coarse_face_size(frame.image.shape)
        if smallest is not None and self._moved_elsewhere(frame.image.shape, expected):
            return self._coarse_scan(frame, smallest, expected)
        if not len(expected):
            return None
        self._asked[frame.index] = _Asked("refine", (1.0, 1.0))
        live, cascade = self.settings.live, self.settings.cascade
        if self.settings.patches:
            squares = bx.to_square(expected.astype(np.float64))
            patches = np.ascontiguousarray(bx.cut_patches(frame.image, squares, 48)[..., ::-1])
            return RefineRequest(self.camera, frame.index, None, squares, live, cascade, patches)
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        return RefineRequest(self.camera, frame.index, rgb, expected, live, cascade)

    def absorb(self, frame: Frame, reply: DetectorReply) -> None:
        """Fold the detector's answer for `frame` back. Raises `DetectorFailed` on an error reply;
        a reply `replaced` by a newer request of this camera changes nothing."""
        asked = self._asked.pop(reply.seq, None)
        if reply.replaced or asked is None:
            return
        if reply.error is not None or reply.detections is None:
            raise DetectorFailed(reply.error or "the detector gave no answer")
        found = reply.detections
        if asked.factors != (1.0, 1.0):
            found = found.scaled(*asked.factors)
        found = found.confident(self.settings.min_confidence)
        cost = reply.compute_seconds / max(reply.batch_size, 1)
        if asked.kind == "scan":
            self.full_scans += 1
            self._scanned_time = max(frame.timestamp, self._scanned_time or frame.timestamp)
            self.scheduler.scanned(frame.timestamp, cost, reply.wait_seconds)
        else:  # a coarse scan stands in for a refinement: its cost is the cost between full scans
            self.coarse_scans += asked.kind == "coarse"
            self.refinements += asked.kind == "refine"
            self.scheduler.refined(cost, reply.wait_seconds)
        self._measured_index = frame.index
        if not self.settings.tracking:
            self._current, self._current_time = found, frame.timestamp
            return
        update = self.tracker.step(found, frame.timestamp)
        self._snapshot = update.snapshot
        self._events += track_events(self.camera, update.births, update.ends, self._wall_clock())

    def result(self, frame: Frame) -> FrameResult:
        """`frame` with its faces and the events raised since the previous result."""
        events, self._events = tuple(self._events), []
        fresh = self._measured_index == frame.index
        scanned = self._scanned_time
        if self.settings.tracking:
            return FrameResult(self.camera, frame, self._snapshot.at(frame.timestamp), fresh, events, scanned)
        count = len(self._current)
        flags = np.ones(count, bool)
        seen = np.full(count, self._current_time)
        faces = TrackedFaces(self._current, flags, flags if fresh else np.zeros(count, bool), seen)
        return FrameResult(self.camera, frame, faces, fresh, events, scanned)

    def take_events(self) -> tuple[Event, ...]:
        """The events raised since the last result, taken (for a notice that belongs to no frame)."""
        events, self._events = tuple(self._events), []
        return events

    def end_tracks(self, timestamp: float, reason: str) -> tuple[Event, ...]:
        """End every track now (the stream went down, the run stopped): their face_left events."""
        ends = self.tracker.end_all(timestamp, reason)
        self._snapshot = self.tracker.snapshot()
        return tuple(track_events(self.camera, (), ends, self._wall_clock()))

    def _scan(self, frame: Frame) -> ScanRequest:
        small, factors = shrink(frame.image, self.settings.detect_width)  # then fewer pixels to convert
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        self._asked[frame.index] = _Asked("scan", factors)
        return ScanRequest(self.camera, frame.index, rgb, self.settings.live, self.settings.cascade)

    def _coarse_face_size(self, shape: tuple[int, ...]) -> int | None:
        budget = self.settings.coarse_pixels_per_second
        return None if budget is None else coarse_face_size(shape, budget / self.scheduler.fps)

    def _coarse_scan(self, frame: Frame, smallest: int, expected: np.ndarray) -> ScanRequest:
        """The coarse levels of the pyramid on the whole frame, and the tracks' boxes measured."""
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        self._asked[frame.index] = _Asked("coarse", (1.0, 1.0))
        known = expected.astype(np.float64)
        live, cascade = self.settings.live, self.settings.cascade
        return ScanRequest(self.camera, frame.index, rgb, live, cascade, smallest, known)

    def _scene_cut(self, image: np.ndarray) -> bool:
        """Whether the picture changed wholesale since the last frame (a cut: old tracks are void)."""
        # Sampled to 4x the thumbnail first: a twentieth of the cost of converting the whole frame.
        width, height = CUT_THUMBNAIL
        sampled = cv2.resize(image, (4 * width, 4 * height), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(sampled, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, CUT_THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._thumbnail = self._thumbnail, small
        self._change = None if previous is None else np.abs(small - previous)
        return self._change is not None and float(self._change.mean()) > CUT_THRESHOLD

    def _moved_elsewhere(self, shape: tuple[int, ...], tracked: np.ndarray) -> bool:
        """Whether the picture changed since the last frame anywhere but around the tracked faces:
        where nothing moved, no face can have entered (a face turning towards the camera in place
        waits for the next full scan)."""
        if self._change is None:
            return True
        height, width = shape[:2]
        columns, rows = CUT_THUMBNAIL
        moving = self._change > MOTION_THRESHOLD
        for x1, y1, x2, y2 in tracked:
            grow_x, grow_y = (x2 - x1) / 2, (y2 - y1) / 2  # the face's own motion blurs around it
            left = max(int((x1 - grow_x) * columns / width), 0)
            top = max(int((y1 - grow_y) * rows / height), 0)
            right = int(np.ceil((x2 + grow_x) * columns / width))
            bottom = int(np.ceil((y2 + grow_y) * rows / height))
            moving[top:bottom, left:right] = False
        return bool(moving.any())


def coarse_face_size(shape: tuple[int, ...], pixels: float) -> int | None:
    """The least face size a coarse scan of a frame of `shape` looks for, so that P-Net's first
    level has at most `pixels` pixels; None when not even one pyramid level fits."""
    height, width = shape[:2]
    size = math.ceil(PNET_CELL * math.sqrt(height * width / pixels))
    return size if size <= min(height, width) else None


def shrink(image: np.ndarray, width: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """`image` shrunk to `width` when it is wider, and the factors (x, y) that map results back."""
    height, full_width = image.shape[:2]
    if not width or full_width <= width:
        return image, (1.0, 1.0)
    small_height = max(1, round(height * width / full_width))
    small = cv2.resize(image, (width, small_height), interpolation=cv2.INTER_AREA)
    return small, (full_width / width, height / small_height)
