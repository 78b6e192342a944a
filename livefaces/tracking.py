"""Tracked detection: full MTCNN scans now and then, O-Net refinement of the tracks in between.

`TrackingDetector.process(frame)` measures one frame, by a full scan when the scheduler says so
and otherwise by refining the tracks' predicted boxes, feeds the tracker, and returns every live
track at that frame's time with its id. `predict(t)` gives the tracks at any other time, for frames
the detector never saw. The detector is anything with `detect(rgb)` and `refine(rgb, boxes)`, like
`livefaces.MTCNN`; one detector can serve several `TrackingDetector`s, one per source. Besides the
scheduler's cadence, a scene cut triggers a full scan at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np

from livefaces.detections import Detections
from livefaces.frames import Frame
from livefaces.scheduler import ScanScheduler
from livefaces.tracker import Tracker

CUT_THUMBNAIL = (32, 18)
CUT_THRESHOLD = 25.0  # mean absolute grey-level change of the thumbnail that marks a scene cut


class RefiningDetector(Protocol):
    def detect(self, image: np.ndarray) -> Detections: ...

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections: ...


class TrackingDetector:
    """Measures frames for a tracker, choosing between full scans and refinements."""

    def __init__(
        self,
        detector: RefiningDetector,
        scheduler: ScanScheduler,
        tracker: Tracker | None = None,
        detect_width: int | None = None,
        min_confidence: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.detector = detector
        self._clock = clock
        self.scheduler = scheduler
        self.tracker = tracker if tracker is not None else Tracker()
        self.detect_width = detect_width
        self.min_confidence = min_confidence
        self.full_scans = 0
        self.refinements = 0
        self._thumbnail: np.ndarray | None = None

    def process(self, frame: Frame) -> tuple[Detections, bool]:
        """Measure `frame` (BGR); returns the live tracks at its time and whether it was a full scan."""
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        started = self._clock()
        cut = self._scene_cut(frame.image)
        full_scan = cut or self.scheduler.wants_full_scan(frame.timestamp)
        if full_scan:
            found = self._scan(rgb)
        else:
            expected = self.tracker.boxes(frame.timestamp)
            found = self.detector.refine(rgb, expected) if len(expected) else Detections.empty()
        self.tracker.update(found.confident(self.min_confidence), frame.timestamp)
        seconds = self._clock() - started
        if full_scan:
            self.full_scans += 1
            self.scheduler.scanned(frame.timestamp, seconds)
        else:
            self.refinements += 1
            self.scheduler.refined(seconds)
        return self.tracker.predict(frame.timestamp), full_scan

    def _scene_cut(self, image: np.ndarray) -> bool:
        """Whether the picture changed wholesale since the last frame (a cut: old tracks are void)."""
        small = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), CUT_THUMBNAIL, interpolation=cv2.INTER_AREA
        )
        previous, self._thumbnail = self._thumbnail, small.astype(np.int16)
        return previous is not None and float(np.abs(self._thumbnail - previous).mean()) > CUT_THRESHOLD

    def predict(self, timestamp: float) -> Detections:
        """The live tracks placed at `timestamp`."""
        return self.tracker.predict(timestamp)

    def _scan(self, rgb: np.ndarray) -> Detections:
        return detect_downscaled(self.detector, rgb, self.detect_width)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> Detections: ...


def shrink(rgb: np.ndarray, width: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """`rgb` shrunk to `width` when it is wider, and the factors (x, y) that map results back."""
    height, full_width = rgb.shape[:2]
    if not width or full_width <= width:
        return rgb, (1.0, 1.0)
    small_height = max(1, round(height * width / full_width))
    small = cv2.resize(rgb, (width, small_height), interpolation=cv2.INTER_AREA)
    return small, (full_width / width, height / small_height)


def detect_downscaled(detector: Detector, rgb: np.ndarray, width: int | None) -> Detections:
    """Faces on `rgb`, detected on a copy shrunk to `width` when it is wider, mapped back."""
    return detect_all_downscaled(detector, [rgb], width)[0]


def detect_all_downscaled(
    detector: Detector, rgbs: Sequence[np.ndarray], width: int | None
) -> list[Detections]:
    """`detect_downscaled` for several images, in one `detect_batch` call when the detector has one."""
    shrunk = [shrink(rgb, width) for rgb in rgbs]
    images = [image for image, _ in shrunk]
    batch_call = getattr(detector, "detect_batch", None)
    found = batch_call(images) if len(images) > 1 and batch_call else [detector.detect(i) for i in images]
    return [
        result if factors == (1.0, 1.0) else result.scaled(*factors)
        for result, (_, factors) in zip(found, shrunk)
    ]
