"""`livefaces --http` as a user runs it: the real app in a subprocess serving the demo cameras on
a loopback port, every route asked by a real HTTP client (the standard library's), the MJPEG
stream parsed and its frames decoded, `POST /api/detect` with a real photo and with bad bodies,
the token checked, and the page loaded in a real headless Chromium. Every wait is on an answer
or on the process, with a deadline."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces.compat import OutputFormat, format_faces
from tests.log_lines import messages
from tests.mqtt_broker import free_port, wait_until
from tests.test_cli_process import environment
from tests.test_web_parts import png_claiming

REPO = Path(__file__).resolve().parent.parent
ASTRONAUT = REPO / "livefaces" / "assets" / "astronaut.jpg"
TOKEN = "t0ken-for-the-web-view-7f3a9c"
STARTUP = 150  # seconds to a serving app (TensorFlow loads first)
ARTIFACTS = Path(os.environ.get("LIVEFACES_TEST_ARTIFACTS", REPO / "test-artifacts"))


@dataclass
class App:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def get_json(self, path: str, **headers: str) -> tuple[int, object]:
        status, _, body = self.request("GET", path, headers=headers)
        return status, json.loads(body)

    def said(self) -> str:
        return (self.folder / "out.log").read_text() + (self.folder / "err.log").read_text()


def start_app(folder: Path, *args: str, host: str = "127.0.0.1", **env: str) -> App:
    port = free_port()
    command = [sys.executable, "-m", "livefaces", "--no-display", "--http", f"{host}:{port}", *args]
    folder.mkdir(parents=True, exist_ok=True)
    out, err = (folder / "out.log").open("wb"), (folder / "err.log").open("wb")
    process = subprocess.Popen(command, stdout=out, stderr=err, env=environment(**env))
    app = App(process, port, folder)

    def serving() -> bool:
        assert process.poll() is None, app.said()
        try:
            return app.request("GET", "/healthz")[0] in (200, 503)
        except OSError:
            return False

    wait_until(serving, STARTUP, "the web view answering")
    return app


def stop_app(app: App) -> None:
    if app.process.poll() is None:
        app.process.send_signal(signal.SIGINT)
        try:
            app.process.wait(60)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()


def camera_state(app: App, name: str, **headers: str) -> str:
    cameras = app.get_json("/api/cameras", **headers)[1]["cameras"]  # type: ignore[index]
    return next(c["state"] for c in cameras if c["name"] == name)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """Two demo cameras (the second named `side`) played live, tracked, served on --http."""
    folder = tmp_path_factory.mktemp("web")
    running = start_app(folder, "--source", "demo", "--source", "side=demo", "--live", "--duration", "400")
    wait_until(lambda: camera_state(running, "demo") == camera_state(running, "side") == "online",
               60, "both cameras online")  # fmt: skip
    yield running
    stop_app(running)


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"not a picture: {data[:20]!r}"
    return image


def mjpeg_frames(app: App, path: str, count: int) -> list[np.ndarray]:
    """The first `count` pictures of an MJPEG stream, parsed part by part."""
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    pictures = []
    try:
        while len(pictures) < count:
            assert response.readline() == b"--frame\r\n"
            headers = {}
            while (line := response.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            pictures.append(decode(response.read(int(headers["content-length"]))))
            assert response.read(2) == b"\r\n"
    finally:
        connection.close()
    return pictures


def test_the_cameras_api_reports_states_and_stats(app: App) -> None:
    status, body = app.get_json("/api/cameras")
    assert status == 200
    cameras = {c["name"]: c for c in body["cameras"]}  # type: ignore[index]
    assert set(cameras) == {"demo", "side"}
    demo = cameras["demo"]
    assert demo["state"] == "online" and demo["size"] == [640, 480] and demo["fps"] == 30.0
    assert demo["stats"]["captured"] > 0 and demo["healthy"] is True
    wait_until(lambda: app.get_json("/api/cameras")[1]["detector"]["calls"] > 0, 60, "a detector call")  # type: ignore[index]
    assert app.get_json("/api/cameras/side")[1]["name"] == "side"  # type: ignore[index]
    assert app.get_json("/api/cameras/nope")[0] == 404


def test_the_latest_frame_is_annotated_or_raw(app: App) -> None:
    wait_until(lambda: app.get_json("/api/cameras/demo")[1]["stats"]["faces"] > 0, 60, "a face in view")  # type: ignore[index]
    status, headers, annotated = app.request("GET", "/api/cameras/demo/latest.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert decode(annotated).shape == (480, 640, 3)
    _, _, small = app.request("GET", "/api/cameras/demo/latest.jpg?raw=1&width=320")
    assert decode(small).shape == (240, 320, 3)
    assert app.request("GET", "/api/cameras/demo/latest.jpg?width=5")[0] == 400


def test_the_mjpeg_stream_gives_new_decodable_frames(app: App) -> None:
    pictures = mjpeg_frames(app, "/api/cameras/side/stream.mjpg?fps=15&width=320", 4)
    assert all(picture.shape == (240, 320, 3) for picture in pictures)
    assert any(not np.array_equal(a, b) for a, b in itertools.pairwise(pictures))  # the picture moves


def test_events_list_the_faces_with_their_snapshots(app: App) -> None:
    def appeared() -> list[dict]:
        listed = app.get_json("/api/events?camera=demo&limit=50")[1]["events"]  # type: ignore[index]
        return [e for e in listed if e["event"] == "face_appeared"]

    wait_until(lambda: bool(appeared()), 60, "a face_appeared event")
    event = appeared()[0]
    assert event["camera"] == "demo" and event["snapshot"] == f"/api/snapshots/{event['event_id']}.jpg"
    status, headers, picture = app.request("GET", event["snapshot"])
    assert status == 200 and headers["content-type"] == "image/jpeg" and decode(picture).size > 0
    newest = app.get_json("/api/events?limit=1")[1]["events"]  # type: ignore[index]
    assert len(newest) == 1
    later = app.get_json(f"/api/events?since={event['wall_time'].replace('+', '%2B')}")[1]["events"]  # type: ignore[index]
    assert event["event_id"] not in [e["event_id"] for e in later]
    assert app.get_json("/api/events?camera=nope")[0] == 404
    assert app.get_json("/api/events?limit=0")[0] == 400
    assert app.request("GET", "/api/snapshots/0123abcd.jpg")[0] == 404


def test_health_and_metrics(app: App) -> None:
    status, body = app.get_json("/healthz")
    assert status == 200 and body == {
        "status": "ok",
        "cameras": {"demo": "online", "side": "online"},
        "down": [],
    }
    status, headers, text = app.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'livefaces_frames_captured_total{camera="side"}' in text.decode()


def test_detect_answers_in_the_detect_faces_format(app: App, detector: object) -> None:
    photo = ASTRONAUT.read_bytes()
    status, headers, body = app.request("POST", "/api/detect", photo, {"Content-Type": "image/jpeg"})
    assert status == 200 and headers["content-type"].startswith("application/json")
    faces = json.loads(body)
    rgb = cv2.cvtColor(decode(photo), cv2.COLOR_BGR2RGB)
    expected = format_faces([detector.detect(rgb)], [rgb.shape[:2]], OutputFormat(), batch=False)  # type: ignore[attr-defined]
    assert [f["box"] for f in faces] == [f["box"] for f in expected]  # type: ignore[index]
    assert set(faces[0]) == {"box", "confidence", "keypoints"} and faces[0]["confidence"] > 0.99
    strict = json.loads(app.request("POST", "/api/detect?min_confidence=0.99", photo)[2])
    assert 1 <= len(strict) < len(faces) and all(f["confidence"] >= 0.99 for f in strict)
    boundary = "b0undary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, body = app.request(
        "POST", "/api/detect", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200 and [f["box"] for f in json.loads(body)] == [f["box"] for f in faces]


def vm_hwm(pid: int) -> int:
    """The process's peak resident memory, kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"GIF89a not what we take", 415, "not a JPEG or PNG"),
        (png_claiming(50_000, 50_000), 413, "50000x50000"),
        (ASTRONAUT.read_bytes()[:3000], 400, "could not be decoded"),
        (b"\xff\xd8" + b"\0" * (21 * 1024 * 1024), 413, "more than"),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_no_memory_spike(
    app: App, body: bytes, status: int, words: str
) -> None:
    before = vm_hwm(app.process.pid)
    answer, headers, text = app.request("POST", "/api/detect", body)
    assert answer == status and headers["content-type"].startswith("application/json")
    assert words in json.loads(text)["error"]
    assert vm_hwm(app.process.pid) - before < 60_000  # kB: the bomb was never decoded
    assert app.request("POST", "/api/detect?min_face_size=3", ASTRONAUT.read_bytes())[0] == 400


