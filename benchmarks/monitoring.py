"""livefaces as an unattended camera service (issue 11): cameras whose server keeps dying, and a
long run that must not grow.

    python benchmarks/monitoring.py churn [--restarts 100] [--up 3,6] [--down 0.2,1.5] [--keep FOLDER]
    python benchmarks/monitoring.py soak [--minutes 10] [--every 10] [--keep FOLDER]

Cameras: two loopback RTSP streams from a real server (tests/rtsp_server.py under Debian's
/usr/bin/python3, GStreamer) serving clips of ../shared/data/videos upscaled to 1280x720 30 fps
(benchmarks/cameras.py makes them; they loop long enough for the run). livefaces runs as users
run it: `python -m livefaces --source a=rtsp://... --source b=rtsp://... --no-display --events
events.jsonl --json faces-{name}.jsonl --output rec-{name}.mp4`, in its own process.

churn: the server is killed (SIGKILL: no goodbye to the clients) and restarted on the same port
`--restarts` times, up for a random 3-6 s (a reconnection takes about 2 s, most of it FFmpeg
probing the stream) and down for a random 0.2-1.5 s each time. Reported: restarts survived
(livefaces still running at the end, exit 0 after SIGINT), stream_down / stream_up events seen
against the restarts made, and the video lost per restart: the time without frames (gaps longer
than 0.5 s in a camera's frame times, its JSON lines) beyond the time the server was really down,
divided by the restarts: time livefaces could have recorded and did not (reconnect delay). Every
recording is decoded to the end with PyAV.

soak: `--minutes` of the two cameras with tracking on (the default for live sources), recording
in one-minute segments, with the process's resident memory, thread count and open file
descriptors sampled every `--every` seconds from /proc. Reported: the series and, after the
warm-up (`--warmup`, 5 minutes: glibc's arenas and TensorFlow's caches reach their working size),
each one's range, the trend of RSS (least-squares slope, MB per minute: one-minute segments make
RSS saw up and down by tens of MB, so first-to-last differences mislead) and the mean RSS of the
steady window's first and second halves; at the end, the app's own
Prometheus endpoint (`--metrics`) is scraped for the latency livefaces adds from a decoded frame
to every output written (window tile, recording, JSON), per camera, from its histogram.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import av
from cameras import SERVER, SYSTEM_PYTHON, encode_clip, free_port, loop_clip, process_sample, stop_process
from frames import REPO, VIDEOS
from rich.console import Console
from rich.table import Table

CLIPS = {"a": "face_recognition__short_hamilton_clip.mp4", "b": "sample-videos__asl_again.mkv"}
GAP = 0.5  # seconds without frames that count as a gap


def make_clips(folder: Path, seconds: float) -> dict[str, Path]:
    clips = {}
    for name, file in CLIPS.items():
        path = VIDEOS / file
        if not path.is_file():
            raise SystemExit(f"{path} not found: the monitoring benchmark needs ../shared/data/videos")
        base = encode_clip(path, folder / f"{name}_base.mp4")
        clips[name] = loop_clip(base, seconds, folder / f"{name}_1280x720.mp4")
    return clips


def start_server(clips: dict[str, Path], port: int, log: Path) -> subprocess.Popen:
    """The RTSP server on `port`, READY once it listens."""
    args = [SYSTEM_PYTHON, str(SERVER), "--port", str(port)]
    for name, path in clips.items():
        args += ["--file", str(path), "--mount", f"/{name}"]
    with log.open("a") as errors:
        server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert server.stdout is not None
    readable, _, _ = select.select([server.stdout], [], [], 30)
    if not readable or server.stdout.readline().strip() != "READY":
        server.kill()
        raise SystemExit(f"the RTSP server did not start on port {port}: see {log}")
    return server


def start_livefaces(folder: Path, port: int, extra: list[str]) -> subprocess.Popen:
    argv = [sys.executable, "-m", "livefaces"]
    argv += [f"--source={name}=rtsp://127.0.0.1:{port}/{name}" for name in CLIPS]
    argv += ["--no-display", "--events", str(folder / "events.jsonl")]
    argv += ["--json", str(folder / "faces-{name}.jsonl"), "--output", str(folder / "rec-{name}.mp4")]
    argv += extra
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (folder / "livefaces.log").open("w") as log:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=folder)


def stop(process: subprocess.Popen) -> int:
    """SIGINT (as a user's Ctrl-C), a minute to finish its recordings, then SIGKILL; its exit code."""
    stop_process(process, 60.0)
    return process.returncode


def wait_for_frames(folder: Path, seconds: float = 120.0) -> None:
    """Until every camera wrote a JSON line (TensorFlow loaded, streams open)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_lines(folder / f"faces-{name}.jsonl") for name in CLIPS):
            return
        time.sleep(0.5)
    raise SystemExit(f"livefaces showed no frame within {seconds:.0f} s: see {folder / 'livefaces.log'}")


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = []
    for text in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(text))
    return lines


def decoded_frames(path: Path) -> tuple[int, str | None]:
    """Frames a player gets out of the recording, and the error that stopped it, if any."""
    frames = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                frames += 1
    except av.error.FFmpegError as error:
        return frames, str(error)
    return frames, None


# churn


@dataclass
class Outage:
    down_at: float  # time.time() of the kill
    up_at: float  # time.time() the restarted server said READY


@dataclass
class Churn:
    outages: list[Outage] = field(default_factory=list)
    alive: bool = True
    code: int | None = None


def churn(args: argparse.Namespace, folder: Path) -> None:
    rng = random.Random(args.seed)
    up_range, down_range = _range(args.up), _range(args.down)
    seconds = args.restarts * (sum(up_range) / 2 + sum(down_range) / 2) + 180
    clips = make_clips(folder, seconds)
    port = free_port()
    server_log = folder / "rtsp_server.log"
    server = start_server(clips, port, server_log)
    extra = ["--stall-timeout", str(args.stall_timeout), *args.livefaces_args.split()]
    app = start_livefaces(folder, port, extra)
    result = Churn()
    try:
        wait_for_frames(folder)
        for restart in range(args.restarts):
            time.sleep(rng.uniform(*up_range))
            if app.poll() is not None:
                result.alive = False
                break
            down_at = time.time()
            server.kill()
            server.wait()
            time.sleep(rng.uniform(*down_range))
            server = start_server(clips, port, server_log)
            result.outages.append(Outage(down_at, time.time()))
            print(f"restart {restart + 1}/{args.restarts}", end="\r", file=sys.stderr)
        time.sleep(args.settle)
        result.alive = result.alive and app.poll() is None
    finally:
        result.code = stop(app)
        server.kill()
        server.wait()
    report_churn(result, folder)


def report_churn(result: Churn, folder: Path) -> None:
    console = Console()
    events = _lines(folder / "events.jsonl")
    table = Table(title=f"churn: {len(result.outages)} server restarts (SIGKILL) against 2 cameras")
    columns = ("camera", "stream_down", "stream_up", "gaps > 0.5 s", "s without frames per restart",
               "of which server down", "lost per restart s", "recording (decoded / JSON)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    restarts = max(len(result.outages), 1)
    down = sum(o.up_at - o.down_at for o in result.outages) / restarts
    for name in CLIPS:
        kinds = [e["event"] for e in events if e.get("camera") == name]
        lines = _lines(folder / f"faces-{name}.jsonl")
        gaps = frameless_gaps(lines)
        dark = sum(gaps) / restarts
        frames, error = decoded_frames(folder / f"rec-{name}.mp4")
        shown = f"{frames} / {len(lines)}" + (f" ({error})" if error else "")
        table.add_row(name, str(kinds.count("stream_down")), str(kinds.count("stream_up")), str(len(gaps)),
                      f"{dark:.2f}", f"{down:.2f}", f"{dark - down:.2f}", shown)  # fmt: skip
    console.print(table)
    console.print(
        f"livefaces running after the last restart: {'yes' if result.alive else 'NO'}; "
        f"exit code after SIGINT: {result.code}; folder: {folder}"
    )


def frameless_gaps(lines: list[dict]) -> list[float]:
    """Every stretch without frames longer than `GAP`, in seconds. Frame times in the JSON lines
    are the camera's session clock; live frames are stamped on arrival, so a gap in them is
    wall-clock time without frames."""
    times = [line["time"] for line in lines]
    return [b - a for a, b in itertools.pairwise(times) if b - a > GAP]


# soak


def soak(args: argparse.Namespace, folder: Path) -> None:
    seconds = args.minutes * 60
    clips = make_clips(folder, seconds + 240)
    port = free_port()
    server = start_server(clips, port, folder / "rtsp_server.log")
    metrics_port = free_port()
    extra = ["--segment-time", "60", "--metrics", str(metrics_port), *args.livefaces_args.split()]
    app = start_livefaces(folder, port, extra)
    samples: list[tuple[float, int, int, int]] = []
    latency: dict[str, str] = {}
    try:
        wait_for_frames(folder)
        started = time.monotonic()
        while time.monotonic() - started < seconds and app.poll() is None:
            samples.append((time.monotonic() - started, *process_sample(app.pid)))
            time.sleep(args.every)
        latency = scrape_latency(metrics_port)
    finally:
        code = stop(app)
        server.kill()
        server.wait()
    report_soak(samples, code, folder, args.warmup)
    for camera, text in latency.items():
        Console().print(f"camera {camera}: decoded frame to every output written: {text}")


def scrape_latency(port: int) -> dict[str, str]:
    """Median and 95th percentile of each camera's end-to-end latency histogram (bucket bounds)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "livefaces_end_to_end_latency_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets.setdefault(sample.labels["camera"], []).append((bound, sample.value))
    return {camera: _percentiles(sorted(rows)) for camera, rows in buckets.items()}


def _percentiles(rows: list[tuple[float, float]]) -> str:
    total = rows[-1][1]
    if not total:
        return "no frames"

    def at(share: float) -> str:
        bound = next(b for b, count in rows if count >= share * total)
        return f"<= {bound * 1000:.0f} ms"

    return f"median {at(0.5)}, p95 {at(0.95)}, p99 {at(0.99)} ({total:.0f} frames)"


def report_soak(
    samples: list[tuple[float, int, int, int]], code: int | None, folder: Path, warmup_minutes: float
) -> None:
    console = Console()
    table = Table(title="soak: two 720p30 RTSP cameras, tracking, 60 s segments")
    for column in ("t s", "RSS MB", "threads", "open fds"):
        table.add_column(column, justify="right")
    for t, rss, threads, fds in samples:
        table.add_row(f"{t:.0f}", f"{rss / 1e6:.0f}", str(threads), str(fds))
    console.print(table)
    steady = [s for s in samples if s[0] >= warmup_minutes * 60]
    if len(steady) >= 4:
        minutes = [t / 60 for t, *_ in steady]
        rss = [r / 1e6 for _, r, _, _ in steady]
        slope = statistics.linear_regression(minutes, rss).slope
        half = len(rss) // 2
        console.print(
            f"after the {warmup_minutes:g} min warm-up ({len(steady)} samples): RSS {min(rss):.0f}-"
            f"{max(rss):.0f} MB, trend {slope:+.2f} MB/min, mean {statistics.fmean(rss[:half]):.0f} MB "
            f"(first half) -> {statistics.fmean(rss[half:]):.0f} MB (second half); threads "
            f"{min(s[2] for s in steady)}-{max(s[2] for s in steady)}, open fds "
            f"{min(s[3] for s in steady)}-{max(s[3] for s in steady)}"
        )
    segments = sorted(folder.glob("rec-*.mp4"))
    decoded = [decoded_frames(path) for path in segments]
    broken = [path.name for path, (_, error) in zip(segments, decoded) if error]
    console.print(
        f"{len(segments)} segments, {sum(f for f, _ in decoded)} frames decoded, unplayable: "
        f"{', '.join(broken) or 'none'}; exit code after SIGINT: {code}; folder: {folder}"
    )


def _range(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.split(","))
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    churn_args = modes.add_parser("churn", help="server restarts against two cameras")
    churn_args.add_argument("--restarts", type=int, default=100)
    churn_args.add_argument("--up", default="3,6", help="seconds the server stays up: LOW,HIGH")
    churn_args.add_argument("--down", default="0.2,1.5", help="seconds the server stays down: LOW,HIGH")
    churn_args.add_argument("--settle", type=float, default=15.0, help="seconds after the last restart")
    churn_args.add_argument("--stall-timeout", type=float, default=2.0)
    churn_args.add_argument("--seed", type=int, default=11)
    soak_args = modes.add_parser("soak", help="a long run sampled for growth")
    soak_args.add_argument("--minutes", type=float, default=10.0)
    soak_args.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    soak_args.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the trend")
    for sub in (churn_args, soak_args):
        sub.add_argument("--livefaces-args", default="", help="more livefaces options")
        sub.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = args.keep
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livefaces-monitoring-")))
        (churn if args.mode == "churn" else soak)(args, folder)


if __name__ == "__main__":
    main()
