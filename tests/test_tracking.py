"""Scheduling under a fake clock, refinement with the real MTCNN, and tracking on the demo clip."""

from __future__ import annotations

import numpy as np
import pytest

from livefaces import MTCNN
from livefaces.boxes import iou
from livefaces.demo import DemoScene
from livefaces.detections import Detections
from livefaces.frames import Frame
from livefaces.runtime.camera_runner import COARSE_PIXELS_PER_SECOND
from livefaces.scheduler import ScanScheduler, SchedulerSettings
from livefaces.tracking import TrackingDetector

FACE = (100.0, 100.0, 160.0, 170.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedFakeDetector:
    """Finds one fixed face; a full scan and a refinement cost given seconds on the fake clock."""

    def __init__(self, clock: FakeClock, scan: float, refine: float) -> None:
        self.clock, self.scan, self.refine_cost = clock, scan, refine

    def _face(self) -> Detections:
        box = np.array([FACE], np.float32)
        return Detections(box, np.array([0.99], np.float32), np.zeros((1, 5, 2), np.float32) + 130)

    def detect(self, image: np.ndarray) -> Detections:
        self.clock.now += self.scan
        return self._face()

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections:
        self.clock.now += self.refine_cost
        return self._face()


def run_clip(scan: float, refine: float, frames: int = 90, fps: float = 30.0) -> list[bool]:
    """Which frames of a `frames`-long clip got a full scan."""
    clock = FakeClock()
    tracking = TrackingDetector(TimedFakeDetector(clock, scan, refine), ScanScheduler(fps), clock=clock)
    image = np.zeros((240, 320, 3), np.uint8)
    return [tracking.process(Frame(i, i / fps, 0.0, image))[1] for i in range(frames)]


def test_a_fast_detector_scans_every_frame() -> None:
    assert all(run_clip(scan=0.005, refine=0.001))


def test_a_slow_detector_scans_as_often_as_the_budget_allows() -> None:
    # 0.8 s of budget a second: s * 0.1 + (30 - s) * 0.005 <= 0.8 gives s = 6.8 scans a second.
    scans = run_clip(scan=0.100, refine=0.005)
    assert scans[0]
    per_second = sum(scans[30:90]) / 2
    assert 6 <= per_second <= 7.5
    assert not all(scans[1:5])


def test_a_very_slow_detector_still_scans_five_times_a_second() -> None:
    scans = run_clip(scan=0.400, refine=0.005)
    assert sum(scans[30:90]) / 2 == pytest.approx(5, abs=0.5)
    gaps = np.diff(np.flatnonzero(scans))
    assert gaps.max() <= 6  # a new face is found within 6 frames (0.2 s) at 30 fps


def test_scheduler_floor_and_ceiling() -> None:
    scheduler = ScanScheduler(25.0, SchedulerSettings(min_scans_per_second=2.0))
    assert scheduler.scans_per_second == 2.0  # nothing measured yet
    scheduler.scanned(0.0, 0.001)
    scheduler.refined(0.0001)
    assert scheduler.scans_per_second == 25.0
    assert scheduler.describe() == "tracking, 25.0 full scans/s"
    with pytest.raises(ValueError, match="budget"):
        SchedulerSettings(budget=0.0)


@pytest.mark.parametrize("wait_frames", [0, 1, 2, 4])
def test_scans_wanted_late_still_come_at_the_asked_rate(wait_frames: int) -> None:
    """A camera whose scan waits `wait_frames` frames for a busy detector still gets the floor's
    5 scans per second: due times sit on a grid, waits do not add up."""
    fps = 30.0
    scheduler = ScanScheduler(fps, SchedulerSettings(min_scans_per_second=5.0, adaptive=False))
    wanted_at: int | None = None
    scans = 0
    for index in range(300):  # 10 s
        if wanted_at is None and scheduler.wants_full_scan(index / fps):
            wanted_at = index
        if wanted_at is not None and index == wanted_at + wait_frames:
            scheduler.scanned(index / fps, 0.05)
            scans += 1
            wanted_at = None
    assert 49 <= scans <= 51


def test_a_camera_queueing_on_a_shared_detector_keeps_to_its_floor() -> None:
    """Cheap scans would afford 20/s; once answers queue behind other cameras' requests (waits
    beyond a frame interval), the camera asks for its floor only, leaving the rest to them."""
    scheduler = ScanScheduler(30.0, SchedulerSettings(min_scans_per_second=5.0, budget=0.8))
    scheduler.scanned(0.0, 0.02, waited=0.005)
    scheduler.refined(0.002, waited=0.005)
    assert scheduler.scans_per_second > 15 and not scheduler.contended
    for _ in range(20):
        scheduler.refined(0.002, waited=0.08)
    assert scheduler.contended and scheduler.scans_per_second == 5.0


def test_a_scene_cut_scan_restarts_the_grid() -> None:
    scheduler = ScanScheduler(30.0, SchedulerSettings(min_scans_per_second=5.0, adaptive=False))
    scheduler.scanned(0.0, 0.05)
    scheduler.scanned(0.1, 0.05)  # early: a cut
    assert not scheduler.wants_full_scan(0.2)
    assert scheduler.wants_full_scan(0.3)


def test_refine_measures_a_moved_face(detector: MTCNN, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    face = found.select(np.array([int(np.argmax(found.scores))]))
    moved = face.boxes + np.array([8, -6, 8, -6], np.float32)
    refined = detector.refine(astronaut, moved)
    assert len(refined) == 1
    assert iou(refined.boxes, face.boxes)[0, 0] > 0.8
    assert np.abs(refined.landmarks - face.landmarks).max() < 6
    assert len(detector.refine(astronaut, np.zeros((0, 4)))) == 0


def test_refine_rejects_a_box_without_a_face(detector: MTCNN, astronaut: np.ndarray) -> None:
    background = np.array([[400, 400, 480, 480]], np.float32)
    assert len(detector.refine(astronaut, background)) == 0


class FiveScansASecond(ScanScheduler):
    """The scheduler's floor whatever the machine: the test does not depend on its speed."""

    @property
    def scans_per_second(self) -> float:
        return 5.0


def test_track_ids_are_stable_on_the_demo_clip(detector: MTCNN) -> None:
    scene = DemoScene()
    tracking = TrackingDetector(detector, FiveScansASecond(scene.fps))
    ids_of_face: dict[int, set[int]] = {}
    for index in range(150):
        tracks, _ = tracking.process(Frame(index, index / scene.fps, 0.0, scene.render(index)))
        faces, truth = scene.truth_by_face(index)
        if not len(truth) or not len(tracks):
            continue
        overlap = iou(truth, tracks.boxes)
        for row, face in enumerate(faces):
            best = int(np.argmax(overlap[row]))
            if overlap[row, best] >= 0.4:
                ids_of_face.setdefault(face, set()).add(int(tracks.track_ids[best]))
    assert set(ids_of_face) == {0, 1, 2}, ids_of_face
    assert all(len(ids) == 1 for ids in ids_of_face.values()), ids_of_face
    assert tracking.full_scans == 25 and tracking.coarse_scans + tracking.refinements == 125


def test_a_scene_cut_gets_a_full_scan_at_once() -> None:
    clock = FakeClock()
    tracking = TrackingDetector(TimedFakeDetector(clock, 0.4, 0.005), ScanScheduler(30.0), clock=clock)
    dark, bright = np.zeros((240, 320, 3), np.uint8), np.full((240, 320, 3), 200, np.uint8)
    scans = [tracking.process(Frame(i, i / 30, 0.0, dark if i < 10 else bright))[1] for i in range(14)]
    assert np.flatnonzero(scans).tolist() == [0, 6, 10]


def entering_clip(astronaut: np.ndarray, frames: int = 34) -> list[np.ndarray]:
    """The astronaut's head sliding in from the right edge of a grey 640x360 frame, 10 px a frame
    (BGR, as a camera gives frames)."""
    head = np.ascontiguousarray(astronaut[40:260, 120:320, ::-1])
    clip = []
    for index in range(frames):
        canvas = np.full((360, 640, 3), 110, np.uint8)
        x = 640 - 10 * index
        visible = min(head.shape[1], 640 - x)
        if visible > 0:
            canvas[60 : 60 + head.shape[0], x : x + visible] = head[:, :visible]
        clip.append(canvas)
    return clip


def frames_missed(
    detector: MTCNN, clip: list[np.ndarray], coarse_pixels_per_second: int | None
) -> tuple[list[int], list[int]]:
    """The frames where exact mode finds a face with confidence >= 0.95, and those where tracking
    does not show it (IoU < 0.5)."""
    tracking = TrackingDetector(
        detector, FiveScansASecond(30.0), coarse_pixels_per_second=coarse_pixels_per_second
    )
    confident, missed = [], []
    for index, image in enumerate(clip):
        exact = detector.detect(image[:, :, ::-1])
        tracks, _ = tracking.process(Frame(index, index / 30, 0.0, image))
        for box in exact.boxes[exact.scores >= 0.95]:
            confident.append(index)
            if not len(tracks) or iou(box[None], tracks.boxes).max() < 0.5:
                missed.append(index)
    return confident, missed


def test_a_face_entering_from_the_edge_is_shown_from_its_first_frame(
    detector: MTCNN, astronaut: np.ndarray
) -> None:
    clip = entering_clip(astronaut)
    confident, missed = frames_missed(detector, clip, COARSE_PIXELS_PER_SECOND)
    assert len(confident) >= 15 and missed == []
    # Refinements alone between full scans leave it unseen until the next full scan.
    _, late = frames_missed(detector, clip, None)
    assert late and late[0] == confident[0]
