"""Events: values from the tracker's births and ends, JSON-ready dicts, unique ids, pickling."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import datetime, timezone

import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.events import (
    STREAM_DOWN,
    Event,
    FaceAppeared,
    FaceLeft,
    StreamDown,
    StreamUp,
    iso_time,
    track_events,
)
from livefaces.tracker import LOST, Tracker
from tests.test_tracker import box_at, faces

WALL = 1_714_564_800.25  # 2024-05-01T12:00:00.250 UTC


def tracked_face_events(end_reason: str | None) -> list:
    """Events of one face confirmed on three frames, then lost (None) or ended with `end_reason`."""
    tracker = Tracker()
    events = []
    for k, score in enumerate([0.91, 0.97, 0.93]):
        step = tracker.step(faces(box_at(10, 20), score=score), k * 0.1)
        events += track_events("door", step.births, step.ends, WALL + k)
    if end_reason is None:
        step = tracker.step(Detections.empty(), 1.0)
        events += track_events("door", step.births, step.ends, WALL + 10)
    else:
        events += track_events("door", (), tracker.end_all(1.0, end_reason), WALL + 10)
    return events


@pytest.mark.parametrize(("end_reason", "reason"), [(None, LOST), (STREAM_DOWN, STREAM_DOWN)])
def test_a_tracked_face_appears_once_and_leaves_once(end_reason: str | None, reason: str) -> None:
    appeared, left = tracked_face_events(end_reason)
    assert isinstance(appeared, FaceAppeared) and isinstance(left, FaceLeft)
    assert (appeared.camera, appeared.track_id, appeared.source_time) == ("door", 0, 0.2)
    assert appeared.wall_time == WALL + 2 and appeared.confidence == pytest.approx(0.93)
    assert appeared.box == pytest.approx(box_at(10, 20), abs=1e-3)
    assert (left.track_id, left.source_time, left.reason) == (0, 1.0, reason)
    assert left.seconds_in_view == pytest.approx(0.2) and left.best_confidence == pytest.approx(0.97)
    assert left.snapshots == ()


def test_a_face_that_was_never_confirmed_raises_nothing() -> None:
    tracker = Tracker()
    step = tracker.step(faces(box_at(0, 0)), 0.0)
    assert track_events("door", step.births, step.ends, WALL) == []
    assert track_events("door", (), tracker.end_all(0.1, STREAM_DOWN), WALL) == []


EXAMPLES = [
    FaceAppeared(
        camera="a",
        source_time=1.5,
        wall_time=WALL,
        track_id=3,
        box=(1.0, 2.0, 3.0, 4.0),
        confidence=0.9,
        snapshots=("a/3_face.jpg", "a/3_frame.jpg"),
    ),
    FaceLeft(
        camera="a",
        source_time=2.0,
        wall_time=WALL,
        track_id=np.int64(3),
        seconds_in_view=np.float64(0.5),
        best_confidence=np.float32(0.99),
        reason=LOST,
        snapshots=("a/3.jpg",),
    ),
    StreamDown(camera="b", source_time=7.0, wall_time=WALL, reason="no frame for 20 s", attempt=2),
    StreamUp(camera="b", source_time=9.0, wall_time=WALL, reason="reconnected", attempt=3),
]


def _all_plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _all_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: event.kind)
def test_to_dict_is_json_ready(event: Event) -> None:
    data = event.to_dict()
    assert _all_plain(data), data
    assert data["event"] == event.kind and data["camera"] == event.camera
    assert data["event_id"] == event.event_id and data["source_time"] == event.source_time
    assert data["wall_time"] == "2024-05-01T12:00:00.250+00:00"
    assert datetime.fromisoformat(data["wall_time"]) == datetime.fromtimestamp(WALL, timezone.utc)
    fields = {f.name for f in dataclasses.fields(event)}
    assert set(data) == fields | {"event"}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: event.kind)
def test_events_are_frozen_and_pickle(event: Event) -> None:
    assert pickle.loads(pickle.dumps(event)) == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.camera = "other"  # type: ignore[misc]


def test_event_ids_are_unique() -> None:
    made = [
        StreamUp(camera="a", source_time=0.0, wall_time=WALL, reason="open", attempt=0) for _ in range(1000)
    ]
    assert len({event.event_id for event in made}) == len(made) == 1000
    assert all(len(event.event_id) == 32 for event in made)


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(0.0) == "1970-01-01T00:00:00.000+00:00"
