"""One camera's policy on plain values: the requests it sends, the tracks and events it produces.

No threads and no detector: each test plays the detector service by hand, answering the runner's
requests with chosen faces, on frames with chosen timestamps (the source's clock), and a fake
wall clock for the events.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from livefaces.cascade import Settings
from livefaces.detections import Detections
from livefaces.events import FaceAppeared, FaceLeft
from livefaces.frames import Frame
from livefaces.runtime.camera_runner import (
    COARSE_PIXELS_PER_SECOND,
    CameraRunner,
    DetectorFailed,
    RunnerSettings,
    coarse_face_size,
)
from livefaces.runtime.detector_service import DetectorReply, RefineRequest, ScanRequest

FPS = 30.0
SIZE = (320, 240)


def frame(index: int, brightness: int = 90) -> Frame:
    image = np.full((SIZE[1], SIZE[0], 3), brightness, np.uint8)
    return Frame(index, index / FPS, 0.0, image)


def moving(index: int, x: int = 280) -> Frame:
    """`frame(index)` with a bright block sliding down at column `x` (far from the test's faces)."""
    scene = frame(index)
    scene.image[(index * 8) % 200 : (index * 8) % 200 + 40, x : x + 30] = 250
    return scene


def faces(*boxes: tuple[float, float, float, float], score: float = 0.99) -> Detections:
    array = np.array(boxes, np.float32).reshape(-1, 4)
    points = np.repeat(((array[:, :2] + array[:, 2:]) / 2)[:, None, :], 5, axis=1)
    return Detections(array, np.full(len(array), score, np.float32), points.astype(np.float32))


def answer(request: ScanRequest | RefineRequest, found: Detections, seconds: float = 0.01) -> DetectorReply:
    return DetectorReply(
        request.camera, request.seq, request.kind, found, compute_seconds=seconds, batch_size=1
    )


class WallClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def tracking_runner(**settings: object) -> CameraRunner:
    return CameraRunner(
        "door", FPS, RunnerSettings(tracking=True, adaptive=False, **settings), wall_clock=WallClock()
    )


@pytest.mark.parametrize(
    ("every", "asked"),
    [(None, [0, 1, 2, 3, 4, 5, 6]), (1, [0, 1, 2, 3, 4, 5, 6]), (3, [0, 3, 6]), (4, [0, 4])],
)
def test_exact_mode_scans_every_nth_frame_and_reuses_the_result(every: int | None, asked: list[int]) -> None:
    runner = CameraRunner("desk", FPS, RunnerSettings(detect_every=every))
    seen = []
    for index in range(7):
        request = runner.plan(frame(index))
        if request is not None:
            assert isinstance(request, ScanRequest) and request.seq == index and request.live is False
            runner.absorb(frame(index), answer(request, faces((index, 10, index + 40, 50))))
            seen.append(index)
        result = runner.result(frame(index))
        assert result.fresh == (index in asked)
        detected_on = seen[-1]
        assert result.detections.boxes[0, 0] == detected_on  # the result of the last scanned frame
        assert result.faces.measured.tolist() == [result.fresh]
    assert seen == asked


def test_tracking_scans_at_the_floor_cadence_and_refines_the_tracks_between() -> None:
    runner = tracking_runner()
    kinds = []
    for index in range(13):
        request = runner.plan(frame(index))
        assert request is not None  # a face is tracked from frame 0 on: every frame is measured
        kinds.append(request.kind)
        if isinstance(request, RefineRequest):
            # O-Net is asked about where the track is predicted on this frame
            assert np.allclose(request.boxes, runner.result(frame(index)).detections.boxes, atol=1e-3)
        runner.absorb(frame(index), answer(request, faces((100, 80, 160, 150))))
    # 5 full scans a second at 30 fps: frames 0, 6 and 12 (half a frame of slack)
    assert [i for i, kind in enumerate(kinds) if kind == "scan"] == [0, 6, 12]
    assert runner.full_scans == 3 and runner.refinements == 10
    assert runner.cadence == "tracking, 5.0 full scans/s"


def test_a_scene_cut_forces_a_full_scan() -> None:
    runner = tracking_runner()
    first = runner.plan(frame(0))
    assert first is not None
    runner.absorb(frame(0), answer(first, faces((100, 80, 160, 150))))
    refine = runner.plan(frame(1))
    assert isinstance(refine, RefineRequest)
    runner.absorb(frame(1), answer(refine, faces((100, 80, 160, 150))))
    assert isinstance(runner.plan(frame(2, brightness=220)), ScanRequest)


def test_no_tracks_no_refinement() -> None:
    runner = tracking_runner()
    first = runner.plan(frame(0))
    assert first is not None
    runner.absorb(frame(0), answer(first, Detections.empty()))
    assert [runner.plan(frame(i)) for i in range(1, 5)] == [None] * 4


def test_a_face_appears_once_confirmed_and_leaves_when_unseen() -> None:
    runner = tracking_runner()
    events = []
    for index in range(40):
        request = runner.plan(frame(index))
        found = faces((100, 80, 160, 150)) if index < 10 else Detections.empty()
        if request is not None:
            runner.absorb(frame(index), answer(request, found))
        events += runner.result(frame(index)).events
    appeared = [e for e in events if isinstance(e, FaceAppeared)]
    left = [e for e in events if isinstance(e, FaceLeft)]
    assert len(appeared) == 1 and appeared[0].source_time == pytest.approx(2 / FPS)  # the third hit
    assert appeared[0].camera == "door" and appeared[0].track_id == 0
    assert len(left) == 1 and left[0].track_id == 0 and left[0].reason == "lost"
    assert left[0].seconds_in_view == pytest.approx(9 / FPS)


def test_tentative_tracks_are_shown_but_announce_nothing() -> None:
    runner = tracking_runner()
    request = runner.plan(frame(0))
    assert request is not None
    runner.absorb(frame(0), answer(request, faces((100, 80, 160, 150))))
    result = runner.result(frame(0))
    assert len(result.faces) == 1 and result.faces.confirmed.tolist() == [False]
    assert result.fresh and result.faces.measured.tolist() == [True] and result.events == ()
    assert runner.result(frame(1)).faces.measured.tolist() == [False]  # predicted, not measured


def test_end_tracks_reports_stream_down() -> None:
    runner = tracking_runner()
    for index in range(5):
        request = runner.plan(frame(index))
        assert request is not None
        runner.absorb(frame(index), answer(request, faces((100, 80, 160, 150))))
    pending = runner.take_events()  # raised by the answers, no result taken since: a drop notice
    assert [(e.kind, e.track_id) for e in pending] == [("face_appeared", 0)]  # type: ignore[attr-defined]
    ends = runner.end_tracks(5 / FPS, "stream_down")
    assert [(e.track_id, e.reason) for e in ends] == [(0, "stream_down")]
    assert runner.result(frame(5)).events == () and runner.take_events() == ()


def test_scans_are_shrunk_to_detect_width_and_mapped_back() -> None:
    runner = CameraRunner("desk", FPS, RunnerSettings(detect_width=160))
    request = runner.plan(frame(0))
    assert isinstance(request, ScanRequest) and request.image_rgb.shape == (120, 160, 3)
    runner.absorb(frame(0), answer(request, faces((10, 20, 30, 40))))
    assert runner.result(frame(0)).detections.boxes.tolist() == [[20, 40, 60, 80]]


def test_weak_faces_are_dropped_and_settings_travel_with_requests() -> None:
    cascade = Settings(min_face_size=40)
    runner = CameraRunner("desk", FPS, RunnerSettings(min_confidence=0.9, cascade=cascade))
    request = runner.plan(frame(0))
    assert request is not None and request.settings == cascade
    found = Detections.empty()
    for box, score in (((10, 10, 50, 50), 0.95), ((60, 10, 100, 50), 0.5)):
        one = faces(box, score=score)
        found = Detections(
            np.concatenate([found.boxes, one.boxes]),
            np.concatenate([found.scores, one.scores]),
            np.concatenate([found.landmarks, one.landmarks]),
        )
    runner.absorb(frame(0), answer(request, found))
    assert runner.result(frame(0)).detections.scores.tolist() == [pytest.approx(0.95)]


def test_an_error_reply_fails_and_a_replaced_one_changes_nothing() -> None:
    runner = CameraRunner("desk", FPS, RunnerSettings(live=True))
    request = runner.plan(frame(0))
    assert request is not None
    runner.absorb(frame(0), DetectorReply("desk", 0, "scan", None, replaced=True))
    assert not runner.result(frame(0)).fresh
    request = runner.plan(frame(1))
    assert request is not None and request.live
    with pytest.raises(DetectorFailed, match="out of memory"):
        runner.absorb(frame(1), DetectorReply("desk", 1, "scan", None, error="RuntimeError: out of memory"))


def test_refinements_can_carry_patches_instead_of_the_frame() -> None:
    runner = CameraRunner("door", FPS, RunnerSettings(tracking=True, adaptive=False, patches=True))
    first = runner.plan(frame(0))
    assert first is not None
    runner.absorb(frame(0), answer(first, faces((100, 80, 160, 150))))
    request = runner.plan(frame(1))
    assert isinstance(request, RefineRequest) and request.image_rgb is None
    assert request.patches is not None and request.patches.shape == (1, 48, 48, 3)
    x1, y1, x2, y2 = request.boxes[0]
    assert x2 - x1 == pytest.approx(y2 - y1)  # the squares the patches were cut from


def test_frames_between_full_scans_get_coarse_scans_that_measure_the_tracks() -> None:
    runner = tracking_runner(coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND)
    smallest = coarse_face_size((SIZE[1], SIZE[0]), COARSE_PIXELS_PER_SECOND / FPS)
    assert smallest == 24  # 144x144 px for P-Net's first level on a 320x240 frame
    kinds = []
    for index in range(13):
        request = runner.plan(moving(index))
        assert isinstance(request, ScanRequest)
        coarse = request.min_face_size is not None
        kinds.append("coarse" if coarse else "full")
        if coarse:
            assert request.min_face_size == smallest
            assert request.known is not None
            assert np.allclose(request.known, runner.result(moving(index)).detections.boxes, atol=1e-3)
        else:
            assert request.known is None and request.coarse == {}
        runner.absorb(moving(index), answer(request, faces((100, 80, 160, 150))))
    assert [i for i, kind in enumerate(kinds) if kind == "full"] == [0, 6, 12]
    assert runner.full_scans == 3 and runner.coarse_scans == 10 and runner.refinements == 0


def test_a_new_face_found_by_a_coarse_scan_is_shown_on_that_frame() -> None:
    runner = tracking_runner(coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND)
    first = runner.plan(moving(0))
    assert first is not None
    runner.absorb(moving(0), answer(first, Detections.empty()))
    empty = runner.plan(moving(1))  # no track yet: still looked at, for new faces
    assert isinstance(empty, ScanRequest) and empty.known is not None and empty.known.shape == (0, 4)
    runner.absorb(moving(1), answer(empty, Detections.empty()))
    entering = runner.plan(moving(2))
    assert isinstance(entering, ScanRequest) and entering.min_face_size is not None
    runner.absorb(moving(2), answer(entering, faces((0, 80, 50, 150))))
    shown = runner.result(moving(2)).detections
    assert shown.boxes.tolist() == [[0, 80, 50, 150]]


def test_coarse_scans_only_where_the_picture_moved_away_from_the_tracks() -> None:
    runner = tracking_runner(coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND)
    face = (100, 80, 160, 150)
    first = runner.plan(frame(0))
    assert first is not None
    runner.absorb(frame(0), answer(first, faces(face)))
    still = runner.plan(frame(1))  # nothing changed: no face can have come in
    assert isinstance(still, RefineRequest)
    runner.absorb(frame(1), answer(still, faces(face)))
    nodding = frame(2)
    nodding.image[90:140, 110:150] = 250  # motion on the tracked face only
    near = runner.plan(nodding)
    assert isinstance(near, RefineRequest)
    runner.absorb(nodding, answer(near, faces(face)))
    away = runner.plan(moving(3))  # motion elsewhere: look there for a new face
    assert isinstance(away, ScanRequest) and away.min_face_size is not None
    assert runner.refinements == 2 and runner.coarse_scans == 0


def test_a_saturated_shared_detector_gets_refinements_instead_of_coarse_scans() -> None:
    """When this camera's requests queue behind other cameras' for more than a frame, the
    optional coarse scans (three refinements' cost) give way; they come back when waits drop."""
    runner = tracking_runner(coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND)
    face = faces((100, 80, 160, 150))
    kinds = []
    for index, waited in enumerate([0.0, 0.2, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]):
        request = runner.plan(moving(index))
        assert request is not None
        kinds.append("coarse" if getattr(request, "min_face_size", None) else request.kind)
        runner.absorb(moving(index), replace(answer(request, face), wait_seconds=waited))
    assert kinds[0] == "scan" and kinds[1] == "coarse"
    assert kinds[2:5] == ["refine"] * 3  # queued: 0.2 s > a frame (1/30 s)
    assert kinds[5] == "refine" and "coarse" in kinds[6:]  # waits smoothed back below a frame


@pytest.mark.parametrize(
    ("shape", "fps", "size"),
    [
        ((270, 480), 12.0, 19),  # below the cascade's 20 px: the whole pyramid, every face
        ((360, 640), 30.0, 40),
        ((720, 1280), 30.0, 80),
        ((720, 1280), 15.0, 57),
        ((1080, 1920), 30.0, 120),
        ((14, 4000), 30.0, None),  # not even one pyramid level fits: refinements instead
    ],
)
def test_coarse_scans_look_for_the_faces_a_pixel_budget_per_second_allows(
    shape: tuple[int, int], fps: float, size: int | None
) -> None:
    assert coarse_face_size(shape, COARSE_PIXELS_PER_SECOND / fps) == size
    runner = CameraRunner(
        "door",
        fps,
        RunnerSettings(tracking=True, adaptive=False, coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND),
    )
    image = np.full((*shape, 3), 90, np.uint8)
    first = runner.plan(Frame(0, 0.0, 0.0, image))
    assert first is not None
    runner.absorb(Frame(0, 0.0, 0.0, image), answer(first, faces((0, 0, 1, 1))))
    changed = image.copy()
    changed[:, -max(shape[1] // 8, 1) :] = 190  # a strip at the far edge changed (no scene cut)
    second = runner.plan(Frame(1, 1 / fps, 0.0, changed))
    if size is None:
        assert isinstance(second, RefineRequest)
    else:
        assert isinstance(second, ScanRequest) and second.min_face_size == size


def test_a_bad_coarse_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="coarse_pixels_per_second must be > 0"):
        RunnerSettings(tracking=True, coarse_pixels_per_second=0)
