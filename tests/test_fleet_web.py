"""The web view of a fleet: `livefaces --ray local --http` as a user runs it, in a subprocess
(a real local Ray cluster; the driver serves the page, each camera worker keeps its pictures and
events), asked by a real HTTP client and loaded in a real headless Chromium: the cameras' states,
their latest pictures and MJPEG streams, their events with snapshots, and `POST /api/detect`
answered by the detector worker. Every wait is on an answer, with a deadline."""

from __future__ import annotations

import json
from collections.abc import Iterator

import cv2
import pytest

pytest.importorskip("ray", reason='Ray is not installed (pip install "livefaces[fleet]")')

from livefaces.compat import OutputFormat, format_faces
from tests.mqtt_broker import wait_until
from tests.test_web_app import (
    ASTRONAUT,
    App,
    browser_on_live_tiles,
    camera_state,
    decode,
    mjpeg_frames,
    start_app,
    stop_app,
)


@pytest.fixture(scope="module")
def fleet_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """Two demo cameras on camera workers and one detector worker, served on --http."""
    folder = tmp_path_factory.mktemp("fleet-web")
    args = ["--source", "demo", "--source", "side=demo", "--live", "--duration", "400", "--ray", "local"]
    running = start_app(folder, *args)
    wait_until(lambda: camera_state(running, "demo") == camera_state(running, "side") == "online",
               120, "both cameras online")  # fmt: skip
    yield running
    stop_app(running)
    assert running.process.returncode == 0, running.said()
    assert "Traceback" not in running.said()


def test_the_fleet_serves_each_cameras_latest_picture_and_stream(fleet_app: App) -> None:
    status, body = fleet_app.get_json("/api/cameras")
    assert status == 200
    cameras = body["cameras"]  # type: ignore[index]
    assert [c["name"] for c in cameras] == ["demo", "side"] and {c["state"] for c in cameras} == {"online"}
    assert json.loads(json.dumps(body))["device"].startswith("ray: ")  # type: ignore[index]
    status, headers, picture = fleet_app.request("GET", "/api/cameras/side/latest.jpg?width=320")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert decode(picture).shape[1] == 320
    frames = mjpeg_frames(fleet_app, "/api/cameras/demo/stream.mjpg", 3)
    assert len(frames) == 3 and all(frame.shape == (480, 640, 3) for frame in frames)
    assert fleet_app.request("GET", "/api/cameras/nope/latest.jpg")[0] == 404


def test_the_fleet_lists_every_cameras_events_with_their_snapshots(fleet_app: App) -> None:
    def appeared(camera: str) -> list[dict]:
        listed = fleet_app.get_json(f"/api/events?camera={camera}&limit=50")[1]["events"]  # type: ignore[index]
        return [e for e in listed if e["event"] == "face_appeared"]

    for camera in ("demo", "side"):
        wait_until(lambda: bool(appeared(camera)), 60, f"a face_appeared event of {camera}")  # noqa: B023
        event = appeared(camera)[0]
        status, headers, picture = fleet_app.request("GET", event["snapshot"])
        assert status == 200 and headers["content-type"] == "image/jpeg" and decode(picture).size > 0
    both = fleet_app.get_json("/api/events?limit=1000")[1]["events"]  # type: ignore[index]
    assert {e["camera"] for e in both} == {"demo", "side"}
    times = [e["wall_time"] for e in both]
    assert times == sorted(times, reverse=True)  # newest first, over the cameras
    assert fleet_app.request("GET", "/api/snapshots/0123abcd.jpg")[0] == 404


def test_detect_on_the_fleet_is_answered_by_the_detector_worker(fleet_app: App, detector: object) -> None:
    photo = ASTRONAUT.read_bytes()
    status, _, body = fleet_app.request("POST", "/api/detect", photo, {"Content-Type": "image/jpeg"})
    assert status == 200, body
    rgb = cv2.cvtColor(decode(photo), cv2.COLOR_BGR2RGB)
    expected = format_faces([detector.detect(rgb)], [rgb.shape[:2]], OutputFormat(), batch=False)  # type: ignore[attr-defined]
    assert [f["box"] for f in json.loads(body)] == [f["box"] for f in expected]


def test_the_fleet_page_shows_live_tiles_in_a_real_browser(fleet_app: App) -> None:
    driver = browser_on_live_tiles(fleet_app.port)  # type: ignore[attr-defined]
    driver.quit()  # type: ignore[attr-defined]


def test_the_fleet_metrics_carry_what_each_camera_worker_observed(fleet_app: App) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def samples() -> dict[tuple[str, tuple], float]:
        status, _, text = fleet_app.request("GET", "/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode())
            for sample in family.samples
        }

    def observed(camera: str) -> bool:
        found, of = samples(), ("camera", camera)
        return (
            found.get(("livefaces_end_to_end_latency_seconds_count", (of,)), 0) > 0
            and found.get(("livefaces_detection_latency_seconds_count", (of, ("kind", "scan"))), 0) > 0
            and found.get(("livefaces_events_total", (of, ("kind", "face_appeared"))), 0) > 0
        )

    for camera in ("demo", "side"):
        wait_until(lambda: observed(camera), 60, f"{camera}'s latencies and events in /metrics")  # noqa: B023
    found = samples()
    assert found[("livefaces_frames_captured_total", (("camera", "side"),))] > 0
    infinite = found[("livefaces_end_to_end_latency_seconds_bucket", (("camera", "demo"), ("le", "+Inf")))]
    assert infinite == found[("livefaces_end_to_end_latency_seconds_count", (("camera", "demo"),))]
