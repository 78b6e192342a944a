"""Reconnection against real servers on loopback: the GStreamer RTSP server of tests/rtsp_server.py
killed mid-stream and restarted on the same port, a server that never answers, a closed port, and
a server that refuses the credentials. Everything waits on events the app raises (never on
sleeps); the only real timeouts are short socket timeouts.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from livefaces.capture import CaptureSettings, open_source
from livefaces.demo import DemoScene
from livefaces.detections import Detections
from livefaces.recorder import VideoRecorder
from livefaces.runtime.camera_runner import CameraRunner, RunnerSettings
from livefaces.runtime.threaded import CameraSetup, Session, run_camera
from livefaces.sources.reconnect import ReconnectSettings
from tests.log_lines import messages
from tests.test_cli_process import REPO, environment
from tests.test_rtsp import SERVER, _stop, _wait_ready, free_port, gst_python  # noqa: F401

FPS = 15
WAIT = 60.0  # the most any step may take before the test fails (it normally takes seconds)


def demo_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    """The demo scene (faces) as H.264 in mp4: no B-frames, a keyframe every second."""
    scene = DemoScene(size[0], size[1], FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
        for index in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(scene.render(index), format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture
def server_on(gst_python: str, tmp_path: Path) -> Iterator:  # noqa: F811
    """`start(port, *args)`: tests/rtsp_server.py on that port; every server is stopped after."""
    with contextlib.ExitStack() as stack:

        def start(port: int, *args: str) -> subprocess.Popen:
            log = tmp_path / f"rtsp_server_{port}_{len(stack._exit_callbacks)}.log"
            with log.open("w") as errors:
                process = subprocess.Popen(
                    [gst_python, str(SERVER), "--port", str(port), *args],
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
            stack.callback(_stop, process)
            _wait_ready(process, log)
            return process

        yield start


class Watcher:
    """A sink that records what reaches the outputs and wakes the test at milestones."""

    render = None

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.events: list = []
        self.face_seen = threading.Event()
        self.down = threading.Event()
        self.back = threading.Event()  # two seconds of frames came after a stream_up "reconnected"
        self.frames_after_up: int | None = None

    def write(self, result, image) -> None:
        self.indices.append(result.frame.index)
        if self.frames_after_up is not None:
            self.frames_after_up += 1
            if self.frames_after_up >= 2 * FPS:
                self.back.set()

    def on_events(self, events) -> None:
        self.events += events
        for event in events:
            if event.kind == "face_appeared":
                self.face_seen.set()
            elif event.kind == "stream_down":
                self.down.set()
                self.frames_after_up = None
            elif event.kind == "stream_up" and event.reason == "reconnected":
                self.frames_after_up = 0

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None


def recorded_times(path: Path) -> tuple[list[float], tuple[int, int]]:
    """The presentation time of every decoded frame of a recording (an error fails the test)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(video)]
        return times, (video.width, video.height)


def test_a_killed_server_that_comes_back_is_reconnected_and_the_recording_plays_through_the_gap(
    server_on, tmp_path: Path, detector
) -> None:
    """The server is killed (SIGKILL) while faces are tracked and restarted on the same port at
    another resolution: the tracks end with the drop, the camera reconnects, frame indices and
    timestamps keep increasing, and the one recording plays through, the outage a gap in its
    timestamps, the new frames scaled into its first size."""
    first = demo_clip(tmp_path / "first.mp4", (320, 240), 30)
    second = demo_clip(tmp_path / "second.mp4", (256, 192), 30)
    port = free_port()
    server = server_on(port, "--file", str(first))
    source = open_source(f"rtsp://127.0.0.1:{port}/test", CaptureSettings(open_timeout=5, read_timeout=3))
    out = tmp_path / "rec.mp4"
    recorder = VideoRecorder(out, None, crash_safe=True)
    watcher, lines, stop = Watcher(), [], threading.Event()
    settings = RunnerSettings(tracking=True, live=True)
    reconnect = ReconnectSettings(first_delay=0.2, max_delay=0.5)
    outcome = []
    run = threading.Thread(
        target=lambda: outcome.append(
            run_camera(
                source,
                detector,
                [recorder, watcher],
                settings,
                stop=stop,
                reconnect=reconnect,
                report=lines.append,
            )
        )
    )
    run.start()
    try:
        assert watcher.face_seen.wait(WAIT), "no face tracked on the first server"
        server.kill()
        server.wait()
        assert watcher.down.wait(WAIT), "the drop was not noticed"
        server_on(port, "--file", str(second))
        assert watcher.back.wait(WAIT), f"not back after the restart: {lines}"
    finally:
        stop.set()
        run.join(WAIT)
    assert not run.is_alive()
    (summary,) = outcome
    assert summary.ended_by == "stop" and summary.error is None
    kinds = [(event.kind, getattr(event, "reason", None)) for event in watcher.events]
    assert kinds[0] == ("stream_up", "connected")
    down = kinds.index(("stream_down", "ended"))
    assert ("face_left", "stream_down") in kinds[down + 1 :]
    up = kinds.index(("stream_up", "reconnected"))
    assert down < up and all(kind != ("stream_down", "ended") for kind in kinds[down + 1 : up])
    assert (
        watcher.events[up].attempt >= 1 and watcher.events[up].source_time > watcher.events[down].source_time
    )
    assert watcher.indices == sorted(set(watcher.indices))
    assert any("stream down: " in line and "the stream ended" in line for line in lines)
    assert any("stream up after" in line for line in lines)
    times, size = recorded_times(out)
    assert size == (320, 240)
    assert len(times) == recorder.frames_in_file == len(watcher.indices)
    steps = np.diff(times)
    assert np.all(steps > 0)
    assert steps.max() > 0.5 > 4 / FPS > np.median(steps)  # the outage shows as one honest gap
    assert recorder.frames_resized >= 2 * FPS
    assert "scaled to 320x240 after a resolution change" in recorder.summary()


