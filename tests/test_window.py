"""The display loop in a real OpenCV window on a virtual X server (Xvfb), and the headless fallback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livefaces.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def xvfb_display() -> Iterator[str]:
    """Start Xvfb on a free display; it reports the display number on a pipe once it is ready."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (scripts/test installs it)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        number = ready.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


WINDOW_RUN = """
import threading
import cv2
from livefaces.capture import open_source
from livefaces.display import TiledWindow, display_available
from livefaces.detections import Detections
from livefaces.runtime.camera_runner import CameraRunner
from livefaces.runtime.threaded import CameraSetup, Session
from livefaces.tiles import TileBoard, TileSink

class NoFaces:
    def detect(self, image):
        return Detections.empty()

assert display_available()
stop = threading.Event()
board = TileBoard(["demo"])
window = TiledWindow(board, "livefaces test", stop)
class Probe:
    render = None
    def write(self, item, image):
        if item.frame.index == 11:
            stop.set()
    def close(self):
        pass
    def summary(self):
        return None
source = open_source("demo")
setup = CameraSetup(source, CameraRunner("demo", 30.0), [TileSink(board, "demo"), Probe()])
summary = Session([setup], NoFaces()).run(stop, pump=window.pump).cameras[0]
visible = cv2.getWindowProperty("livefaces test", cv2.WND_PROP_VISIBLE)
window.close()
print(window.frames_shown, visible, summary.frames)
"""


def test_a_camera_shows_in_the_window_pumped_by_the_main_thread(xvfb_display: str) -> None:
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", WINDOW_RUN], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    shown, visible, written = result.stdout.split()
    # the camera's frames reach the window through the board, pumped on the main thread
    assert 1 <= int(shown) <= int(written) and int(written) >= 12 and float(visible) >= 1


TILED_RUN = """
import sys, threading
import cv2
import numpy as np
from livefaces.display import TiledWindow, display_available
from livefaces.tiles import PLACEHOLDER, TileBoard, TileSink, grid_shape

assert display_available()
cameras = {"front": (640, 480), "yard": (320, 240), "door": (1280, 720)}
board = TileBoard(list(cameras))
stop, done = threading.Event(), threading.Event()
first = {name: threading.Event() for name in cameras}
quit_by_key = len(sys.argv) > 1

def runner(name, size):
    sink = TileSink(board, name)
    while not done.is_set() and sink.frames_posted < 2000:
        sink.write(None, np.full((size[1], size[0], 3), 100 + sink.frames_posted % 150, np.uint8))
        first[name].set()

window = TiledWindow(board, "livefaces tiles", stop, canvas_size=(1200, 700))
window.pump(wait=0)  # the window opens before any frame, with connecting... tiles
threads = [threading.Thread(target=runner, args=item) for item in cameras.items()]
for thread in threads:
    thread.start()
assert all(event.wait(60) for event in first.values())
for _ in range(10):
    window.pump()
visible = cv2.getWindowProperty(window.title, cv2.WND_PROP_VISIBLE)
_, _, width, height = cv2.getWindowImageRect(window.title)
done.set()
for thread in threads:
    thread.join(30)
window.pump()  # shows the last posts
canvas = window.canvas
rows, cols = grid_shape(3)
tile_h, tile_w = canvas.shape[0] // rows, canvas.shape[1] // cols
centres = [canvas[r * tile_h + tile_h // 2, c * tile_w + tile_w // 2] for r, c in ((0, 0), (0, 1), (1, 0))]
live = all(tuple(p) != PLACEHOLDER and len(set(p.tolist())) == 1 and p[0] >= 100 for p in centres)
print(window.frames_shown, visible, width, height, canvas.shape[1], canvas.shape[0], live, stop.is_set())
sys.stdout.flush()
if quit_by_key:
    print("ready", flush=True)
    for _ in range(4000):  # a bounded count of pumps, 50 ms each at most, until q arrives
        window.pump()
        if stop.is_set():
            break
    print("stopped" if stop.is_set() else "still running", flush=True)
else:
    cv2.destroyWindow(window.title)  # as when the user closes it: the next pump sets stop
    window.pump(wait=0)
    print(stop.is_set())
window.close()
window.close()
"""


def test_tiled_window_shows_three_cameras_posted_from_three_threads(xvfb_display: str) -> None:
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", TILED_RUN], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    shown, visible, width, height, canvas_w, canvas_h, live, stopped, closed = result.stdout.split()
    assert int(shown) >= 2 and float(visible) >= 1
    # a 2x2 grid of tiles shaped like the largest camera (1280x720), shrunk to fit 1200x700
    assert (int(canvas_w), int(canvas_h)) == (1200, 674)
    assert (int(width), int(height)) == (int(canvas_w), int(canvas_h))
    assert live == "True" and stopped == "False" and closed == "True"


def test_q_in_the_tiled_window_stops(xvfb_display: str) -> None:
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (optional: sends the q key)")
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", TILED_RUN, "quit-by-key"], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        lines = iter(child.stdout.readline, "")
        assert any(line.strip() == "ready" for line in lines)
        subprocess.run(
            ["xdotool", "search", "--sync", "--name", "livefaces tiles", "windowfocus", "--sync", "key", "q"],
            env=env,
            timeout=30,
            check=True,
        )
        assert next(lines).strip() == "stopped"
        assert child.wait(60) == 0


def test_app_runs_with_a_window_under_xvfb(xvfb_display: str, tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    out = tmp_path / "demo.mp4"
    command = [
        sys.executable,
        "-m",
        "livefaces",
        "--source",
        "demo",
        "--max-frames",
        "15",
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    assert "no display" not in result.stderr
    assert "done: 15 frames" in result.stderr


def test_without_a_display_the_app_says_so_and_runs_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--source", "demo", "--max-frames", "3"]) == 0
    err = capsys.readouterr().err
    assert "no display available, running headless" in err and "done: 3 frames" in err
