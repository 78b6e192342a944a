"""A camera that sends garbage: a real HTTP server on loopback streams a valid MPEG-TS start and
then endless packets that decode to nothing. The process must neither crash nor hang, the camera
is retried with backoff, and the other camera records as if nothing happened."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest

from tests.log_lines import messages
from tests.test_cli_process import REPO, environment
from tests.videos import read_back

TS_PACKET = 188
PES_START = b"\x00\x00\x01\xe0\x00\x00\x80\x00\x00"  # a video PES header: what follows is "H.264"


def valid_start() -> bytes:
    """One second of a real 160x120 H.264 stream in MPEG-TS (PAT, PMT, SPS, frames)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"tune": "zerolatency", "g": "5"}
        for k in range(10):
            image = np.full((120, 160, 3), 20 * k, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def garbage_packets(count: int, rng: np.random.Generator, counter: list[int]) -> bytes:
    """TS packets on the video PID (0x100), each a PES of random bytes: demuxed, never a frame."""
    chunk = bytearray()
    for _ in range(count):
        payload = PES_START + rng.integers(0, 256, TS_PACKET - 4 - len(PES_START), np.uint8).tobytes()
        chunk += bytes([0x47, 0x41, 0x00, 0x10 | counter[0]]) + payload
        counter[0] = (counter[0] + 1) % 16
    return bytes(chunk)


@pytest.fixture
def garbage_server() -> Iterator[str]:
    start = valid_start()
    stop = threading.Event()

    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            rng, counter = np.random.default_rng(0), [0]
            try:
                self.wfile.write(start)
                while not stop.wait(0.02):  # about 0.9 MB/s of packets that decode to nothing
                    self.wfile.write(garbage_packets(100, rng, counter))
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_endless_packets_without_frames_are_retried_and_never_stop_the_other_camera(
    garbage_server: str, tmp_path: Path
) -> None:
    args = ["--source", "demo", "--source", f"junk={garbage_server}", "--max-reconnects", "2"]
    args += ["--stall-timeout", "1", "--timeout", "2", "--max-frames", "60", "--no-display"]
    args += ["--camera-size", "160x120", "--output", str(tmp_path / "rec-{name}.mp4")]
    result = subprocess.run(
        [sys.executable, "-m", "livefaces", *args],
        capture_output=True,
        env=environment(),
        cwd=REPO,
        timeout=120,
    )
    err = result.stderr.decode()
    lines = messages(err)
    assert result.returncode == 1, err  # the junk camera was given up, as --max-reconnects says
    assert "Traceback" not in err
    junk = [line for line in lines if line.startswith("livefaces: [junk]")]
    assert any("next try in" in line and "(attempt 2)" in line for line in junk), err
    assert any("giving up after 2 reconnection attempts" in line for line in junk), err
    assert any(line.startswith("livefaces: [demo] done: 60 frames") for line in lines), err
    assert read_back(tmp_path / "rec-demo.mp4")["frames"] == 60