class NoFaces:
    def detect(self, image: np.ndarray) -> Detections:
        return Detections.empty()


def os_threads() -> int:
    """Threads of this process, native ones (FFmpeg's) included."""
    return len(list(Path("/proc/self/task").iterdir()))


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port where a server accepts connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    yield free_port()


@pytest.mark.parametrize(
    ("server", "reason"),
    [(silent_server, "no answer within 0.3 s (open timeout)"), (closed_port, "(Connection refused)")],
)
def test_a_camera_that_never_answers_is_retried_without_growing_threads(server, reason: str) -> None:
    attempts = 10
    stop, lines, python_threads, native_threads = threading.Event(), [], [], []

    def report(line: str) -> None:
        lines.append(line)
        python_threads.append(threading.active_count())
        native_threads.append(os_threads())
        if len(lines) == attempts:
            stop.set()

    with server() as port:
        url = f"rtsp://admin:Secr3t@127.0.0.1:{port}/x"
        source = open_source(url, CaptureSettings(open_timeout=0.3, read_timeout=0.3))
        reconnect = ReconnectSettings(first_delay=0.01, max_delay=0.05)
        summary = run_camera(
            source, NoFaces(), [], RunnerSettings(live=True), stop=stop, reconnect=reconnect, report=report
        )
    assert summary.ended_by == "stop" and summary.error is None and summary.frames == 0
    # The session's stop reaches the camera's reader a moment later: one more attempt may start.
    assert attempts <= len(lines) <= attempts + 1, lines
    assert all(f"rtsp://***@127.0.0.1:{port}/x" in line and reason in line for line in lines), lines
    # From the third attempt on (the camera's other threads may still be starting at the first):
    assert len(set(python_threads[2:])) == 1 and max(python_threads) == python_threads[-1], python_threads
    assert len(set(native_threads[2:])) == 1 and max(native_threads) == native_threads[-1], native_threads
    assert not any("Secr3t" in line or "admin" in line for line in lines)


def test_wrong_credentials_give_one_line_per_attempt_and_back_off(server_on) -> None:
    port = free_port()
    server_on(port, "--user", "admin", "--password", "s3cret")
    good = open_source(f"rtsp://admin:s3cret@127.0.0.1:{port}/test", CaptureSettings(open_timeout=5))
    frames = good.frames()
    frames.close()  # the right credentials open it: the server really checks them

    stop, lines = threading.Event(), []

    def report(line: str) -> None:
        lines.append(line)
        if len(lines) == 4:
            stop.set()

    bad = open_source(f"rtsp://admin:wrong@127.0.0.1:{port}/test", CaptureSettings(open_timeout=5))
    reconnect = ReconnectSettings(first_delay=0.1, max_delay=0.4, jitter=0.0)
    summary = run_camera(
        bad, NoFaces(), [], RunnerSettings(live=True), stop=stop, reconnect=reconnect, report=report
    )
    assert summary.ended_by == "stop" and summary.error is None
    camera = f"rtsp://***@127.0.0.1:{port}/test"
    refused = f"{camera}: credentials refused (401 Unauthorized)"
    assert lines == [
        f"livefaces: [{camera}] cannot connect: {refused}; next try in 0.1 s (attempt 1)",
        f"livefaces: [{camera}] reconnection attempt 1 failed: {refused}; next try in 0.2 s (attempt 2)",
        f"livefaces: [{camera}] reconnection attempt 2 failed: {refused}; next try in 0.4 s (attempt 3)",
        f"livefaces: [{camera}] reconnection attempt 3 failed: {refused}; next try in 0.4 s (attempt 4)",
    ]


