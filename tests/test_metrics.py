"""Prometheus metrics: scraped over real HTTP from a real session, parsed with prometheus_client's
own parser, and checked against the counts the run reports; no credential in any label or value."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from livefaces.capture import CaptureSettings, open_source
from livefaces.events import Event
from livefaces.frames import FrameResult
from livefaces.observe.metrics import SessionCollector, SessionMetrics, is_loopback
from livefaces.options import ConfigError, derived_name, parse_command_line
from livefaces.runtime.camera_runner import CameraRunner, RunnerSettings
from livefaces.runtime.detector_service import ServiceLoad
from livefaces.runtime.status import CameraStatus, SessionStatus
from livefaces.runtime.threaded import CameraLimits, CameraSetup, Session
from livefaces.sinks import JsonLinesSink
from livefaces.stats import StatsSnapshot
from tests.test_cli_process import environment, free_port
from tests.test_rtsp import gst_python, start_rtsp_server  # noqa: F401 (fixtures)

TIMEOUT = 120
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[str, Samples]:
    """GET /metrics with a real HTTP client; the text and every sample by (name, labels)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("localhost:0", ("localhost", 0)),
        (":9108", ("127.0.0.1", 9108)),
    ],
)
def test_metrics_address_on_the_command_line(text: str, expected: tuple[str, int]) -> None:
    assert parse_command_line(["--metrics", text]).metrics == expected


@pytest.mark.parametrize("text", ["x", "99999", "host:", "a:b", "", "admin:secret@host:9108", "[::1:9108"])
def test_bad_metrics_addresses_are_one_line_without_secrets(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_command_line(["--metrics", text])
    message = str(caught.value)
    assert message.startswith("argument --metrics: must be PORT or HOST:PORT") and "\n" not in message
    assert "secret" not in message


def test_metrics_address_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cameras.toml"
    config.write_text('metrics = 9108\nlog_file = "logs/livefaces.log"\n[[cameras]]\nurl = "demo"\n')
    parsed = parse_command_line(["--config", str(config)])
    assert parsed.metrics == ("127.0.0.1", 9108)
    assert parsed.log_file == str(tmp_path / "logs" / "livefaces.log")
    config.write_text('metrics = "0.0.0.0:9108"\n')
    assert parse_command_line(["--config", str(config)]).metrics == ("0.0.0.0", 9108)
    config.write_text("metrics = true\n")
    with pytest.raises(ConfigError, match=r"cameras.toml: metrics: must be PORT or HOST:PORT"):
        parse_command_line(["--config", str(config)])


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("192.0.2.7", False), ("cam.example", False)],
)  # fmt: skip
def test_which_hosts_stay_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def snapshot(**counts: int) -> StatsSnapshot:
    values = {"captured": 0, "detected": 0, "displayed": 0, "dropped": 0, "faces": 0, "corrupt": 0}
    values.update(counts)
    return StatsSnapshot(
        elapsed=12.0,
        capture_fps=30.0,
        detect_fps=10.0,
        display_fps=30.0,
        detect_ms=20.0,
        draw_ms=1.0,
        latency_ms=40.0,
        queue_depth=2,
        detect_every="auto",
        **values,
    )


