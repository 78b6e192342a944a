"""The tracker with plain arrays: births, matches, misses, deaths, crossings, motion, smoothing,
the tentative/confirmed lifecycle, best shots and snapshots."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.tracker import LOST, TrackEnd, Tracker, TrackerSettings, TrackSnapshot, greedy_match

# Landmarks at fixed fractions of the box: eyes, nose, mouth corners.
FRACTIONS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])


def faces(*boxes: tuple[float, float, float, float], score: float = 0.99) -> Detections:
    array = np.array(boxes, np.float32).reshape(-1, 4)
    sizes = array[:, None, 2:4] - array[:, None, 0:2]
    landmarks = array[:, None, 0:2] + FRACTIONS[None] * sizes
    return Detections(array, np.full(len(array), score, np.float32), landmarks.astype(np.float32))


def box_at(x: float, y: float, size: float = 40.0) -> tuple[float, float, float, float]:
    return (x, y, x + size, y + size)


def test_greedy_match_takes_best_overlaps_first() -> None:
    overlap = np.array([[0.9, 0.8], [0.85, 0.1], [0.0, 0.2]])
    assert greedy_match(overlap, 0.3) == [(0, 0)]
    assert greedy_match(overlap, 0.05) == [(0, 0), (2, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def test_births_get_new_ids_and_matches_keep_them() -> None:
    tracker = Tracker()
    first = tracker.update(faces(box_at(0, 0), box_at(200, 0)), 0.0)
    assert first.track_ids.tolist() == [0, 1]
    second = tracker.update(faces(box_at(202, 1), box_at(2, 1), box_at(400, 0)), 0.033)
    assert second.track_ids.tolist() == [1, 0, 2]
    assert len(tracker) == 3


def test_a_missed_track_lives_until_its_time_is_up() -> None:
    tracker = Tracker(TrackerSettings(max_missed_seconds=0.5, confirm_hits=1))
    tracker.update(faces(box_at(0, 0), box_at(200, 0)), 0.0)
    tracker.update(faces(box_at(0, 0)), 0.3)
    assert tracker.predict(0.3).track_ids.tolist() == [0, 1]
    again = tracker.update(faces(box_at(0, 0), box_at(200, 0)), 0.45)
    assert again.track_ids.tolist() == [0, 1]  # came back in time: same id
    tracker.update(faces(box_at(0, 0)), 1.0)
    assert tracker.predict(1.0).track_ids.tolist() == [0]  # missed 0.55 s: ended
    reborn = tracker.update(faces(box_at(0, 0), box_at(200, 0)), 1.1)
    assert reborn.track_ids.tolist() == [0, 2]


def test_no_faces_ends_every_track_in_time() -> None:
    tracker = Tracker(TrackerSettings(max_missed_seconds=0.2))
    tracker.update(faces(box_at(0, 0)), 0.0)
    assert len(tracker.update(Detections.empty(), 0.1)) == 0
    assert len(tracker) == 1
    tracker.update(Detections.empty(), 0.3)
    assert len(tracker) == 0 and len(tracker.predict(0.3)) == 0


def test_prediction_follows_straight_line_motion() -> None:
    tracker = Tracker()
    speed = np.array([300.0, -120.0])  # pixels per second
    for k in range(60):  # two seconds: the filter has learnt the speed
        t = k / 30
        x, y = np.array([100.0, 300.0]) + speed * t
        tracker.update(faces(box_at(x, y)), t)
    ahead = 59 / 30 + 0.1
    x, y = np.array([100.0, 300.0]) + speed * ahead
    predicted = tracker.predict(ahead)
    np.testing.assert_allclose(predicted.boxes[0], box_at(x, y), atol=1.0)
    expected_landmarks = np.array(box_at(x, y))[None, 0:2] + FRACTIONS * 40.0
    np.testing.assert_allclose(predicted.landmarks[0], expected_landmarks, atol=1.0)


def test_crossing_faces_keep_their_ids() -> None:
    tracker = Tracker()
    ids = []
    for k in range(40):
        t = k / 30
        left, right = 100 + 240 * t * 3 / 4, 400 - 240 * t * 3 / 4
        found = tracker.update(faces(box_at(left, 100), box_at(right, 110)), t)
        ids.append(found.track_ids.tolist())
    assert ids[0] == [0, 1]
    assert all(pair == [0, 1] for pair in ids), ids


def test_smoothing_damps_jitter_on_a_still_face() -> None:
    rng = np.random.default_rng(3)
    tracker = Tracker()
    truth = np.array(box_at(200, 150, 80.0))
    raw, smooth = [], []
    for k in range(300):
        noisy = truth + rng.normal(0, 1.0, 4)
        raw.append(noisy)
        smooth.append(tracker.update(faces(tuple(noisy)), k / 30).boxes[0])
    raw_steps = np.abs(np.diff(np.array(raw)[50:], axis=0)).mean()
    smooth_steps = np.abs(np.diff(np.array(smooth)[50:], axis=0)).mean()
    assert smooth_steps < 0.75 * raw_steps


def test_a_face_that_moved_is_followed_at_once_and_jitter_still_damped() -> None:
    for follow, expected_x in ((0.1, 120.0), (None, 108.0)):  # 20 px on an 80 px box: 25 % > 10 %
        tracker = Tracker(TrackerSettings(smoothing=0.4, follow=follow))
        tracker.update(faces(box_at(100, 100, 80.0)), 0.0)
        moved = tracker.update(faces(box_at(120, 100, 80.0)), 0.1)
        assert moved.boxes[0][0] == pytest.approx(expected_x)
    tracker = Tracker(TrackerSettings(smoothing=0.4, follow=0.1))
    tracker.update(faces(box_at(100, 100, 80.0)), 0.0)
    jittered = tracker.update(faces(box_at(102, 100, 80.0)), 0.1)  # 2.5 %: a quarter of the way
    assert jittered.boxes[0][0] == pytest.approx(100 + 2 * (0.4 + 0.6 * 0.25))


def test_an_old_measurement_changes_nothing() -> None:
    tracker = Tracker()
    tracker.update(faces(box_at(0, 0)), 1.0)
    late = tracker.update(faces(box_at(3, 3)), 0.5)
    assert late.track_ids.tolist() == [0]
    np.testing.assert_allclose(tracker.predict(1.0).boxes[0], box_at(0, 0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"match_iou": 0.0},
        {"smoothing": 1.5},
        {"velocity_gain": -0.1},
        {"follow": 0.0},
        {"max_missed_seconds": -1},
        {"tentative_missed_seconds": -0.1},
        {"confirm_hits": 0},
        {"confirm_hits": 2.5},
        {"confirm_hits": True},
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=rf"{name} must .* got {value}"):
        TrackerSettings(**kwargs)


def measure(tracker: Tracker, times: list[float], box: tuple = box_at(0, 0), score: float = 0.99) -> list:
    """One face measured at each of `times`; the `TrackUpdate` of each step."""
    return [tracker.step(faces(box, score=score), t) for t in times]


@pytest.mark.parametrize(
    ("confirm_hits", "times", "confirmed", "birth_step"),
    [
        (1, [0.0], True, 0),
        (3, [0.0, 0.033], False, None),
        (3, [0.0, 0.033, 0.066], True, 2),
        (3, [0.0, 0.033, 0.066, 0.1], True, 2),
        (3, [0.0, 0.0, 0.0], False, None),  # the same frame thrice is one hit
        (5, [0.0, 0.033, 0.066, 0.1], False, None),
    ],
)
def test_a_track_is_tentative_until_measured_on_enough_frames(
    confirm_hits: int, times: list[float], confirmed: bool, birth_step: int | None
) -> None:
    tracker = Tracker(TrackerSettings(confirm_hits=confirm_hits))
    steps = measure(tracker, times)
    assert steps[-1].snapshot.confirmed.tolist() == [confirmed]
    births = [(k, birth) for k, step in enumerate(steps) for birth in step.births]
    if birth_step is None:
        assert births == []
    else:
        assert [k for k, _ in births] == [birth_step]
        birth = births[0][1]
        assert (birth.track_id, birth.time) == (0, times[birth_step])
        assert birth.box == pytest.approx(box_at(0, 0)) and birth.score == pytest.approx(0.99)
    # Tentative faces are still displayed, unless the caller asks for confirmed ones only.
    assert tracker.predict(times[-1]).track_ids.tolist() == [0]
    assert tracker.predict(times[-1], include_tentative=False).track_ids.tolist() == (
        [0] if confirmed else []
    )


@pytest.mark.parametrize(
    ("settings", "times", "missed_until", "alive", "ended", "dropped"),
    [
        ({}, [0.0], 0.2, True, False, False),
        ({}, [0.0], 0.3, False, False, True),  # tentative: dropped, no event
        ({}, [0.0, 0.033, 0.066], 0.3, True, False, False),  # confirmed: grace is longer
        ({}, [0.0, 0.033, 0.066], 0.6, False, True, False),
        ({"max_missed_seconds": 0.1}, [0.0], 0.15, False, False, True),  # never longer than that
        ({"tentative_missed_seconds": 0.0}, [0.0], 0.01, False, False, True),
    ],
)
def test_missed_tracks_are_dropped_or_ended(
    settings: dict, times: list[float], missed_until: float, alive: bool, ended: bool, dropped: bool
) -> None:
    tracker = Tracker(TrackerSettings(**settings))
    measure(tracker, times)
    step = tracker.step(Detections.empty(), missed_until)
    assert len(tracker) == int(alive) and len(step.snapshot) == int(alive)
    assert [end.reason for end in step.ends] == ([LOST] if ended else [])
    assert step.dropped == ((0,) if dropped else ())


def test_an_end_carries_time_in_view_and_the_best_shot() -> None:
    tracker = Tracker()
    scores = [0.90, 0.93, 0.99, 0.95, 0.91]
    for k, score in enumerate(scores):
        tracker.step(faces(box_at(10 * k, 0), score=score), 0.25 * k)
    step = tracker.step(Detections.empty(), 1.6)
    (end,) = step.ends
    assert (end.track_id, end.time, end.reason) == (0, 1.6, LOST)
    assert (end.first_seen, end.last_seen, end.seconds_in_view) == (0.0, 1.0, 1.0)
    assert end.best_score == pytest.approx(0.99)
    assert end.best.time == 0.5 and end.best.track_id == 0
    assert end.best.box == pytest.approx(box_at(20, 0))  # the raw measurement, not the smoothed state
    assert np.allclose(end.best.landmarks, faces(box_at(20, 0)).landmarks[0])


@pytest.mark.parametrize(
    ("scores", "best", "improved_at"),
    [
        ([0.90, 0.95, 0.93], 1, [0, 1]),
        ([0.90, 0.90], 0, [0]),  # an equal score keeps the earlier shot
        ([0.99, 0.80, 0.85], 0, [0]),
        ([0.80, 0.85, 0.90, 0.95], 3, [0, 1, 2, 3]),
    ],
)
def test_best_shot_is_the_highest_score(scores: list[float], best: int, improved_at: list[int]) -> None:
    tracker = Tracker(TrackerSettings(confirm_hits=1))
    improved = []
    for k, score in enumerate(scores):
        step = tracker.step(faces(box_at(k, 0), score=score), k / 30)
        if step.new_best:
            (shot,) = step.new_best
            assert (shot.track_id, shot.time, shot.score) == (0, k / 30, pytest.approx(score))
            improved.append(k)
    assert improved == improved_at
    assert tracker.snapshot().best_scores.tolist() == [pytest.approx(scores[best])]
    (end,) = tracker.end_all(1.0, "test")
    assert end.best.time == best / 30 and end.best.box == pytest.approx(box_at(best, 0))


@pytest.mark.parametrize("reason", ["stream_down", "shutdown"])
def test_end_all_ends_confirmed_tracks_and_drops_tentative_ones(reason: str) -> None:
    tracker = Tracker()
    measure(tracker, [0.0, 0.033, 0.066])
    tracker.step(faces(box_at(0, 0), box_at(300, 0)), 0.1)  # a second face, still tentative
    ends = tracker.end_all(0.5, reason)
    assert [(end.track_id, end.reason, end.time, end.last_seen) for end in ends] == [(0, reason, 0.5, 0.1)]
    assert len(tracker) == 0 and len(tracker.snapshot()) == 0 and tracker.end_all(0.6, reason) == ()
    assert tracker.update(faces(box_at(0, 0)), 0.7).track_ids.tolist() == [2]  # ids keep counting


def moving_tracker() -> tuple[Tracker, TrackSnapshot]:
    tracker = Tracker()
    for k in range(10):
        tracker.step(faces(box_at(100 + 9 * k, 50 - 3 * k), box_at(400 - 6 * k, 80)), k / 30)
    step = tracker.step(faces(box_at(190, 20), box_at(700, 700)), 10 / 30)  # one moved, one new
    return tracker, step.snapshot


@pytest.mark.parametrize("t", [10 / 30, 0.4, 1.0, 0.2])
def test_snapshot_at_equals_predict(t: float) -> None:
    tracker, snapshot = moving_tracker()
    faces_at = snapshot.at(t)
    predicted = tracker.predict(t)
    for name in ("boxes", "scores", "landmarks", "track_ids"):
        np.testing.assert_array_equal(getattr(faces_at, name), getattr(predicted, name))
    assert faces_at.confirmed.tolist() == [True, True, False]
    measured_now = t == 10 / 30
    assert faces_at.measured.tolist() == [measured_now, False, measured_now]


def test_snapshot_is_a_value_that_later_updates_do_not_touch() -> None:
    tracker, snapshot = moving_tracker()
    before = snapshot.at(0.5)
    tracker.step(faces(box_at(300, 300)), 0.5)
    tracker.end_all(0.6, "stream_down")
    after = snapshot.at(0.5)
    np.testing.assert_array_equal(before.boxes, after.boxes)
    assert len(snapshot) == 3 and snapshot.time == 10 / 30
    with pytest.raises(ValueError):
        snapshot.state[0, 0] = 1.0


def test_snapshot_and_lifecycle_values_pickle() -> None:
    tracker, snapshot = moving_tracker()
    copy = pickle.loads(pickle.dumps(snapshot))
    for name in ("ids", "state", "velocity", "updated", "first_seen", "hits", "scores", "confirmed"):
        np.testing.assert_array_equal(getattr(copy, name), getattr(snapshot, name))
    np.testing.assert_array_equal(copy.at(0.5).boxes, snapshot.at(0.5).boxes)
    ends = tracker.end_all(1.0, "stream_down")
    assert pickle.loads(pickle.dumps(ends)) == ends and isinstance(ends[0], TrackEnd)
    empty = TrackSnapshot.empty()
    assert len(empty) == 0 and len(empty.at(1.0)) == 0