def test_in_service_mode_a_camera_down_at_start_up_is_retried_while_the_others_run(tmp_path: Path) -> None:
    """Two cameras (service mode): the one that cannot be reached does not stop the other, and is
    given up after --max-reconnects attempts; a single such --source still fails at once."""
    port = free_port()
    dead = f"dead=rtsp://admin:Secr3t@127.0.0.1:{port}/x"
    args = ["--source", "demo", "--source", dead, "--max-reconnects", "2", "--max-frames", "20"]
    args += ["--no-display", "--camera-size", "160x120", "--output", str(tmp_path / "rec-{name}.mp4")]
    result = subprocess.run(
        [sys.executable, "-m", "livefaces", *args],
        capture_output=True,
        env=environment(),
        cwd=REPO,
        timeout=300,
    )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    masked = f"rtsp://***@127.0.0.1:{port}/x: cannot be opened (Connection refused)"
    lines = messages(err)
    assert f"livefaces: [dead] cannot connect: {masked}; next try in" in err
    assert f"livefaces: [dead] reconnection attempt 1 failed: {masked}; next try in" in err
    assert f"livefaces: [dead] giving up after 2 reconnection attempts: {masked}" in lines
    assert (
        f"livefaces: [dead] source lost: {masked} (gave up after 2 reconnection attempts), 0 detections"
        in lines
    )
    assert any(line.startswith("livefaces: [demo] done: 20 frames") for line in lines), err
    assert "Secr3t" not in err and "Traceback" not in err
    times, _ = recorded_times(tmp_path / "rec-demo.mp4")
    assert len(times) == 20

    alone = subprocess.run(
        [sys.executable, "-m", "livefaces", "--source", dead.split("=", 1)[1], "--no-display"],
        capture_output=True,
        env=environment(),
        cwd=REPO,
        timeout=300,
    )
    assert alone.returncode == 2
    assert alone.stderr.decode().splitlines() == [f"livefaces: error: {masked}"]


class Freezer(Watcher):
    """Freezes the server (SIGSTOP: the connection stays open, no data comes) after ten frames."""

    def __init__(self, server: subprocess.Popen) -> None:
        super().__init__()
        self.server = server
        self.frozen = False

    def write(self, result, image) -> None:
        super().write(result, image)
        if len(self.indices) == 10 and not self.frozen:
            self.frozen = True
            self.server.send_signal(signal.SIGSTOP)


def test_a_frozen_server_is_a_stall_and_the_status_follows_the_reconnection(server_on) -> None:
    port = free_port()
    server = server_on(port, "--size", "160x120", "--fps", str(FPS))
    url = f"rtsp://127.0.0.1:{port}/test"
    source = open_source(url, CaptureSettings(open_timeout=1.0, read_timeout=0.5))
    freezer, lines, seen, stop = Freezer(server), [], [], threading.Event()
    reconnect = ReconnectSettings(first_delay=0.1, max_delay=0.2)
    setup = CameraSetup(
        source, CameraRunner("gate", None, RunnerSettings(live=True)), [freezer], reconnect=reconnect
    )
    sessions: list[Session] = []

    def report(line: str) -> None:  # on the reader thread, as each line is printed
        lines.append(line)
        seen.append(sessions[0].status().cameras[0])
        if len(lines) == 2:  # the stall, then an attempt that met the frozen server
            server.send_signal(signal.SIGCONT)

    sessions.append(Session([setup], NoFaces(), report=report))
    run = threading.Thread(target=sessions[0].run, args=(stop,))
    run.start()
    try:
        assert freezer.back.wait(WAIT), f"not back: {lines}"
        after = sessions[0].status().cameras[0]
    finally:
        stop.set()
        run.join(WAIT)
    assert not run.is_alive()
    down = next(event for event in freezer.events if event.kind == "stream_down")
    assert down.reason == "stall"
    assert lines[0].startswith(f"livefaces: [gate] stream down: {url}: no data for 0.5 s (read timeout); ")
    assert "no answer within 1 s (open timeout); next try in" in lines[1]
    stalled = seen[0]
    assert (stalled.state, stalled.attempt, stalled.stalls, stalled.reconnects) == ("reconnecting", 1, 1, 0)
    assert stalled.next_try_in is not None and 0 < stalled.next_try_in <= 0.2
    assert stalled.error == f"{url}: no data for 0.5 s (read timeout)"
    assert (after.state, after.attempt, after.next_try_in, after.stalls, after.reconnects) == (
        "online",
        0,
        None,
        1,
        1,
    )
    assert after.quality is not None and (after.quality.stalls, after.quality.reconnects) == (1, 1)
    assert after.quality.expected_fps == FPS and after.quality.frames >= 10 + 2 * FPS


def resident_kb() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 // 1024


def test_hundreds_of_failed_attempts_do_not_grow_memory() -> None:
    """300 refused attempts: what FFmpeg or the watchdog allocates per attempt is given back
    (measured here: +24 kB over 600 attempts; the bound leaves room for the allocator)."""
    stop, samples = threading.Event(), []

    def report(line: str) -> None:
        samples.append(resident_kb())
        if len(samples) == 300:
            stop.set()

    with closed_port() as port:
        source = open_source(f"rtsp://127.0.0.1:{port}/x", CaptureSettings(open_timeout=0.3))
        reconnect = ReconnectSettings(first_delay=0.001, max_delay=0.001)
        run_camera(
            source, NoFaces(), [], RunnerSettings(live=True), stop=stop, reconnect=reconnect, report=report
        )
    assert len(samples) == 300
    assert samples[-1] - samples[49] < 4096, samples[49::50]
