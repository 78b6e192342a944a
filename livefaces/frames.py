"""The records that travel through the runtime: a captured frame, and a frame with its faces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livefaces.detections import Detections
from livefaces.events import Event
from livefaces.tracker import TrackedFaces


@dataclass(frozen=True)
class Frame:
    """One captured image.

    index: position in the source, from 0. timestamp: seconds on the source's own clock (the
    container's presentation time for files, time since the first frame for live sources), so
    recordings keep the source's timing. captured_at: `time.monotonic()` when it was read, for
    latency. image: BGR uint8 HxWx3, as OpenCV and PyAV give it. name: the file it came from,
    for image and folder sources.
    """

    index: int
    timestamp: float
    captured_at: float
    image: np.ndarray
    name: str | None = None


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What every output of a camera receives for one frame: a plain value.

    camera: the camera's name. faces: the faces to show on this frame (tracks placed at its time,
    with their confirmed / measured flags; in exact mode the detections of the frame itself or of
    the last detected frame). fresh: the faces were measured on this very frame. events: what
    happened since the previous result (faces appeared or left). scanned_until: source time of
    the newest frame the detector has fully scanned (where new faces are found) for this camera,
    None before the first scan's answer (a live camera's first frames go out before it). Each
    output renders what it wants from it (raw, annotated, ...).
    """

    camera: str
    frame: Frame
    faces: TrackedFaces
    fresh: bool
    events: tuple[Event, ...] = ()
    scanned_until: float | None = None

    @property
    def detections(self) -> Detections:
        return self.faces.detections


@dataclass(frozen=True)
class EventNotice:
    """Events of one camera that belong to no frame: its stream went down or came back, its tracks
    were ended at a drop or at the end of the run. Outputs get them through `on_events`."""

    camera: str
    events: tuple[Event, ...]
