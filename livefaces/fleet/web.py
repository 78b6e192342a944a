"""The web view (`--http`) of a fleet: the driver serves it, the camera workers keep its data.

`WebServer` reads three things: the cameras' newest pictures (`LiveFrames.jpeg`), their events
and snapshots (`EventStore.recent` / `.snapshot`), and a detector service for `POST
/api/detect`. On a fleet each camera worker keeps its own pictures and events (the same
`WebSink` as in one process) and encodes its JPEG itself, so only JPEGs and event values
travel; the objects here give the server the same three interfaces over Ray calls, each with a
timeout, so a dead or restarting worker shows as no picture, never a hung request.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from livefaces.fleet.link import DetectorLink
from livefaces.runtime.detector_service import Mailbox, Request

if TYPE_CHECKING:
    from livefaces.fleet.ray_fleet import Fleet
    from livefaces.outputs.web.live import StoredEvent

CALL_SECONDS = 5.0  # a viewer waits at most this long for a camera worker's answer


class FleetFrames:
    """`LiveFrames.cameras` and `.jpeg` for the web server, answered by the camera workers."""

    def __init__(self, fleet: Fleet, timeout: float = CALL_SECONDS) -> None:
        self._fleet = fleet
        self._timeout = timeout

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(camera.name for camera in self._fleet.status().cameras)

    def jpeg(self, camera: str, annotated: bool, width: int | None = None) -> tuple[int, bytes] | None:
        import ray

        actor = self._fleet.actor_of(camera)
        if actor is None:
            return None
        try:
            return ray.get(actor.jpeg.remote(annotated, width), timeout=self._timeout)
        except Exception:  # the worker is gone or restarting: no picture for now
            return None


class FleetEvents:
    """`EventStore.recent` and `.snapshot` for the web server, over every camera worker. `seq`
    numbers each camera's events (on a fleet there is no single arrival order)."""

    def __init__(self, fleet: Fleet, timeout: float = CALL_SECONDS) -> None:
        self._fleet = fleet
        self._timeout = timeout

    def recent(
        self, camera: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        import ray

        names = [camera] if camera is not None else list(FleetFrames(self._fleet).cameras)
        actors = [a for a in (self._fleet.actor_of(name) for name in names) if a is not None]
        refs = [actor.recent_events.remote(since, limit) for actor in actors]
        found: list[StoredEvent] = []
        for ref in refs:
            with contextlib.suppress(Exception):
                found += ray.get(ref, timeout=self._timeout)
        found.sort(key=lambda stored: stored.event.wall_time, reverse=True)
        return found[:limit]

    def snapshot(self, event_id: str) -> bytes | None:
        import ray

        for name in FleetFrames(self._fleet).cameras:
            actor = self._fleet.actor_of(name)
            if actor is None:
                continue
            with contextlib.suppress(Exception):
                data = ray.get(actor.snapshot.remote(event_id), timeout=self._timeout)
                if data is not None:
                    return data
        return None


class FleetUploads:
    """The detector service as `POST /api/detect` uses it (`closed`, `submit`, `connect`,
    `disconnect`): each upload goes over its own `DetectorLink` to a detector worker, batched
    there with the cameras' requests; `forget(client)` has the worker drop it afterwards."""

    def __init__(self, endpoint: Any, forget: Callable[[str], object]) -> None:
        self._endpoint = endpoint
        self._forget = forget
        self._links: dict[str, DetectorLink] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, request: Request) -> bool:
        with self._lock:
            if self._closed:
                return False
            link = self._links.get(request.camera)
            if link is None:
                link = self._links[request.camera] = DetectorLink(request.camera, self._endpoint).start()
        return link.submit(request)

    def connect(self, client: str) -> Mailbox:
        with self._lock:
            link = self._links.get(client)
            if link is None:
                link = self._links[client] = DetectorLink(client, self._endpoint).start()
        return link.connect(client)

    def disconnect(self, client: str) -> None:
        with self._lock:
            link = self._links.pop(client, None)
        if link is not None:
            link.disconnect(client)
            link.close()
            with contextlib.suppress(Exception):
                self._forget(client)  # the detector drops the upload's mailbox too

    def close(self) -> None:
        with self._lock:
            self._closed = True
            links, self._links = list(self._links.values()), {}
        for link in links:
            link.close()
