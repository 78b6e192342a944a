"""Prometheus metrics of a session, labelled per camera (`--metrics HOST:PORT`).

Two sources, no double bookkeeping:

- What the session already counts (frames captured, shown, dropped; stream state, reconnects;
  faces in view; the shared detector's load) is read at scrape time from the latest
  `SessionStatus` by `SessionCollector`, the same plain value the panel reads: scraping never
  touches a runner's state and adds no lock of its own.
- Distributions need an observation where they happen: `MetricsSink`, the last output of each
  camera, observes capture-to-output latency for every frame written and counts events by kind;
  `CameraMetrics.replied` observes each detector answer's latency on the camera's runner thread.
  On a fleet (`--ray`) each camera worker observes into its own unserved registry and hands its
  families to the driver with its status (`SessionMetrics.observations`); the driver's registry
  serves them through `ForwardedObservations` instead of observing anything itself.

Labels are camera names, never sources: a name is the one given (letters, digits, `_.-`) or the
host of the URL (see `livefaces.options.derived_name`), so no credential reaches a label. The
registry is the session's own (not the process-wide default), served by prometheus_client's
HTTP server on 127.0.0.1 unless another host is asked for; `MetricsServer.stop` shuts it down.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from livefaces.events import Event, FaceAppeared, FaceLeft, StreamDown, StreamUp
from livefaces.frames import FrameResult
from livefaces.runtime import status as states
from livefaces.runtime.detector_service import DetectorReply
from livefaces.runtime.status import CameraStatus, SessionStatus

PREFIX = "livefaces"
STATES = (
    states.CONNECTING,
    states.ONLINE,
    states.RECONNECTING,
    states.ENDED,
    states.LOST,
    states.STOPPED,
    states.FAILED,
)
EVENT_KINDS = (FaceAppeared.kind, FaceLeft.kind, StreamDown.kind, StreamUp.kind)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) only listens on this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SessionCollector(Collector):
    """Counters and gauges read from the latest `SessionStatus` at each scrape."""

    def __init__(self, status: Callable[[], SessionStatus] | None = None) -> None:
        self._status = status

    def attach(self, status: Callable[[], SessionStatus]) -> None:
        """Read this session's status from now on (the server may start before the session)."""
        self._status = status

    def describe(self) -> Iterator[Metric]:
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        if self._status is not None:
            _fill(families, self._status())
        return iter(families)


CAMERA, CAMERA_STATE, NONE = ("camera",), ("camera", "state"), ()
# The series read from the status: kind, name (after the prefix), help, labels.
STATUS_SERIES = (
    ("counter", "frames_captured", "Frames read from the camera's source.", CAMERA),
    ("counter", "frames_shown", "Frames written to the camera's outputs.", CAMERA),
    ("counter", "frames_dropped", "Frames a live camera dropped to keep up.", CAMERA),
    ("counter", "frames_corrupt", "Corrupt frames skipped.", CAMERA),
    ("counter", "detections", "Detector answers absorbed (full scans and refinements).", CAMERA),
    ("gauge", "stream_up", "1 while the camera gives frames, else 0.", CAMERA),
    ("gauge", "camera_state", "1 for the camera's current state, 0 for the others.", CAMERA_STATE),
    ("counter", "reconnects", "Reconnections that succeeded.", CAMERA),
    ("counter", "stalls", "Times the stream stopped giving frames.", CAMERA),
    ("gauge", "faces", "Faces in view on the last frame shown.", CAMERA),
    ("gauge", "source_fps", "Frame rate the source announces (absent while unknown).", CAMERA),
    ("gauge", "queue_depth", "Frames waiting for the camera's runner.", CAMERA),
    ("counter", "detector_calls", "Calls of the shared detector (each answers a batch).", NONE),
    ("counter", "detector_requests", "Requests the shared detector answered.", NONE),
    ("counter", "detector_busy_seconds", "Seconds the shared detector spent computing.", NONE),
    ("counter", "detector_errors", "Requests answered with an error.", NONE),
    ("counter", "detector_replaced", "Live requests replaced by a newer one before being served.", NONE),
    ("gauge", "detector_batch_size", "Mean requests per detector call over the last seconds.", NONE),
    ("gauge", "detector_busy_ratio", "Share of the last seconds the detector spent computing.", NONE),
    ("gauge", "detector_pending", "Requests waiting for the detector.", NONE),
)
_FAMILY = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}


def _families() -> list[Metric]:
    return [
        _FAMILY[kind](f"{PREFIX}_{name}", text, labels=list(labels))
        for kind, name, text, labels in STATUS_SERIES
    ]


def _fill(families: list[Metric], status: SessionStatus) -> None:
    by_name = {family.name: family for family in families}

    def add(name: str, labels: list[str], value: float) -> None:
        by_name[f"{PREFIX}_{name}"].add_metric(labels, value)  # type: ignore[attr-defined]

    for camera in status.cameras:
        _fill_camera(add, camera)
    load = status.detector
    if load is not None:
        add("detector_calls", [], load.calls)
        add("detector_requests", [], load.served)
        add("detector_busy_seconds", [], load.busy_seconds)
        add("detector_errors", [], load.errors)
        add("detector_replaced", [], load.replaced)
        add("detector_batch_size", [], load.mean_batch)
        add("detector_busy_ratio", [], load.busy_percent / 100)
        add("detector_pending", [], load.pending)