def test_the_collector_reads_the_status_and_no_label_holds_a_source() -> None:
    url = "rtsp://admin:secret@cam1:554/stream?token=secret"
    front = CameraStatus(
        name=derived_name(url),
        source=url,  # the worst case: even a source that was not masked never reaches a label
        kind="stream",
        live=True,
        state="reconnecting",
        size=(1280, 720),
        fps=25.0,
        frame_count=None,
        stats=snapshot(captured=500, detected=120, displayed=480, dropped=20, faces=3, corrupt=1),
        error="rtsp://admin:secret@cam1:554/stream: Connection refused",
        reconnects=4,
        stalls=2,
        attempt=5,
        next_try_in=3.0,
    )
    desk = CameraStatus("desk", "demo", "demo", True, "online", (640, 480), None, None, snapshot(captured=7))
    load = ServiceLoad(12.5, 2.5, 31.0, 77.0, 1, 300, 2, 9, calls=120, busy_seconds=3.75)
    status = SessionStatus((front, desk), "/CPU:0", load)
    metrics = SessionMetrics()
    metrics.collector.attach(lambda: status)
    text = generate_latest(metrics.registry).decode()
    assert "secret" not in text and "rtsp" not in text and "admin" not in text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert {dict(labels).get("camera") for _, labels in samples} == {"cam1", "desk", None}
    expected = {
        "livefaces_frames_captured_total": 500,
        "livefaces_frames_shown_total": 480,
        "livefaces_frames_dropped_total": 20,
        "livefaces_frames_corrupt_total": 1,
        "livefaces_detections_total": 120,
        "livefaces_stream_up": 0,
        "livefaces_reconnects_total": 4,
        "livefaces_stalls_total": 2,
        "livefaces_faces": 3,
        "livefaces_source_fps": 25.0,
        "livefaces_queue_depth": 2,
    }
    for name, number in expected.items():
        assert value(samples, name, camera="cam1") == number, name
    assert value(samples, "livefaces_camera_state", camera="cam1", state="reconnecting") == 1
    assert value(samples, "livefaces_camera_state", camera="cam1", state="online") == 0
    assert value(samples, "livefaces_stream_up", camera="desk") == 1
    assert ("livefaces_source_fps", (("camera", "desk"),)) not in samples  # unknown: absent, not 0
    detector = {
        "livefaces_detector_calls_total": 120,
        "livefaces_detector_requests_total": 300,
        "livefaces_detector_busy_seconds_total": 3.75,
        "livefaces_detector_errors_total": 2,
        "livefaces_detector_replaced_total": 9,
        "livefaces_detector_batch_size": 2.5,
        "livefaces_detector_busy_ratio": 0.77,
        "livefaces_detector_pending": 1,
    }
    for name, number in detector.items():
        assert value(samples, name) == pytest.approx(number), name


def test_a_collector_without_a_session_yet_serves_only_its_help() -> None:
    families = list(SessionCollector().collect())
    assert families and all(not family.samples for family in families)


class Gate:
    """An output that holds the writer at frame `at` until the test has scraped."""

    render = None

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached, self.resume = threading.Event(), threading.Event()

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if result.frame.index == self.at:
            self.reached.set()
            assert self.resume.wait(TIMEOUT)

    def close(self) -> None:
        self.reached.set()  # a run that ends early never leaves the test waiting

    def summary(self) -> None:
        return None


class EventLog:
    """An output that keeps every event it is handed."""

    render = None

    def __init__(self) -> None:
        self.events: list[Event] = []

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        pass

    def on_events(self, events: tuple[Event, ...]) -> None:
        self.events.extend(events)

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None


def test_a_real_session_scraped_over_http_matches_what_it_reports(detector: object, tmp_path: Path) -> None:
    frames, gate_at = 40, 10
    source = open_source("demo", CaptureSettings(live=False, demo_size=(320, 240)))
    metrics = SessionMetrics()
    observer = metrics.camera("demo")
    gate, events, log = Gate(gate_at), EventLog(), tmp_path / "faces.jsonl"
    runner = CameraRunner("demo", 30.0, RunnerSettings(tracking=True, live=False))
    sinks = [gate, JsonLinesSink(str(log)), events, observer.sink()]
    setup = CameraSetup(source, runner, sinks, CameraLimits(max_frames=frames), on_reply=observer.replied)
    session = Session([setup], detector, "/CPU:0")
    metrics.collector.attach(session.status)
    endpoint = metrics.serve("127.0.0.1", 0)
    assert endpoint.port > 0 and endpoint.url() == f"http://127.0.0.1:{endpoint.port}/metrics"
    outcome: list = []
    runner_thread = threading.Thread(target=lambda: outcome.append(session.run()))
    runner_thread.start()
    try:
        assert gate.reached.wait(TIMEOUT)
        _, running = scrape(endpoint.url())  # while the writer holds frame 10
    finally:
        gate.resume.set()
        runner_thread.join(TIMEOUT)
    assert value(running, "livefaces_frames_shown_total", camera="demo") == gate_at
    assert value(running, "livefaces_frames_captured_total", camera="demo") >= gate_at + 1
    assert value(running, "livefaces_stream_up", camera="demo") == 1

    _, final = scrape(endpoint.url())  # the session ended; the server is still ours to stop
    metrics.stop()
    (summary,) = outcome[0].cameras
    lines = log.read_text().splitlines()
    assert summary.frames == summary.captured == len(lines) == frames
    assert value(final, "livefaces_frames_captured_total", camera="demo") == summary.captured
    assert value(final, "livefaces_frames_shown_total", camera="demo") == summary.frames
    assert value(final, "livefaces_frames_dropped_total", camera="demo") == summary.dropped == 0
    assert value(final, "livefaces_detections_total", camera="demo") == summary.detections > 0
    assert value(final, "livefaces_end_to_end_latency_seconds_count", camera="demo") == frames
    latency = value(final, "livefaces_end_to_end_latency_seconds_sum", camera="demo")
    assert latency > 0
    answered = sum(
        value(final, "livefaces_detection_latency_seconds_count", camera="demo", kind=kind)
        for kind in ("scan", "refine")
    )
    assert answered == summary.detections
    assert value(final, "livefaces_detection_latency_seconds_count", camera="demo", kind="scan") >= 1
    for kind in ("face_appeared", "face_left", "stream_down", "stream_up"):
        counted = sum(event.kind == kind for event in events.events)
        assert value(final, "livefaces_events_total", camera="demo", kind=kind) == counted, kind
    assert any(event.kind == "face_appeared" for event in events.events)
    faces_last = len(json.loads(lines[-1])["faces"])
    assert value(final, "livefaces_faces", camera="demo") == faces_last
    assert value(final, "livefaces_camera_state", camera="demo", state="ended") == 1
    assert value(final, "livefaces_detector_requests_total") >= summary.detections
    assert (
        1
        <= value(final, "livefaces_detector_calls_total")
        <= value(final, "livefaces_detector_requests_total")
    )
    assert value(final, "livefaces_detector_busy_seconds_total") > 0
    with pytest.raises(urllib.error.URLError):
        scrape(endpoint.url())  # stopped: nothing listens any more
    metrics.stop()  # idempotent


