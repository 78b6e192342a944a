"""One detector serving every camera: requests from all cameras batched into few model calls.

Cameras `submit` plain requests: a `ScanRequest` (the full cascade on an RGB image the camera
already downscaled, or a coarse scan: only the large faces, with the known ones measured too) or
a `RefineRequest` (O-Net alone on given boxes). `serve_once` collects what is pending and answers
it with as few detector calls as possible: every full scan in ONE `detect_batch` call (the
detector shares network calls between images of equal size), the coarse scans that look for the
same least face size in one more, every refinement in one `refine_batch` call when the detector
has one, else one `refine` per request. Each camera reads its replies from its own `Mailbox`.

Collection is bounded: a batch runs as soon as every connected camera has something pending, or
the batch is full, or the oldest pending request has waited `collect_seconds`; so a slow, quiet or
stuck camera delays the others by `collect_seconds` at most. It is fair: cameras take turns (round
robin), each gives at most `per_camera` requests to a batch, and for live requests the newest from
a camera replaces its older pending one of the same kind (the camera gets a `replaced` reply), so
a camera flooding requests cannot starve the others or build a backlog. A detector error becomes
an error reply to every request in the failed call, and serving goes on.

`DetectorService` owns no thread: `ThreadedDetectorHost` runs it on one (a Ray actor can host it
the same way). Times come from one injected monotonic clock, so tests need no sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from livefaces.cascade import Settings
from livefaces.detections import Detections

Clock = Callable[[], float]


class BatchDetector(Protocol):
    """What the service needs of a detector (`livefaces.MTCNN` fits; `refine_batch` is optional,
    and a detector with only `detect` is called once per image)."""

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]: ...

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections: ...


def _check_image(image: Any) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image_rgb must be a uint8 HxWx3 RGB array, got {dtype} with shape {shape}")


def _box_array(value: Any, name: str) -> np.ndarray:
    """`value` as float64 boxes of shape (N, 4) (an empty value as (0, 4)); ValueError naming `name`."""
    boxes = np.asarray(value, np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {boxes.shape}")
    return boxes


@dataclass(frozen=True, eq=False)
class ScanRequest:
    """A full scan of `image_rgb` for frame `seq` of `camera`. live: a newer live scan from the same
    camera replaces this one while it is still pending (False for files: every frame counts).

    A coarse scan sets `min_face_size` (only faces at least that large: the cheap coarse pyramid
    levels) and may give `known` boxes (N, 4) that O-Net measures in the same call, as a
    refinement would: a tracker's faces measured and new large faces found on one frame.
    """

    kind: ClassVar[str] = "scan"
    camera: str
    seq: int
    image_rgb: np.ndarray
    live: bool = True
    settings: Settings | None = None  # this camera's cascade settings; None: the detector's own
    min_face_size: int | None = None
    known: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_image(self.image_rgb)
        if self.known is not None:
            object.__setattr__(self, "known", _box_array(self.known, "known"))

    @property
    def coarse(self) -> dict[str, Any]:
        """The detector's keyword arguments for a coarse scan ({} for a full scan)."""
        extra: dict[str, Any] = {}
        if self.min_face_size is not None:
            extra["min_face_size"] = self.min_face_size
        if self.known is not None:
            extra["known"] = [self.known]
        return extra


@dataclass(frozen=True, eq=False)
class RefineRequest:
    """O-Net on `boxes` (N, 4) x1, y1, x2, y2 of frame `seq` of `camera`: given either the frame
    (`image_rgb`) or, cheaper to hand over, the 48x48 RGB `patches` (N, 48, 48, 3) the camera cut
    from its frame around `boxes` (then square boxes) with `boxes.cut_patches`."""

    kind: ClassVar[str] = "refine"
    camera: str
    seq: int
    image_rgb: np.ndarray | None
    boxes: np.ndarray
    live: bool = True
    settings: Settings | None = None
    patches: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.image_rgb is None) == (self.patches is None):
            raise ValueError("a refinement needs image_rgb or patches (exactly one of them)")
        if self.image_rgb is not None:
            _check_image(self.image_rgb)
        boxes = _box_array(self.boxes, "boxes")
        object.__setattr__(self, "boxes", boxes)
        if self.patches is not None and self.patches.shape != (len(boxes), 48, 48, 3):
            raise ValueError(f"patches must have shape ({len(boxes)}, 48, 48, 3), got {self.patches.shape}")


