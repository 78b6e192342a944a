"""RTSP end to end against a real server on loopback (tests/rtsp_server.py, GStreamer), no mocks.

The server runs under Debian's /usr/bin/python3, which has the GStreamer bindings; the tests
are skipped with a message where those are missing. Every run is bounded by --max-frames, by
the stream's own end or by the read timeout; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

from livefaces.capture import CaptureSettings, open_source
from livefaces.cli import main
from tests.log_lines import messages

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve().with_name("rtsp_server.py")
SIZE = (320, 240)
READY_SECONDS = 20.0
STOP_SECONDS = 5.0

StartServer = Callable[..., tuple[str, subprocess.Popen]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def gst_python() -> str:
    """Debian's interpreter, if it can import GstRtspServer; otherwise the RTSP tests skip."""
    check = 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"no RTSP test server: {SYSTEM_PYTHON} cannot run ({error})")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        pytest.skip(
            f"no RTSP test server: {SYSTEM_PYTHON} cannot import GstRtspServer ({reason}); "
            "install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}"
        )
    return SYSTEM_PYTHON


def _wait_ready(process: subprocess.Popen, log: Path) -> None:
    """Block until the server prints READY; fail with its stderr if it exits or takes too long."""
    assert process.stdout is not None
    deadline = time.monotonic() + READY_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
        if not readable:
            pytest.fail(f"RTSP server not ready after {READY_SECONDS} s:\n{log.read_text()}")
        line = process.stdout.readline()
        if line.strip() == "READY":
            return
        if not line:
            process.wait(STOP_SECONDS)
            pytest.fail(f"RTSP server exited with {process.returncode}:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)  # a stopped process only acts on SIGTERM once resumed
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _server_starter(python: str, folder: Path, stack: contextlib.ExitStack) -> StartServer:
    def start(*args: str) -> tuple[str, subprocess.Popen]:
        port = free_port()
        log = folder / f"rtsp_server_{port}.log"
        with log.open("w") as errors:
            process = subprocess.Popen(
                [python, str(SERVER), "--port", str(port), *args],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        stack.callback(_stop, process)
        _wait_ready(process, log)
        return f"rtsp://127.0.0.1:{port}/test", process

    return start


@pytest.fixture
def start_rtsp_server(gst_python: str, tmp_path: Path) -> Iterator[StartServer]:
    """`start(*server_args)` runs tests/rtsp_server.py: its URL and process, stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield _server_starter(gst_python, tmp_path, stack)


@pytest.fixture(scope="module")
def rtsp_url(gst_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An endless 320x240 15 fps stream shared by the tests of this module."""
    with contextlib.ExitStack() as stack:
        start = _server_starter(gst_python, tmp_path_factory.mktemp("rtsp"), stack)
        url, _ = start("--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", "15")
        yield url


def decode_all(path: Path) -> tuple[int, tuple[int, int]]:
    """Decode every video frame of a recording (an error fails the test): count and size."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        count = sum(1 for _ in container.decode(video))
        return count, (video.width, video.height)


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_open_source_reads_frames_from_a_real_server(rtsp_url: str) -> None:
    source = open_source(rtsp_url, CaptureSettings(open_timeout=5, read_timeout=5))
    assert source.info.kind == "stream"
    assert source.info.live is True
    frames = source.frames()
    try:
        got = list(itertools.islice(frames, 10))
    finally:
        frames.close()
    assert [frame.index for frame in got] == list(range(10))
    assert all(frame.image.shape == (SIZE[1], SIZE[0], 3) for frame in got)
    times = [frame.timestamp for frame in got]
    assert times[0] == 0.0
    assert all(later > earlier for earlier, later in itertools.pairwise(times))
    assert source.info.size == SIZE
    assert source.info.fps == pytest.approx(15.0)


def test_cli_records_a_stream(rtsp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    args = ["--source", rtsp_url, "--no-display", "--max-frames", "20", "--output", str(out)]
    code = main([*args, "--json", str(log), "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    recorded, size = decode_all(out)
    assert size == SIZE
    records = json_lines(log)
    # A live source may drop frames the display loop is too slow for; every shown frame is
    # both recorded and logged.
    assert 0 < recorded <= 20
    assert len(records) == recorded
    indices = [record["frame"] for record in records]
    assert indices == sorted(set(indices)) and indices[-1] <= 19
    assert f"livefaces: done: {recorded} frames" in err


def test_refused_stream_is_one_line_with_masked_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = main(["--source", f"rtsp://user:secret@127.0.0.1:{port}/x", "--no-display", "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("livefaces: error: ")
    assert f"rtsp://***@127.0.0.1:{port}/x" in line
    assert "refused" in line.lower()
    assert "secret" not in captured.err + captured.out
    assert "Traceback" not in captured.err


def test_dying_stream_ends_the_run_and_the_recording_stays_playable(
    start_rtsp_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # FFmpeg reads about 30 frames (2 s at 15 fps) while it probes the stream when opening it,
    # and livefaces' fflags=nobuffer drops them: the stream must outlast that probe.
    url, _ = start_rtsp_server("--frames", "60", "--fps", "15", "--size", f"{SIZE[0]}x{SIZE[1]}")
    out = tmp_path / "out.mp4"
    args = [
        "--source",
        url,
        "--no-display",
        "--max-frames",
        "1000",
        "--timeout",
        "3",
        "--max-reconnects",
        "0",
    ]
    code = main([*args, "--output", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The server's EOS reaches FFmpeg as an RTCP BYE. A live stream that ends is not "done":
    # with reconnection off the report says the source was lost, and the exit code is 1.
    assert code == 1, err
    recorded, size = decode_all(out)
    assert size == SIZE
    assert 0 < recorded < 60
    assert f"livefaces: source lost: {url}: the stream ended, " in err
    assert f"livefaces: wrote {out}: {recorded} frames" in err
    assert "done" not in err


def test_stalled_stream_fails_on_the_read_timeout_and_the_recording_stays_playable(
    start_rtsp_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, server = start_rtsp_server("--fps", "15", "--size", f"{SIZE[0]}x{SIZE[1]}")
    # The JSON log goes to a FIFO: its first line (a frame went through the whole pipeline)
    # freezes the server with SIGSTOP, so the connection stays open but no data comes.
    fifo = tmp_path / "faces.fifo"
    os.mkfifo(fifo)
    lines: list[str] = []

    def freeze_on_first_line() -> None:
        with fifo.open() as log:
            for line in log:
                if not lines:
                    server.send_signal(signal.SIGSTOP)
                lines.append(line)

    watcher = threading.Thread(target=freeze_on_first_line, daemon=True)
    watcher.start()
    out = tmp_path / "out.mp4"
    args = [
        "--source",
        url,
        "--no-display",
        "--max-frames",
        "1000",
        "--stall-timeout",
        "2",
        "--max-reconnects",
        "0",
    ]
    try:
        code = main([*args, "--output", str(out), "--json", str(fifo)])
    finally:
        if watcher.is_alive():  # unblock a reader still waiting for a writer
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        watcher.join(STOP_SECONDS)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 1, err
    lost = f"livefaces: source lost: {url}: no data for 2 s (read timeout),"
    assert any(line.startswith(lost) for line in messages(err)), err
    assert f"livefaces: wrote {out}: {len(lines)} frames" in err
    recorded, size = decode_all(out)
    assert size == SIZE
    assert recorded == len(lines) > 0


def test_silent_server_fails_on_the_open_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = main(["--source", f"rtsp://127.0.0.1:{port}/x", "--no-display", "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"livefaces: error: rtsp://127.0.0.1:{port}/x: no answer within 1 s (open timeout)"


def test_scheme_is_case_insensitive(rtsp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    upper = "RTSP" + rtsp_url[len("rtsp") :]
    code = main(["--source", upper, "--no-display", "--max-frames", "3", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "livefaces: done: 3 frames" in err


def test_query_secrets_and_at_signs_in_passwords_never_show(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    url = f"http://admin:p@ss@127.0.0.1:{port}/video.mjpg?user=admin&pwd=Secr3t&token=abc"
    code = main(["--source", url, "--no-display", "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [
        f"livefaces: error: http://***@127.0.0.1:{port}/video.mjpg?user=admin&pwd=***&token=***: "
        "cannot be opened (Connection refused)"
    ]
    for secret in ("p@ss", "ss@", "Secr3t", "abc"):
        assert secret not in captured.err + captured.out


def test_several_cameras_share_one_detector_and_record_one_file_each(
    start_rtsp_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    front, _ = start_rtsp_server("--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", "15")
    yard, _ = start_rtsp_server("--size", "256x192", "--fps", "15")
    pattern = str(tmp_path / "rec-{name}.mp4")
    args = ["--source", f"front={front}", "--source", f"yard={yard}", "--source", "demo"]
    args += ["--no-display", "--max-frames", "20", "--timeout", "5", "--camera-size", "160x120"]
    code = main([*args, "--output", pattern, "--json", str(tmp_path / "faces-{name}.jsonl")])
    err = capsys.readouterr().err
    assert code == 0, err
    sizes = {"front": SIZE, "yard": (256, 192), "demo": (160, 120)}
    for name, size in sizes.items():
        recorded, recorded_size = decode_all(tmp_path / f"rec-{name}.mp4")
        records = json_lines(tmp_path / f"faces-{name}.jsonl")
        assert recorded_size == size
        assert 0 < recorded <= 20 and len(records) == recorded
        assert {record["camera"] for record in records} == {name}
        assert f"livefaces: [{name}] done: {recorded} frames" in err, err
    assert recorded == 20  # demo is lossless: every frame of it is recorded


def test_a_plain_output_path_with_several_cameras_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--source", "demo", "--source", "b=demo", "--no-display", "--output", "out.mp4"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "livefaces: error: --output out.mp4: several cameras would write one file; "
        "use a pattern such as 'out-{name}.mp4'"
    ]
