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
import threading, sys
import cv2
from livefaces.capture import open_source
from livefaces.display import WindowSink, display_available
from livefaces.pipeline import Pipeline
from livefaces.detections import Detections

class NoFaces:
    def detect(self, image):
        return Detections.empty()

assert display_available()
stop = threading.Event()
window = WindowSink("livefaces test", stop)
class Probe:
    needs_canvas = False
    visible = []
    def write(self, item, canvas):
        self.visible.append(cv2.getWindowProperty("livefaces test", cv2.WND_PROP_VISIBLE))
        if item.frame.index == 11:
            stop.set()
    def close(self):
        pass
probe = Probe()
Pipeline(open_source("demo"), NoFaces(), [window, probe]).run(stop)
print(window.frames_shown, min(probe.visible))
"""


def test_window_shows_every_frame_under_xvfb(xvfb_display: str) -> None:
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", WINDOW_RUN], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    shown, visible = result.stdout.split()
    assert int(shown) == 12 and float(visible) >= 1


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
