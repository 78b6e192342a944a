"""Tracked detection in your own loop: full MTCNN scans now and then, O-Net refinement between.

`TrackingDetector.process(frame)` measures one BGR frame on the calling thread (a full scan when
the scheduler says so or after a scene cut, otherwise a coarse scan for new large faces that also
measures the tracks' predicted boxes, or a refinement of those boxes alone when the detector has
no `detect_batch`), feeds the tracker, and returns every live track at that frame's time with its id.
`predict(t)` places the tracks at any other time. The policy is `CameraRunner`'s, the same one
the app runs for each camera; here the detector is called directly instead of through the
shared detector service. The detector is anything with `detect(rgb)` and `refine(rgb, boxes)`,
like `livefaces.MTCNN`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from livefaces.detections import Detections
from livefaces.frames import Frame
from livefaces.runtime.camera_runner import COARSE_PIXELS_PER_SECOND, CameraRunner, RunnerSettings, shrink
from livefaces.runtime.detector_service import answer_now
from livefaces.scheduler import ScanScheduler
from livefaces.tracker import Tracker

__all__ = ["TrackingDetector", "detect_downscaled", "shrink"]


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
        coarse_pixels_per_second: float | None = COARSE_PIXELS_PER_SECOND,
    ) -> None:
        """coarse_pixels_per_second: as `RunnerSettings` has it (None: refinements alone between
        full scans); ignored for a detector without `detect_batch`."""
        self.detector = detector
        self._clock = clock
        coarse = coarse_pixels_per_second
        settings = RunnerSettings(
            tracking=True,
            detect_width=detect_width,
            min_confidence=min_confidence,
            patches=hasattr(detector, "refine_patches"),
            coarse_pixels_per_second=coarse if hasattr(detector, "detect_batch") else None,
        )
        self.runner = CameraRunner("camera", scheduler.fps, settings, tracker, scheduler)

    @property
    def scheduler(self) -> ScanScheduler:
        return self.runner.scheduler

    @property
    def tracker(self) -> Tracker:
        return self.runner.tracker

    @property
    def full_scans(self) -> int:
        return self.runner.full_scans

    @property
    def coarse_scans(self) -> int:
        return self.runner.coarse_scans

    @property
    def refinements(self) -> int:
        return self.runner.refinements

    def process(self, frame: Frame) -> tuple[Detections, bool]:
        """Measure `frame` (BGR); returns the live tracks at its time and whether it was a full scan."""
        request = self.runner.plan(frame)
        if request is not None:
            self.runner.absorb(frame, answer_now(self.detector, request, self._clock))
        return self.runner.result(frame).detections, request is not None and request.kind == "scan"

    def predict(self, timestamp: float) -> Detections:
        """The live tracks placed at `timestamp`."""
        return self.tracker.predict(timestamp)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> Detections: ...


def detect_downscaled(detector: Detector, rgb: np.ndarray, width: int | None) -> Detections:
    """Faces on `rgb`, detected on a copy shrunk to `width` when it is wider, mapped back."""
    small, factors = shrink(rgb, width)
    found = detector.detect(small)
    return found if factors == (1.0, 1.0) else found.scaled(*factors)
