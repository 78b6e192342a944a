"""What the web view (issue 13) costs the pipeline, and how fast `POST /api/detect` answers.

    python benchmarks/web.py [--seconds 20] [--viewers 0,1,5] [--requests 40]

Part 1: the real app (`python -m livefaces`) on one 1280x720 30 fps live camera (`demo`,
tracking), served with `--http`. For 0, 1 and 5 viewers reading its MJPEG stream (full size,
the stream's default 10 fps), over `--seconds` after a warm-up: the camera's fps shown (the
app's own `/api/cameras`), the frames each viewer received per second, and the app's CPU
(from /proc, user + system) and resident memory.

Part 2: `POST /api/detect` with 640x480 JPEGs (frames of ../shared/data/videos, else the bundled
photo) from 1 and 8 concurrent clients, while the app also serves one 640x480 demo camera:
latency (median, p95) and requests per second; against `MTCNN.detect_faces` on the same decoded
images in this process (no camera beside it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
from cameras import free_port, process_sample, stop_process
from frames import REPO, real_frames
from rich.console import Console
from rich.table import Table

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_app(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "livefaces", "--no-display", "--live", "--http", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app ended early: {' '.join(command)}")
        try:
            status, body = get(port, "/api/cameras")
            if status == 200 and b'"state": "online"' in body and b'"calls": 0,' not in body:
                return process, port
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the app did not come up within 180 s")


class Viewer(threading.Thread):
    """One MJPEG client counting the pictures it receives."""

    def __init__(self, port: int, path: str, stop_event: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.stop_event = port, path, stop_event
        self.frames = 0

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", self.path)
        response = connection.getresponse()
        while not self.stop_event.is_set():
            response.readline()
            length = 0
            while (line := response.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length"):
                    length = int(line.split(b":")[1])
            response.read(length + 2)
            self.frames += 1
        connection.close()


def shown_fps(port: int) -> float:
    import json

    return json.loads(get(port, "/api/cameras")[1])["cameras"][0]["stats"]["display_fps"]


def viewers_part(seconds: float, counts: list[int]) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for count in counts:
        process, port = start_app("--source", "demo", "--camera-size", "1280x720", "--duration", "600")
        try:
            stop_event = threading.Event()
            viewers = [Viewer(port, "/api/cameras/demo/stream.mjpg", stop_event) for _ in range(count)]
            for viewer in viewers:
                viewer.start()
            time.sleep(5)  # warm-up: the viewers connected, the tracker settled
            received = [viewer.frames for viewer in viewers]
            cpu, start = cpu_seconds(process.pid), time.monotonic()
            fps_samples = []
            while time.monotonic() - start < seconds:
                time.sleep(1)
                fps_samples.append(shown_fps(port))
            elapsed = time.monotonic() - start
            cpu_percent = 100 * (cpu_seconds(process.pid) - cpu) / elapsed
            per_viewer = [(v.frames - r) / elapsed for v, r in zip(viewers, received)]
            rows.append(
                (
                    count,
                    statistics.median(fps_samples),
                    statistics.mean(per_viewer) if per_viewer else 0.0,
                    cpu_percent,
                    process_sample(process.pid)[0] / 2**20,
                )
            )
            stop_event.set()
        finally:
            stop_process(process, 60.0)
    return rows


def jpegs() -> tuple[list[bytes], list, str]:
    frames, origin = real_frames(per_video=5)
    encoded, decoded = [], []
    for rgb in frames:
        bgr = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (640, 480), interpolation=cv2.INTER_AREA)
        encoded.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        decoded.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return encoded, decoded, origin


def post(port: int, body: bytes) -> float:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/api/detect", body=body, headers={"Content-Type": "image/jpeg"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"POST /api/detect answered {response.status}")
    finally:
        connection.close()
    return time.perf_counter() - start


def detect_part(requests: int, bodies: list[bytes]) -> list[tuple[str, float, float, float]]:
    rows = []
    process, port = start_app("--source", "demo", "--duration", "600")
    try:
        for body in bodies[:3]:
            post(port, body)  # warm: the graphs for 640x480 traced
        for clients in (1, 8):
            work = [bodies[i % len(bodies)] for i in range(requests * clients)]
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                latencies = list(pool.map(lambda body: post(port, body), work))
            elapsed = time.perf_counter() - start
            rows.append((f"POST /api/detect, {clients} client(s)", *summary(latencies), len(work) / elapsed))
    finally:
        stop_process(process, 60.0)
    return rows


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def in_process(images: list, requests: int) -> tuple[str, float, float, float]:
    from livefaces import MTCNN

    detector = MTCNN()
    for image in images[:3]:
        detector.detect_faces(image)
    latencies = []
    start = time.perf_counter()
    for i in range(requests):
        began = time.perf_counter()
        detector.detect_faces(images[i % len(images)])
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    return ("detect_faces in process", *summary(latencies), requests / elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--viewers", default="0,1,5")
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--parts", default="viewers,detect")
    args = parser.parse_args()
    console = Console()
    console.print(f"load average before: {os.getloadavg()[0]:.2f}")
    if "viewers" in args.parts:
        table = Table(title="one 1280x720 30 fps camera (demo, tracking) and its MJPEG viewers")
        for column in ("viewers", "fps shown", "frames/s per viewer", "app CPU %", "RSS MB"):
            table.add_column(column, justify="right")
        counts = [int(v) for v in args.viewers.split(",")]
        for count, fps, per_viewer, cpu, rss in viewers_part(args.seconds, counts):
            shown = f"{per_viewer:.1f}" if count else "-"
            table.add_row(str(count), f"{fps:.1f}", shown, f"{cpu:.0f}", f"{rss:.0f}")
        console.print(table)
    if "detect" in args.parts:
        bodies, images, origin = jpegs()
        table = Table(title=f"face detection of 640x480 JPEGs ({origin})")
        for column in ("", "median ms", "p95 ms", "images/s"):
            table.add_column(column, justify="right")
        rows = [*detect_part(args.requests, bodies), in_process(images, args.requests * 2)]
        for name, median, p95, rate in rows:
            table.add_row(name, f"{median:.1f}", f"{p95:.1f}", f"{rate:.1f}")
        console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
