"""What the web view shows, handed from the cameras' writer threads to the server's threads.

Each camera's `WebSink` only stores references: the newest frame result (and the masked image
when `--anonymize` masks it) in a `LiveFrames` slot, and events with their snapshots in an
`EventStore`. Nothing is drawn, copied or encoded on the pipeline's threads. JPEGs are made on
the server's side, by `LiveFrames.jpeg`, only when a viewer asks, once per new frame however many
viewers there are (the newest frame wins; a slow viewer skips frames, it never delays one).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livefaces import overlay
from livefaces.events import Event, FaceAppeared, FaceLeft
from livefaces.frames import FrameResult
from livefaces.outputs.snapshots import EventPictures

JPEG_QUALITY = 80
EVENTS_KEPT = 1000  # recent events the API can list, over all cameras
SNAPSHOTS_KEPT = 200  # snapshot pictures kept in memory (when no --snapshots folder holds them)


@dataclass(frozen=True)
class Picture:
    """One camera's newest frame as the server may show it: `image` is BGR, already masked when
    the view anonymizes; `result` carries the faces to draw."""

    version: int
    result: FrameResult
    image: np.ndarray


class _Slot:
    def __init__(self) -> None:
        self.picture: Picture | None = None
        self.encoded: dict[tuple[bool, int | None], tuple[int, bytes]] = {}
        self.encoding = threading.Lock()  # one encoder per camera at a time: viewers share its work


class LiveFrames:
    """The newest picture of each camera (writers `post`, servers read); thread-safe."""

    def __init__(self, cameras: Sequence[str]) -> None:
        self._order = tuple(cameras)
        self._slots = {name: _Slot() for name in self._order}
        self._lock = threading.Lock()
        self._version = 0

    @property
    def cameras(self) -> tuple[str, ...]:
        return self._order

    def post(self, camera: str, result: FrameResult, image: np.ndarray) -> None:
        """Make this the camera's newest picture (a reference assignment; never waits on a reader)."""
        with self._lock:
            self._version += 1
            self._slots[camera].picture = Picture(self._version, result, image)

    def clear(self, camera: str) -> None:
        """The camera has no current picture (its stream went down, or it ended)."""
        with self._lock:
            self._slots[camera].picture = None

    def latest(self, camera: str) -> Picture | None:
        with self._lock:
            return self._slots[camera].picture

    def jpeg(self, camera: str, annotated: bool, width: int | None = None) -> tuple[int, bytes] | None:
        """(version, JPEG) of the camera's newest picture, boxes drawn when `annotated`, shrunk to
        `width` when narrower; None before its first frame. Encoded once per version and form.
        Blocks while another thread encodes the same camera: call it off the event loop."""
        slot = self._slots[camera]
        with slot.encoding:
            picture = self.latest(camera)
            if picture is None:
                return None
            key = (annotated, width)
            cached = slot.encoded.get(key)
            if cached is not None and cached[0] == picture.version:
                return cached
            encoded = (picture.version, encode_jpeg(render(picture, annotated), width))
            slot.encoded = {k: v for k, v in slot.encoded.items() if v[0] == picture.version}
            slot.encoded[key] = encoded
            return encoded


def render(picture: Picture, annotated: bool) -> np.ndarray:
    """The picture with its faces drawn (a copy), or as it is."""
    if not annotated:
        return picture.image
    return overlay.render(picture.image, picture.result.detections, "annotated")


def encode_jpeg(image: np.ndarray, width: int | None = None) -> bytes:
    """`image` as JPEG, shrunk to `width` pixels wide (aspect kept) when it is wider."""
    if width is not None and image.shape[1] > width:
        height = max(round(image.shape[0] * width / image.shape[1]), 1)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as JPEG")
    return data.tobytes()


@dataclass(frozen=True)
class StoredEvent:
    """An event as the API lists it, numbered in arrival order (`seq`, from 1), with whether a
    snapshot of it can be fetched."""

    seq: int
    event: Event
    has_snapshot: bool


class EventStore:
    """The latest `EVENTS_KEPT` events of every camera and the snapshots of the latest
    `SNAPSHOTS_KEPT` face events, by event id: the file `--snapshots` wrote, or a crop in memory."""

    def __init__(self, events_kept: int = EVENTS_KEPT, snapshots_kept: int = SNAPSHOTS_KEPT) -> None:
        self._events: deque[StoredEvent] = deque(maxlen=events_kept)
        self._snapshots: dict[str, Path | np.ndarray] = {}
        self._snapshots_kept = snapshots_kept
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, event: Event, snapshot: Path | np.ndarray | None) -> None:
        with self._lock:
            self._seq += 1
            self._events.append(StoredEvent(self._seq, event, snapshot is not None))
            if snapshot is not None:
                self._snapshots[event.event_id] = snapshot
                while len(self._snapshots) > self._snapshots_kept:
                    del self._snapshots[next(iter(self._snapshots))]

    def recent(
        self, camera: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """The newest `limit` events (of `camera`, raised after wall time `since`), newest first."""
        with self._lock:
            events = list(self._events)
        chosen = [
            stored
            for stored in reversed(events)
            if (camera is None or stored.event.camera == camera)
            and (since is None or math.floor(stored.event.wall_time * 1000) / 1000 > since)  # as ISO shows it
        ]
        return chosen[:limit]

    def snapshot(self, event_id: str) -> bytes | None:
        """The JPEG of the event's snapshot, None when there is none (or no longer)."""
        with self._lock:
            picture = self._snapshots.get(event_id)
        if isinstance(picture, Path):
            try:
                return picture.read_bytes()
            except OSError:
                return None
        return None if picture is None else encode_jpeg(picture)


class WebSink:
    """One camera's output to the web view: its newest frame and its events. Stores references
    only (render None: it takes the raw frame the result carries, or the masked image that an
    anonymizing wrapper hands it). `snapshots`: keep a face crop with each face event (not when
    the view is anonymized: a crop is the face)."""

    render: str | None = None

    def __init__(self, frames: LiveFrames, events: EventStore, camera: str, snapshots: bool = True) -> None:
        if camera not in frames.cameras:
            raise KeyError(f"unknown camera {camera!r}; the web view has {list(frames.cameras)}")
        self.frames = frames
        self.events = events
        self.camera = camera
        self._pictures = EventPictures() if snapshots else None

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.frames.post(self.camera, result, result.frame.image if image is None else image)
        if self._pictures is not None:
            self._pictures.update(result)

    def on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            face_event = isinstance(event, (FaceAppeared, FaceLeft))
            snapshot = self._pictures.picture(event) if face_event and self._pictures is not None else None
            self.events.add(event, snapshot)
            if event.kind == "stream_down":
                self.frames.clear(self.camera)

    def close(self) -> None:
        if self._pictures is not None:
            self._pictures.clear()

    def summary(self) -> None:
        """The server reports its address; a view writes nothing."""