def _fill_camera(add: Callable[[str, list[str], float], None], camera: CameraStatus) -> None:
    name, snap = [camera.name], camera.stats
    add("frames_captured", name, snap.captured)
    add("frames_shown", name, snap.displayed)
    add("frames_dropped", name, snap.dropped)
    add("frames_corrupt", name, snap.corrupt)
    add("detections", name, snap.detected)
    add("stream_up", name, 1.0 if camera.state == states.ONLINE else 0.0)
    for state in STATES:
        add("camera_state", [camera.name, state], 1.0 if camera.state == state else 0.0)
    add("reconnects", name, camera.reconnects)
    add("stalls", name, camera.stalls)
    add("faces", name, snap.faces)
    if camera.fps:
        add("source_fps", name, camera.fps)
    add("queue_depth", name, snap.queue_depth)


class ForwardedObservations(Collector):
    """The histograms and counters observed in other processes (a fleet's camera workers),
    served as one family per name: `attach` a callable giving each worker's latest families."""

    def __init__(self) -> None:
        self._source: Callable[[], list[tuple[Metric, ...]]] | None = None

    def attach(self, source: Callable[[], list[tuple[Metric, ...]]]) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for families in self._source() if self._source is not None else []:
            for family in families:
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(family.name, family.documentation, family.type)
                into.samples.extend(family.samples)
        return iter(merged.values())


class SessionMetrics:
    """The session's registry: the status collector plus the observed histograms and counters.

    observed_here=False (a fleet's driver): nothing is observed in this process; the camera
    workers' observations are served through `forwarded` instead."""

    def __init__(self, observed_here: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._server: MetricsServer | None = None
        self.collector = SessionCollector()
        self.registry.register(self.collector)
        self.forwarded = ForwardedObservations()
        if not observed_here:
            self.registry.register(self.forwarded)
        observed = self.registry if observed_here else None
        self.end_to_end = Histogram(
            f"{PREFIX}_end_to_end_latency_seconds",
            "From a frame's capture to its outputs written.",
            ["camera"],
            registry=observed,
            buckets=LATENCY_BUCKETS,
        )
        self.detection = Histogram(
            f"{PREFIX}_detection_latency_seconds",
            "From a detector request's submission to its answer (queue, batch wait and compute).",
            ["camera", "kind"],
            registry=observed,
            buckets=LATENCY_BUCKETS,
        )
        self.events = Counter(
            f"{PREFIX}_events", "Events handed to the camera's outputs, by kind.", ["camera", "kind"],
            registry=observed,
        )  # fmt: skip

    def observations(self) -> tuple[Metric, ...]:
        """The observed families as plain values (picklable), for a worker's driver to serve."""
        return (*self.end_to_end.collect(), *self.detection.collect(), *self.events.collect())

    def serve(self, host: str, port: int) -> Endpoint:
        """Serve the registry over HTTP at `host:port` (port 0: a free one); an OSError when the
        address is taken or unknown. Returns where it really listens."""
        if self._server is None:
            self._server = MetricsServer(self.registry, host, port)
        return self._server.start()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.stop()

    def camera(self, name: str) -> CameraMetrics:
        """The observers of one camera (its series appear at once, at zero)."""
        return CameraMetrics(self, name)


class CameraMetrics:
    """One camera's observations: `replied` on its runner thread, `sink` on its writer thread."""

    def __init__(self, metrics: SessionMetrics, camera: str) -> None:
        self._detection = {kind: metrics.detection.labels(camera, kind) for kind in ("scan", "refine")}
        self._end_to_end = metrics.end_to_end.labels(camera)
        self._events = {kind: metrics.events.labels(camera, kind) for kind in EVENT_KINDS}
        self._metrics, self._camera = metrics, camera

    def replied(self, reply: DetectorReply) -> None:
        """A detector answer absorbed: its latency from submission to answer."""
        kind = reply.kind
        histogram = self._detection.get(kind) or self._metrics.detection.labels(self._camera, kind)
        histogram.observe(reply.wait_seconds + reply.compute_seconds)

    def sink(self, clock: Callable[[], float] | None = None) -> MetricsSink:
        """The output that observes end-to-end latency and counts events (put it last)."""
        return MetricsSink(self, clock)

    def frame_written(self, latency: float) -> None:
        self._end_to_end.observe(max(latency, 0.0))

    def events(self, events: tuple[Event, ...]) -> None:
        for event in events:
            counter = self._events.get(event.kind) or self._metrics.events.labels(self._camera, event.kind)
            counter.inc()


class MetricsSink:
    """An output with no image: observes each result's capture-to-output latency and counts
    events. It must be the camera's last output, so the latency covers every other output."""

    render: str | None = None

    def __init__(self, camera: CameraMetrics, clock: Callable[[], float] | None = None) -> None:
        self._camera = camera
        self._clock = clock or time.monotonic

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self._camera.frame_written(self._clock() - result.frame.captured_at)

    def on_events(self, events: tuple[Event, ...]) -> None:
        self._camera.events(events)

    def close(self) -> None:
        """Nothing to finish: the registry outlives the camera."""

    def summary(self) -> str | None:
        return None


@dataclass(frozen=True)
class Endpoint:
    """Where the metrics are served."""

    host: str
    port: int

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"


class MetricsServer:
    """prometheus_client's HTTP server for one registry, on its own daemon thread.

    `start` binds (an OSError when the address is taken or unknown) and returns the endpoint it
    really listens on (port 0 gives a free port); `stop` shuts the server down and waits for it.
    Both are idempotent.
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._server: object | None = None
        self._thread: threading.Thread | None = None
        self.endpoint: Endpoint | None = None

    def start(self) -> Endpoint:
        with self._lock:
            if self.endpoint is None:
                server, thread = start_http_server(self._port, self._host, registry=self._registry)
                self._server, self._thread = server, thread
                self.endpoint = Endpoint(self._host, server.server_port)
            return self.endpoint

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
        if thread is not None:
            thread.join(5.0)