Request = ScanRequest | RefineRequest


@dataclass(frozen=True, eq=False)
class DetectorReply:
    """The answer to one request: `detections` in `image_rgb`'s pixels, or `error`, or neither when
    the request was `replaced` by a newer live one from the same camera before it was served.

    wait_seconds: from submission to the start of its detector call; compute_seconds: that call's
    duration; batch_size: requests answered by that call.
    """

    camera: str
    seq: int
    kind: str
    detections: Detections | None
    error: str | None = None
    replaced: bool = False
    wait_seconds: float = 0.0
    compute_seconds: float = 0.0
    batch_size: int = 0


@dataclass(frozen=True)
class ServiceClosed:
    """End marker: the service stopped (with the error that stopped it, if any); no more replies."""

    error: str | None = None


@dataclass(frozen=True)
class ServiceSettings:
    """collect_seconds: longest a pending request waits for other cameras' requests to join its
        batch (10 ms: a third of a frame at 30 fps, short next to a scan's 30-60 ms).
    max_batch: most requests in one batch, over all cameras.
    per_camera: most requests one camera gives to a batch.
    load_window_seconds: the load figures cover this much recent time.
    """

    collect_seconds: float = 0.01
    max_batch: int = 8
    per_camera: int = 1
    load_window_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.collect_seconds >= 0:
            raise ValueError(f"collect_seconds must be >= 0, got {self.collect_seconds}")
        for name in ("max_batch", "per_camera"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.load_window_seconds > 0:
            raise ValueError(f"load_window_seconds must be > 0, got {self.load_window_seconds}")


@dataclass(frozen=True)
class ServiceLoad:
    """The detector's load over the recent window, for the panel; counters since the start
    (`calls` and `busy_seconds`: detector calls made and seconds spent in them, for metrics)."""

    calls_per_second: float
    mean_batch: float
    ms_per_call: float
    busy_percent: float
    pending: int
    served: int
    errors: int
    replaced: int
    calls: int = 0
    busy_seconds: float = 0.0

    def describe(self) -> str:
        """One line for the panel header."""
        return (
            f"detector {self.calls_per_second:.1f} calls/s, {self.mean_batch:.1f} per call, "
            f"{self.ms_per_call:.0f} ms/call, busy {self.busy_percent:.0f}%"
        )


class LoadMeter:
    """Detector calls over the last `window` seconds: rate, batch size, duration, busy share."""

    def __init__(self, window: float, started: float) -> None:
        self._window = window
        self._started = started
        self._calls: deque[tuple[float, float, int]] = deque()  # start, seconds, batch size

    def record(self, start: float, seconds: float, size: int) -> None:
        self._calls.append((start, seconds, size))

    def read(self, now: float) -> tuple[float, float, float, float]:
        """(calls per second, mean batch, ms per call, busy percent) as of `now`."""
        since = now - self._window
        while self._calls and self._calls[0][0] + self._calls[0][1] < since:
            self._calls.popleft()
        span = min(self._window, now - self._started)
        if not self._calls or span <= 0:
            return 0.0, 0.0, 0.0, 0.0
        count = len(self._calls)
        busy = sum(min(s + d, now) - max(s, since) for s, d, _ in self._calls)
        return (
            count / span,
            sum(size for _, _, size in self._calls) / count,
            1000 * sum(d for _, d, _ in self._calls) / count,
            100 * busy / span,
        )


class Mailbox:
    """One camera's replies, read by its runner with a timeout; after the service closes, the
    replies still inside come first, then `ServiceClosed` on every read."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self._replies: deque[DetectorReply] = deque()
        self._changed = threading.Condition()
        self._closed: ServiceClosed | None = None

    def __len__(self) -> int:
        with self._changed:
            return len(self._replies)

    def put(self, reply: DetectorReply) -> None:
        """Deliver a reply (dropped once the mailbox is closed)."""
        with self._changed:
            if self._closed is None:
                self._replies.append(reply)
                self._changed.notify_all()

    def get(self, timeout: float) -> DetectorReply | ServiceClosed | None:
        """The oldest reply, waiting up to `timeout` seconds; `ServiceClosed` once closed and
        empty; None when the wait timed out."""
        with self._changed:
            self._changed.wait_for(self._ready, timeout)
            return self._replies.popleft() if self._replies else self._closed

    def close(self, marker: ServiceClosed) -> None:
        """No more replies; wakes every waiting reader."""
        with self._changed:
            if self._closed is None:
                self._closed = marker
            self._changed.notify_all()

    def _ready(self) -> bool:
        return bool(self._replies) or self._closed is not None


@dataclass(frozen=True)
class _Pending:
    request: Request
    submitted: float  # when this request arrived
    since: float  # when its camera's slot began waiting (kept when a live request is replaced)


class DetectorService:
    """The shared detector for all cameras: thread-safe `submit`, batched `serve_once`."""

    def __init__(
        self,
        detector: BatchDetector,
        settings: ServiceSettings | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.detector = detector
        self.settings = settings or ServiceSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queues: dict[str, deque[_Pending]] = {}  # in turn order: the next served first
        self._mailboxes: dict[str, Mailbox] = {}
        self._meter = LoadMeter(self.settings.load_window_seconds, clock())
        self._served = self._errors = self._replaced = self._calls = 0
        self._busy_seconds = 0.0
        self._closed: ServiceClosed | None = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def connect(self, camera: str) -> Mailbox:
        """The camera's mailbox (made on first use). Batches wait for connected cameras only."""
        with self._lock:
            return self._connect(camera)

    def disconnect(self, camera: str) -> None:
        """Forget a camera (e.g. its stream went down): its pending requests are dropped, its
        mailbox closed, and batches stop waiting for it. A later `connect` or `submit` makes a
        new mailbox."""
        with self._lock:
            self._queues.pop(camera, None)
            mailbox = self._mailboxes.pop(camera, None)
        if mailbox is not None:
            mailbox.close(ServiceClosed("disconnected"))

    def submit(self, request: Request) -> bool:
        """Queue a request (returns at once); False when the service is closed."""
        with self._lock:
            if self._closed is not None:
                return False
            mailbox = self._connect(request.camera)
            replaced = self._enqueue(request, self._clock())
            if replaced is not None:
                self._replaced += 1
                mailbox.put(_replaced_reply(replaced))
            self._work.notify_all()
            return True

    def seconds_until_batch(self) -> float | None:
        """0 when a batch is due now, None when nothing is pending, else how long until it is."""
        with self._lock:
            return self._due_in(self._clock())

    def serve_once(self, timeout: float = 0.0) -> list[DetectorReply]:
        """Wait up to `timeout` seconds for a batch to be due, run it, deliver and return its
        replies ([] when none was due in time or the service is closed). Waits are measured on
        the service's clock: with a fake clock that only a test moves, pass timeout 0."""
        batch = self._collect(timeout)
        if not batch:
            return []
        replies = self._run(batch)
        with self._lock:
            self._served += len(replies)
            self._errors += sum(reply.error is not None for reply in replies)
            mailboxes = [self._mailboxes.get(reply.camera) for reply in replies]
        for mailbox, reply in zip(mailboxes, replies):
            if mailbox is not None:
                mailbox.put(reply)
        return replies

    def close(self, error: str | None = None) -> None:
        """Stop serving: pending requests are dropped and every mailbox ends with `ServiceClosed`."""
        with self._lock:
            if self._closed is None:
                self._closed = ServiceClosed(error)
            marker = self._closed
            self._queues.clear()
            mailboxes = list(self._mailboxes.values())
            self._work.notify_all()
        for mailbox in mailboxes:
            mailbox.close(marker)

    def load(self) -> ServiceLoad:
        """The recent load and the counters."""
        with self._lock:
            rate, batch, ms, busy = self._meter.read(self._clock())
            pending = sum(len(queue) for queue in self._queues.values())
            counters = (self._served, self._errors, self._replaced, self._calls, self._busy_seconds)
            return ServiceLoad(rate, batch, ms, busy, pending, *counters)

    def _connect(self, camera: str) -> Mailbox:
        if camera not in self._mailboxes:
            self._mailboxes[camera] = Mailbox(camera)
            self._queues[camera] = deque()
            if self._closed is not None:
                self._mailboxes[camera].close(self._closed)
        return self._mailboxes[camera]

    def _enqueue(self, request: Request, now: float) -> Request | None:
        """Add `request` to its camera's queue; returns the live request it replaced, if any."""
        queue = self._queues[request.camera]
        if request.live:
            for k, pending in enumerate(queue):
                if pending.request.live and type(pending.request) is type(request):
                    queue[k] = _Pending(request, now, pending.since)
                    return pending.request
        queue.append(_Pending(request, now, now))
        return None

    def _due_in(self, now: float) -> float | None:
        waiting = [queue[0].since for queue in self._queues.values() if queue]
        if not waiting:
            return None
        every_camera = len(waiting) == len(self._queues)
        per_camera = self.settings.per_camera
        full = sum(min(len(queue), per_camera) for queue in self._queues.values()) >= self.settings.max_batch
        if every_camera or full:
            return 0.0
        return max(0.0, min(waiting) + self.settings.collect_seconds - now)

    def _collect(self, timeout: float) -> list[_Pending]:
        deadline = self._clock() + timeout
        with self._lock:
            while self._closed is None:
                delay = self._due_in(self._clock())
                if delay == 0:
                    return self._take_batch()
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return []
                self._work.wait(remaining if delay is None else min(delay, remaining))
            return []

    def _take_batch(self) -> list[_Pending]:
        """Round robin: up to `per_camera` from each camera in turn order, at most `max_batch`;
        the cameras served go to the back of the turn order."""
        batch: list[_Pending] = []
        served: list[str] = []
        for camera, queue in self._queues.items():
            take = min(len(queue), self.settings.per_camera, self.settings.max_batch - len(batch))
            if take > 0:
                batch += [queue.popleft() for _ in range(take)]
                served.append(camera)
        for camera in served:
            self._queues[camera] = self._queues.pop(camera)
        return batch

    def _run(self, batch: list[_Pending]) -> list[DetectorReply]:
        """Every scan in one call; every refinement in one call, or one call each when the
        detector cannot batch them (then an error stays with its own request). Cameras with
        their own cascade settings get calls of their own."""
        replies: list[DetectorReply] = []
        for requests in _by_settings([p for p in batch if isinstance(p.request, ScanRequest)]):
            replies += self._call(requests, self._scan)
        refines = [p for p in batch if isinstance(p.request, RefineRequest)]
        batchable = hasattr(self.detector, "refine_batch")
        for requests in _by_settings(refines):
            for group in [requests] if batchable else [[p] for p in requests]:
                replies += self._call(group, self._refine)
        return replies

    def _scan(self, requests: list[Any]) -> list[Detections]:
        images = [request.image_rgb for request in requests]
        settings = requests[0].settings
        coarse = requests[0].min_face_size
        if coarse is not None or any(request.known is not None for request in requests):
            known = [request.known for request in requests]
            return self.detector.detect_batch(images, settings=settings, min_face_size=coarse, known=known)
        if settings is not None:
            return self.detector.detect_batch(images, settings=settings)
        if hasattr(self.detector, "detect_batch"):
            return self.detector.detect_batch(images)
        return [self.detector.detect(image) for image in images]  # a detector without batches

    def _refine(self, requests: list[Any]) -> list[Detections]:
        boxes = [request.boxes for request in requests]
        extra = {} if requests[0].settings is None else {"settings": requests[0].settings}
        if all(request.patches is not None for request in requests):
            return self.detector.refine_patches([r.patches for r in requests], boxes, **extra)
        if any(request.patches is not None for request in requests):
            return [self._refine([request])[0] for request in requests]
        images = [request.image_rgb for request in requests]
        refine_batch = getattr(self.detector, "refine_batch", None)
        if refine_batch is not None:
            return refine_batch(images, boxes, **extra)
        return [self.detector.refine(image, box, **extra) for image, box in zip(images, boxes)]

    def _call(
        self, batch: list[_Pending], function: Callable[[list[Any]], list[Detections]]
    ) -> list[DetectorReply]:
        """One detector call for `batch`; an exception becomes an error reply to each request."""
        requests = [pending.request for pending in batch]
        start = self._clock()
        results: list[Detections | None]
        try:
            results = list(function(requests))
            if len(results) != len(requests):
                raise RuntimeError(f"the detector gave {len(results)} results for {len(requests)} images")
            error = None
        except Exception as exc:  # the detector's failure is each waiting camera's to see
            results, error = [None] * len(requests), f"{type(exc).__name__}: {exc}"
        seconds = self._clock() - start
        with self._lock:
            self._meter.record(start, seconds, len(batch))
            self._calls += 1
            self._busy_seconds += seconds
        return [
            DetectorReply(
                p.request.camera,
                p.request.seq,
                p.request.kind,
                found,
                error,
                wait_seconds=start - p.submitted,
                compute_seconds=seconds,
                batch_size=len(batch),
            )
            for p, found in zip(batch, results)
        ]


def answer_now(detector: Any, request: Request, clock: Clock = time.perf_counter) -> DetectorReply:
    """Serve one request at once on the calling thread: the service's calls without the service
    (the library's synchronous `TrackingDetector`). Detector errors propagate."""
    extra = {} if request.settings is None else {"settings": request.settings}
    start = clock()
    if isinstance(request, ScanRequest) and not extra and not request.coarse:
        found = detector.detect(request.image_rgb)
    elif isinstance(request, ScanRequest):
        found = detector.detect_batch([request.image_rgb], **extra, **request.coarse)[0]
    elif request.patches is not None:
        found = detector.refine_patches([request.patches], [request.boxes], **extra)[0]
    else:
        found = detector.refine(request.image_rgb, request.boxes, **extra)
    seconds = clock() - start
    return DetectorReply(
        request.camera, request.seq, request.kind, found, compute_seconds=seconds, batch_size=1
    )


def _by_settings(batch: list[_Pending]) -> list[list[_Pending]]:
    """The batch split by cascade settings and, for scans, by the least face size looked for
    (requests of one group can share detector calls)."""
    groups: dict[tuple[Settings | None, int | None], list[_Pending]] = {}
    for pending in batch:
        key = (pending.request.settings, getattr(pending.request, "min_face_size", None))
        groups.setdefault(key, []).append(pending)
    return list(groups.values())


def _replaced_reply(request: Request) -> DetectorReply:
    return DetectorReply(request.camera, request.seq, request.kind, None, replaced=True)


class ThreadedDetectorHost:
    """Runs a `DetectorService` on one thread until `stop`. Every wait has a timeout; on the way
    out (stop, or an unexpected error, which is kept in `error`) the service is closed, so every
    camera waiting on its mailbox wakes with `ServiceClosed`."""

    def __init__(self, service: DetectorService, poll_seconds: float = 0.05, name: str = "detector") -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> ThreadedDetectorHost:
        """Start serving (idempotent)."""
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving and close the service (idempotent); True when the thread has ended."""
        self._stop.set()
        self.service.close()
        with self._lock:
            if self._started:
                self._thread.join(timeout)
            return not self._thread.is_alive()

    def __enter__(self) -> ThreadedDetectorHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        error = None
        try:
            while not self._stop.is_set() and not self.service.closed:
                self.service.serve_once(self.poll_seconds)
        except Exception as exc:  # kept for the owner to re-raise; the cameras see it in the marker
            self.error, error = exc, f"{type(exc).__name__}: {exc}"
        finally:
            self.service.close(error)
