"""What the MQTT output (issue 13) costs the pipeline, and how fast it delivers, against a real
Mosquitto on loopback (Debian's `mosquitto`, started here on a free port).

    python benchmarks/mqtt.py [--frames 3000] [--events 5000]

Measured in this process, with the output's real classes:
- the camera's writer thread: `MqttSink.write` per 1280x720 frame with three confirmed faces
  (the faces-in-view count and the best-shot crops; the worst case, a better shot on every
  frame, then the usual one, the same scores every frame), and `on_events` per event;
- `put` with the broker down (what a camera pays while it is away: nothing waits);
- delivery: one event at a time from `put` to a paho subscriber (latency), and a burst of
  `--events` events queued at once until the subscriber has the last (throughput).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from frames import REPO
from rich.console import Console
from rich.table import Table

from livefaces.detections import Detections
from livefaces.events import FaceAppeared
from livefaces.frames import Frame, FrameResult
from livefaces.outputs.mqtt import Message, MqttPublisher
from livefaces.outputs.mqtt_url import parse_mqtt_url
from livefaces.tracker import TrackedFaces

BOXES = [(200.0, 150.0, 330.0, 310.0), (640.0, 200.0, 720.0, 300.0), (1000.0, 400.0, 1060.0, 470.0)]


def result(index: int, improving: bool, image: np.ndarray) -> FrameResult:
    scores = np.full(3, 0.5 + (index * 1e-6 if improving else 0.0), np.float32)
    detections = Detections(np.array(BOXES, np.float32), scores, np.zeros((3, 5, 2), np.float32),
                            np.arange(3, dtype=np.int64))  # fmt: skip
    faces = TrackedFaces(detections, np.ones(3, bool), np.ones(3, bool))
    return FrameResult("door", Frame(index, index / 30, 0.0, image), faces, fresh=True)


def per_call(action, count: int) -> float:  # type: ignore[no-untyped-def]
    """Median microseconds of `action(i)` over `count` calls."""
    times = []
    for i in range(count):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def quiet(_line: str) -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.mqtt_broker import Broker, Subscriber, free_port, wait_until

    rows: list[tuple[str, str]] = []
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    event = FaceAppeared(
        camera="door", source_time=0.0, wall_time=0.0, track_id=0, box=BOXES[0], confidence=0.9
    )
    with tempfile.TemporaryDirectory() as folder:
        broker = Broker(Path(folder)).start()
        watcher = Subscriber(broker.port, "bench/#")
        sender = MqttPublisher(parse_mqtt_url(broker.url("bench")), args.events * 2, quiet, quiet).start()
        try:
            sink = sender.sink("door")
            for improving, label in ((True, "a better shot every frame"), (False, "same scores")):
                cost = per_call(lambda i, up=improving: sink.write(result(i, up, image), None), args.frames)
                rows.append((f"MqttSink.write, 720p, 3 faces, {label}", f"{cost:.1f} µs"))
            cost = per_call(lambda i: sink.on_events([event]), 1000)
            rows.append(("MqttSink.on_events, one event (JSON, queued)", f"{cost:.1f} µs"))
            wait_until(lambda: not sender._pending(), 60, "the queue to empty")

            latencies = []
            for i in range(300):
                seen, text = len(watcher.messages), f'{{"n": {i}}}'
                started = time.perf_counter()
                sender.put(Message("bench/events", text))
                watcher.wait_for(
                    lambda m, t=text: m.topic == "bench/events" and m.text == t, "it", after=seen
                )
                latencies.append(time.perf_counter() - started)
            latencies.sort()
            median, p95 = statistics.median(latencies) * 1e3, latencies[int(0.95 * len(latencies))] * 1e3
            rows.append(
                ("delivery latency, put to subscriber (median / p95)", f"{median:.2f} / {p95:.2f} ms")
            )

            first = len(watcher.on("bench/events"))
            started = time.perf_counter()
            for i in range(args.events):
                sender.put(Message("bench/events", f'{{"burst": {i}}}'))
            wait_until(lambda: len(watcher.on("bench/events")) - first >= args.events, 120, "the burst")
            seconds = time.perf_counter() - started
            rows.append(
                (
                    f"burst of {args.events} events, put to subscriber",
                    f"{args.events / seconds:,.0f} events/s",
                )
            )
        finally:
            sender.stop()
            watcher.close()
            broker.kill()

    away = MqttPublisher(parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}/bench"), 1000, quiet, quiet).start()
    try:
        cost = per_call(lambda i: away.put(Message("bench/events", f'{{"n": {i}}}')), 20000)
        rows.append(("put with the broker down (1000 kept, oldest dropped)", f"{cost:.1f} µs"))
    finally:
        away.stop()

    table = Table(title="MQTT output against Mosquitto on loopback")
    table.add_column("what")
    table.add_column("median", justify="right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