def test_an_address_in_use_is_an_os_error_and_the_server_stops() -> None:
    first, second = SessionMetrics(), SessionMetrics()
    endpoint = first.serve("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            second.serve("127.0.0.1", endpoint.port)
        text, _ = scrape(endpoint.url())
        assert "livefaces_frames_captured_total" in text  # described, no camera yet
    finally:
        first.stop()
    with pytest.raises(urllib.error.URLError):
        scrape(endpoint.url())


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "livefaces", *args]
    return subprocess.run(command, capture_output=True, env=environment(), timeout=TIMEOUT)


@pytest.mark.parametrize("address", ["nine", "127.0.0.1:70000", "admin:secret@127.0.0.1:9108"])
def test_a_bad_metrics_value_is_one_line_and_exit_2(address: str) -> None:
    result = run_cli("--source", "demo", "--no-display", "--metrics", address)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert result.stdout == b""
    assert err.count("\n") == 1 and err.startswith("livefaces: error: argument --metrics: must be"), err
    assert "secret" not in err


def test_a_metrics_port_in_use_is_one_line_and_exit_2() -> None:
    taken = SessionMetrics()
    endpoint = taken.serve("127.0.0.1", 0)
    try:
        result = run_cli("--source", "demo", "--no-display", "--metrics", str(endpoint.port))
    finally:
        taken.stop()
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"livefaces: error: --metrics 127.0.0.1:{endpoint.port}: cannot serve metrics there"
    )


def test_the_cli_serves_metrics_of_a_live_stream_without_its_password(start_rtsp_server) -> None:  # noqa: F811
    url, _ = start_rtsp_server("--size", "320x240", "--fps", "15")
    secret_url = url.replace("rtsp://", "rtsp://admin:secret@")
    port = free_port()
    command = [sys.executable, "-m", "livefaces", "--source", secret_url, "--no-display", "--json", "-"]
    process = subprocess.Popen(
        [*command, "--metrics", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        shown = [json.loads(process.stdout.readline()) for _ in range(20)]
        text, samples = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
    rest = process.stdout.read().splitlines()
    err = process.stderr.read().decode()
    assert process.wait(TIMEOUT) == 0, err
    assert "secret" not in text and "admin" not in text and "secret" not in err
    assert all(record["camera"] == "127.0.0.1" for record in shown)
    captured = value(samples, "livefaces_frames_captured_total", camera="127.0.0.1")
    scraped_shown = value(samples, "livefaces_frames_shown_total", camera="127.0.0.1")
    assert 19 <= scraped_shown <= captured
    assert value(samples, "livefaces_stream_up", camera="127.0.0.1") == 1
    assert value(samples, "livefaces_source_fps", camera="127.0.0.1") == pytest.approx(15, rel=0.1)
    assert value(samples, "livefaces_end_to_end_latency_seconds_count", camera="127.0.0.1") >= 19
    total = len(shown) + len(rest)
    assert f"livefaces: stopped by SIGTERM after {total} frames" in err, err
    assert f"INFO livefaces: metrics at http://127.0.0.1:{port}/metrics" in err
    with pytest.raises(urllib.error.URLError):
        scrape(f"http://127.0.0.1:{port}/metrics")  # the server ended with the process