def test_a_token_guards_every_route_but_health(tmp_path: Path) -> None:
    app = start_app(tmp_path, "--source", "demo", "--live", "--duration", "120",
                    "--http-token-env", "WEB_TOKEN", WEB_TOKEN=TOKEN)  # fmt: skip
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert app.request("GET", "/healthz")[0] == 200
        for path in ("/", "/api/cameras", "/api/events", "/metrics", "/api/cameras/demo/latest.jpg"):
            status, headers, _ = app.request("GET", path)
            assert status == 401 and headers["www-authenticate"] == "Bearer", path
            assert app.request("GET", path, headers={"Authorization": "Bearer wrong-token-0000000"})[0] == 401
        assert app.request("POST", "/api/detect", ASTRONAUT.read_bytes())[0] == 401
        assert app.request("GET", "/api/cameras", headers=bearer)[0] == 200
        status, headers, _ = app.request("GET", f"/?token={TOKEN}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert "httponly" in headers["set-cookie"].lower()
        assert app.request("GET", "/api/cameras", headers={"Cookie": cookie})[0] == 200
        wait_until(lambda: camera_state(app, "demo", **bearer) == "online", 60, "the camera online")
        assert app.request("POST", "/api/detect", ASTRONAUT.read_bytes(), bearer)[0] == 200
    finally:
        stop_app(app)
    assert app.process.returncode == 0, app.said()
    assert TOKEN not in app.said()


def test_health_fails_when_a_camera_is_lost_and_a_wide_bind_without_token_warns(tmp_path: Path) -> None:
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing"
    app = start_app(tmp_path, "--source", "demo", "--source", f"door={dead}", "--live", "--duration", "120",
                    "--max-reconnects", "0", host="0.0.0.0")  # fmt: skip
    try:
        wait_until(lambda: app.request("GET", "/healthz")[0] == 503, 60, "/healthz saying 503")
        body = json.loads(app.request("GET", "/healthz")[2])
        assert (
            body["status"] == "unhealthy" and body["down"] == ["door"] and body["cameras"]["demo"] == "online"
        )
    finally:
        stop_app(app)
    assert any("warning: the web view is served beyond this machine" in m for m in messages(app.said()))


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path, app: App) -> None:
    command = [sys.executable, "-m", "livefaces", "--source", "demo", "--no-display", "--http", str(app.port)]
    run = subprocess.run(command, capture_output=True, env=environment(), timeout=120)
    assert run.returncode == 2
    lines = run.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and f"--http 127.0.0.1:{app.port}: cannot serve the web view there" in lines[0]


