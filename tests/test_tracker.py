"""The tracker with plain arrays: births, matches, misses, deaths, crossings, motion, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.tracker import Tracker, TrackerSettings, greedy_match

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
    tracker = Tracker(TrackerSettings(max_missed_seconds=0.5))
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


def test_an_old_measurement_changes_nothing() -> None:
    tracker = Tracker()
    tracker.update(faces(box_at(0, 0)), 1.0)
    late = tracker.update(faces(box_at(3, 3)), 0.5)
    assert late.track_ids.tolist() == [0]
    np.testing.assert_allclose(tracker.predict(1.0).boxes[0], box_at(0, 0))


@pytest.mark.parametrize(
    "kwargs",
    [{"match_iou": 0.0}, {"smoothing": 1.5}, {"velocity_gain": -0.1}, {"max_missed_seconds": -1}],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TrackerSettings(**kwargs)
