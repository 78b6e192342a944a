"""What happened, as plain values for event sinks (JSON lines, MQTT, webhooks): faces that appeared
and left, streams that went down and came back.

Every event names its camera and carries a unique id (uuid4 hex: unique across cameras, processes
and restarts with no counter to persist), the wall time it was raised (Unix seconds; ISO 8601 UTC
in `to_dict`) and the source time it refers to (seconds on the camera's session clock). Events are
frozen and picklable, so they cross threads and processes as they are. `track_events` turns the
tracker's births and ends into face events for one camera.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from livefaces.tracker import TrackBirth, TrackEnd

STREAM_DOWN = "stream_down"  # the reason of face_left events raised because the stream went down


def new_event_id() -> str:
    """A fresh unique event id."""
    return uuid.uuid4().hex


def iso_time(wall_time: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds, e.g. '2024-05-01T12:00:00.250+00:00'."""
    return datetime.fromtimestamp(wall_time, timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Common to every event. `kind` names the event type in `to_dict` (the "event" key)."""

    kind: ClassVar[str] = "event"
    camera: str
    source_time: float
    wall_time: float
    event_id: str = field(default_factory=new_event_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain Python values: {"event": kind, ...fields}, wall time in ISO 8601."""
        values = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        values["wall_time"] = iso_time(self.wall_time)
        return {"event": self.kind, **values}


@dataclass(frozen=True, kw_only=True)
class FaceAppeared(Event):
    """A confirmed face came into view. box: x1, y1, x2, y2 in the camera's frame pixels.

    snapshots: paths of the pictures taken of it (face crop, full frame; filled in by a snapshot
    output, empty otherwise).
    """

    kind: ClassVar[str] = "face_appeared"
    track_id: int
    box: tuple[float, float, float, float]
    confidence: float
    snapshots: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FaceLeft(Event):
    """A confirmed face left: unseen too long ("lost") or its stream went down ("stream_down").

    snapshots: the path of its best shot (filled in by a snapshot output, empty otherwise).
    """

    kind: ClassVar[str] = "face_left"
    track_id: int
    seconds_in_view: float
    best_confidence: float
    reason: str
    snapshots: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StreamDown(Event):
    """A camera stopped giving frames; `attempt` counts the reconnections tried so far."""

    kind: ClassVar[str] = "stream_down"
    reason: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class StreamUp(Event):
    """A camera gives frames (again); `attempt` is the reconnection that succeeded (0: first open)."""

    kind: ClassVar[str] = "stream_up"
    reason: str
    attempt: int


def face_appeared(camera: str, birth: TrackBirth, wall_time: float) -> FaceAppeared:
    """The event for a track the tracker just confirmed."""
    return FaceAppeared(
        camera=camera,
        source_time=birth.time,
        wall_time=wall_time,
        track_id=birth.track_id,
        box=birth.box,
        confidence=birth.score,
    )


def face_left(camera: str, end: TrackEnd, wall_time: float) -> FaceLeft:
    """The event for a confirmed track that ended."""
    return FaceLeft(
        camera=camera,
        source_time=end.time,
        wall_time=wall_time,
        track_id=end.track_id,
        seconds_in_view=end.seconds_in_view,
        best_confidence=end.best_score,
        reason=end.reason,
    )


def track_events(
    camera: str, births: Iterable[TrackBirth], ends: Iterable[TrackEnd], wall_time: float
) -> list[FaceAppeared | FaceLeft]:
    """Face events for one camera from one tracker step (or `end_all`): births first, then ends."""
    appeared = [face_appeared(camera, birth, wall_time) for birth in births]
    return [*appeared, *(face_left(camera, end, wall_time) for end in ends)]


def _plain(value: Any) -> Any:
    """`value` with NumPy scalars as Python numbers and tuples as lists, for JSON."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
