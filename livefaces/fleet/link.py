"""A camera's link to a detector in another process: `DetectorService`'s camera-side interface.

`CameraWorker` talks to its detector through `connect`, `submit` and `disconnect`. `DetectorLink`
offers exactly those, so the same worker (and its `CameraRunner`: one policy) runs on a Ray camera
actor while the detector service runs on a detector actor. One pump thread owns the link's
traffic: it sends what the camera submitted and brings back the replies in one `exchange` call to
the endpoint (a Ray actor handle's method in the fleet; any object in tests), waiting at most
`wait` seconds there for the first reply.

Nothing a camera waits for can hang. An exchange that fails (the detector actor died, a timeout),
a detector that answers with a new `incarnation` (it was restarted: what it held is gone), and a
request unanswered for `reply_timeout` seconds: each such request gets a `replaced` reply at once,
which the runner treats as "no news" (the tracks go on predicted), and is counted in `dropped`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from livefaces.runtime.detector_service import DetectorReply, Mailbox, Request, ServiceClosed

Clock = Callable[[], float]
RequestKey = tuple[str, int, str]  # camera, frame index, kind


class DetectorEndpoint(Protocol):
    """Where the requests go: the detector side of `exchange` (see `DetectorWorker`)."""

    def exchange(self, camera: str, requests: list[Request], wait: float) -> tuple[str, list[DetectorReply]]:
        """Queue `requests`, then return (the detector's incarnation id, the camera's replies
        ready within `wait` seconds). Raises when the detector cannot be reached."""
        ...


@dataclass(frozen=True)
class LinkStats:
    """What crossed the link: requests sent and their image bytes, replies back, requests
    dropped (a failed exchange, a restarted detector, a timeout), failed exchanges, the
    detector restarts seen, and the mean exchange round trip in milliseconds."""

    sent: int = 0
    sent_bytes: int = 0
    replies: int = 0
    dropped: int = 0
    failures: int = 0
    restarts: int = 0
    round_trip_ms: float = 0.0


def request_bytes(request: Request) -> int:
    """The image bytes a request carries (its frame, downscaled image or patches)."""
    arrays = (getattr(request, name, None) for name in ("image_rgb", "patches", "boxes", "known"))
    return sum(array.nbytes for array in arrays if isinstance(array, np.ndarray))


class DetectorLink:
    """One camera's side of a remote detector service; `start` its pump, `close` at the end."""

    def __init__(
        self,
        camera: str,
        endpoint: DetectorEndpoint | Callable[[str, list[Request], float], tuple[str, list[DetectorReply]]],
        wait: float = 0.05,
        reply_timeout: float = 10.0,
        retry_seconds: float = 0.2,
        clock: Clock = time.monotonic,
    ) -> None:
        self.camera = camera
        self._exchange = endpoint if callable(endpoint) else endpoint.exchange
        self.wait = wait
        self.reply_timeout = reply_timeout
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._outbox: deque[Request] = deque()
        self._outstanding: dict[RequestKey, float] = {}  # sent, unanswered: when it was submitted
        self._mailboxes: dict[str, Mailbox] = {}
        self._incarnation: str | None = None
        self._stats = LinkStats()
        self._exchanges = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="detector-link", daemon=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> DetectorLink:
        self._thread.start()
        return self

    def connect(self, camera: str) -> Mailbox:
        """The camera's mailbox, where its replies arrive (made on first use)."""
        with self._lock:
            return self._mailbox(camera)

    def submit(self, request: Request) -> bool:
        """Queue a request for the pump (returns at once); False once the link is closed."""
        if request.camera != self.camera:
            raise ValueError(f"this link carries camera {self.camera}'s requests, not {request.camera}'s")
        with self._lock:
            if self._closed:
                return False
            self._mailbox(request.camera)
            self._outbox.append(request)
            self._outstanding[_key(request)] = self._clock()
            self._work.notify_all()
            return True

    def disconnect(self, camera: str) -> None:
        """Forget a camera: its outstanding requests are forgotten, its mailbox closed."""
        with self._lock:
            self._outbox = deque(r for r in self._outbox if r.camera != camera)
            for key in [key for key in self._outstanding if key[0] == camera]:
                del self._outstanding[key]
            mailbox = self._mailboxes.pop(camera, None)
        if mailbox is not None:
            mailbox.close(ServiceClosed("disconnected"))

    def stats(self) -> LinkStats:
        with self._lock:
            return self._stats

    def close(self, timeout: float = 5.0) -> None:
        """Stop the pump; every mailbox ends with `ServiceClosed`."""
        with self._lock:
            self._closed = True
            self._work.notify_all()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            mailboxes = list(self._mailboxes.values())
        for mailbox in mailboxes:
            mailbox.close(ServiceClosed())

    def pump_once(self, poll: float = 0.1) -> None:
        """One round: send what is queued (waiting up to `poll` seconds for something to do),
        deliver the replies, drop what cannot be answered. The pump thread loops on it; tests
        call it directly."""
        with self._lock:
            if not self._outbox and not self._outstanding and not self._closed:
                self._work.wait(poll)
            requests = list(self._outbox)
            self._outbox.clear()
            if not requests and not self._outstanding:
                return
            before = set(self._outstanding) - {_key(request) for request in requests}
        started = self._clock()
        try:
            incarnation, replies = self._exchange(self.camera, requests, self.wait)
        except Exception:  # the detector is gone or slow: what it held will not come back
            with self._lock:
                self._stats = _add(self._stats, failures=1)
            self._drop(set(self._outstanding_keys()))
            self._stop.wait(self.retry_seconds)
            return
        seconds = self._clock() - started
        sent_bytes = sum(request_bytes(request) for request in requests)
        with self._lock:
            self._exchanges += 1
            mean = self._stats.round_trip_ms + (1000 * seconds - self._stats.round_trip_ms) / self._exchanges
            restarted = self._incarnation is not None and incarnation != self._incarnation
            self._incarnation = incarnation
            self._stats = _add(
                self._stats,
                sent=len(requests),
                sent_bytes=sent_bytes,
                replies=len(replies),
                restarts=int(restarted),
                round_trip_ms=mean - self._stats.round_trip_ms,
            )
        if restarted:
            self._drop(before)
        self._deliver(replies)
        now = self._clock()
        with self._lock:
            late = {key for key, since in self._outstanding.items() if now - since > self.reply_timeout}
        self._drop(late)

    def _pump(self) -> None:
        while not self._stop.is_set():
            self.pump_once()

    def _outstanding_keys(self) -> list[RequestKey]:
        with self._lock:
            return list(self._outstanding)

    def _deliver(self, replies: list[DetectorReply]) -> None:
        for reply in replies:
            with self._lock:
                expected = self._outstanding.pop((reply.camera, reply.seq, reply.kind), None) is not None
                mailbox = self._mailboxes.get(reply.camera)
            if expected and mailbox is not None:
                mailbox.put(reply)

    def _drop(self, keys: set[RequestKey]) -> None:
        """Answer these outstanding requests with `replaced` replies (the camera goes on)."""
        for camera, seq, kind in sorted(keys):
            with self._lock:
                if self._outstanding.pop((camera, seq, kind), None) is None:
                    continue
                self._stats = _add(self._stats, dropped=1)
                mailbox = self._mailboxes.get(camera)
            if mailbox is not None:
                mailbox.put(DetectorReply(camera, seq, kind, None, replaced=True))

    def _mailbox(self, camera: str) -> Mailbox:
        if camera not in self._mailboxes:
            self._mailboxes[camera] = Mailbox(camera)
        return self._mailboxes[camera]


def _key(request: Request) -> RequestKey:
    return request.camera, request.seq, request.kind


def _add(stats: LinkStats, **more: float) -> LinkStats:
    values = {name: getattr(stats, name) + value for name, value in more.items()}
    return LinkStats(**{**stats.__dict__, **values})