def chromium_driver() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def browser_on_live_tiles(port: int) -> object:
    """A headless Chromium on the page at `port`, once the `demo` and `side` tiles both show a
    live picture and 'online' (the caller quits it); skips when Chromium is not installed."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("Chromium and its driver are not installed (bash scripts/test installs them)")
    driver = chromium_driver()
    try:
        driver.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]

        def tiles_live() -> bool:
            return bool(driver.execute_script(  # type: ignore[attr-defined]
                "return ['demo', 'side'].every(n => { const i = document.getElementById('img-' + n);"
                " const s = document.querySelector('#cap-' + n + ' .state');"
                " return i.complete && i.naturalWidth > 0 && s.textContent === 'online'; })"
            ))  # fmt: skip

        wait_until(tiles_live, 60, "both tiles showing a live picture and 'online'")
    except BaseException:
        driver.quit()  # type: ignore[attr-defined]
        raise
    return driver


def test_the_page_shows_live_tiles_in_a_real_browser(app: App) -> None:
    driver = browser_on_live_tiles(app.port)  # type: ignore[attr-defined]
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "web-index.png"))  # type: ignore[attr-defined]
        widths = driver.execute_script(  # type: ignore[attr-defined]
            "return ['demo', 'side'].map(n => document.getElementById('img-' + n).naturalWidth)"
        )
        assert widths == [640, 640]
        driver.get(f"http://127.0.0.1:{app.port}/cameras/demo")  # type: ignore[attr-defined]

        def camera_page_live() -> bool:
            return bool(driver.execute_script(  # type: ignore[attr-defined]
                "const i = document.getElementById('live');"
                " const history = document.getElementById('history');"
                " return i.complete && i.naturalWidth > 0 && history.textContent + history.children.length"
                " && document.getElementById('events').rows.length > 0;"
            ))  # fmt: skip

        wait_until(camera_page_live, 60, "the camera page's live view, events and history")
        driver.save_screenshot(str(ARTIFACTS / "web-camera.png"))  # type: ignore[attr-defined]
    finally:
        driver.quit()  # type: ignore[attr-defined]


def test_six_cameras_stay_live_in_a_real_browser(tmp_path: Path) -> None:
    """Six tiles: more MJPEG streams than a browser opens to one server, so they are still
    pictures reloaded one after another. Every tile shows a picture and gets newer ones, and the
    page's own API calls are not starved (the captions turn 'online' from /api/cameras)."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("Chromium and its driver are not installed (bash scripts/test installs them)")
    names = [f"cam{i}" for i in range(6)]
    sources = [arg for name in names for arg in ("--source", f"{name}=demo")]
    six = start_app(tmp_path, *sources, "--live", "--camera-size", "320x240", "--camera-fps", "10",
                    "--duration", "300")  # fmt: skip
    driver = chromium_driver()
    try:
        driver.get(f"http://127.0.0.1:{six.port}/")  # type: ignore[attr-defined]
        script = (
            f"return {json.dumps(names)}.map(n => {{ const i = document.getElementById('img-' + n);"
            " const s = document.querySelector('#cap-' + n + ' .state');"
            " return i.complete && i.naturalWidth > 0 && s.textContent === 'online' ? i.src : null; })"
        )

        def shown() -> list[str | None]:
            return list(driver.execute_script(script))  # type: ignore[attr-defined]

        wait_until(lambda: all(shown()), 90, "six tiles showing a picture and 'online'")
        first = shown()
        assert all("/latest.jpg" in src for src in first)  # type: ignore[operator]
        wait_until(
            lambda: all(a and a != b for a, b in zip(shown(), first)), 60, "a newer picture on every tile"
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "web-six-cameras.png"))  # type: ignore[attr-defined]
    finally:
        driver.quit()  # type: ignore[attr-defined]
        stop_app(six)
