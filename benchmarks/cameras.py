"""Many cameras at 1280x720 30 fps on this machine: one livefaces process with a shared, batched
detector against N separate single-camera livefaces processes (issue 10).

    python benchmarks/cameras.py [--cameras 1,2,4,6] [--seconds 20] [--warmup 5] [--modes shared,separate]
                                 [--no-record] [--livefaces-args '--detect-width 640'] [--keep FOLDER]

Cameras: loopback RTSP streams from a real server (tests/rtsp_server.py under Debian's
/usr/bin/python3, GStreamer) serving clips of ../shared/data/videos upscaled to 1280x720 and
encoded once to H.264 at 30 fps in a temporary folder (sent as they are, over TCP), mixed with
`demo` sources at 1280x720 30 fps paced as live cameras. The cameras of an N-camera run are the
first N of: Hamilton (RTSP), ASL (RTSP), demo, Hamilton, ASL, demo.

Each run goes through the real command line, in subprocesses:

- shared: one `python -m livefaces --source c1=... --source c2=... --no-display --live
  --output rec-{name}.mp4 --json faces-{name}.jsonl --duration S` process;
- separate: N such processes of one camera each, started together (what users do today).

Each livefaces process is started through this script's `--probe` mode, which runs the CLI's
`main(argv)` unchanged and samples, twice a second, every camera's counters (frames read, shown,
dropped; the runner's full scans and refinements), the shared detector's load (mean batch, busy
%) and the process's CPU time and resident memory. Rates are taken over the steady window: from
`--warmup` seconds after every camera of the run (all processes) showed its first frame, to the
first moment one of them ended, so start-up (TensorFlow, graph tracing, RTSP probing) is left out.

Per camera: fps in (frames read) and shown against the source's 30, full scans per second,
frames dropped in the window, new-face latency and the recording's frames against seconds x 30.
New-face latency: `demo` knows its true faces (`DemoScene`): from the frame where the crossing
face comes into view (every 8 s) to the first shown frame with a box on it (IoU >= 0.3), in
source time, for every entry after the warm-up. The RTSP clips show faces from their first frame
on (exact mode finds them there), so they have no new face to time after the start-up: "-".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
from frames import REPO, VIDEOS
from rich.console import Console
from rich.table import Table

SIZE = (1280, 720)
FPS = 30
SERVER = REPO / "tests" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
CLIPS = {
    "hamilton": "face_recognition__short_hamilton_clip.mp4",
    "asl": "sample-videos__asl_again.mkv",
}
PLAN = ("hamilton", "asl", "demo", "hamilton", "asl", "demo")
SAMPLE_SECONDS = 0.5
AT_RATE = 0.97  # a camera "keeps its source rate" when it shows at least this share of it
TARGET_SCANS = 5.0
TARGET_RATIO = 1.3


# Clips and the RTSP server.


def fit_1280x720(rgb: np.ndarray) -> np.ndarray:
    """Upscale to 720 lines and pillarbox to 1280 columns (no stretching)."""
    height, width = rgb.shape[:2]
    scaled_width = min(round(width * SIZE[1] / height), SIZE[0])
    scaled = cv2.resize(rgb, (scaled_width, SIZE[1]), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    left = (SIZE[0] - scaled_width) // 2
    canvas[:, left : left + scaled_width] = scaled
    return canvas


def encode_clip(source: Path, path: Path) -> Path:
    """`source` at 1280x720, H.264 at exactly 30 fps, a keyframe every second, no B-frames."""
    with av.open(str(source)) as container:
        frames = [fit_1280x720(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "g": str(FPS), "bf": "0"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def loop_clip(clip: Path, seconds: float, path: Path) -> Path:
    """`clip` repeated (packets copied, timestamps shifted, no re-encoding) to last `seconds`."""
    with av.open(str(clip)) as source:
        video = source.streams.video[0]
        packets = [p for p in source.demux(video) if p.size and p.pts is not None]
        step = packets[1].pts - packets[0].pts
        span = step * len(packets)
        loops = int(np.ceil(seconds / float(span * video.time_base)))
        with av.open(str(path), "w") as target:
            out = target.add_stream_from_template(video)
            for k in range(loops):
                for packet in packets:
                    copy = av.Packet(bytes(packet))
                    copy.pts, copy.dts = packet.pts + k * span, packet.dts + k * span
                    copy.time_base, copy.is_keyframe = packet.time_base, packet.is_keyframe
                    copy.duration = step
                    copy.stream = out
                    target.mux(copy)
    return path


def make_clips(folder: Path, seconds: float) -> dict[str, Path]:
    clips = {}
    for name, file in CLIPS.items():
        path = VIDEOS / file
        if not path.is_file():
            print(f"{path} not found: skipping that clip", file=sys.stderr)
            continue
        base = encode_clip(path, folder / f"{name}_base.mp4")
        clips[name] = loop_clip(base, seconds, folder / f"{name}_1280x720.mp4")
    return clips


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(clips: dict[str, Path], folder: Path, stack: contextlib.ExitStack) -> int:
    """tests/rtsp_server.py serving every clip at /NAME; every client from the file's start."""
    port = free_port()
    args = [SYSTEM_PYTHON, str(SERVER), "--port", str(port)]
    for name, path in clips.items():
        args += ["--file", str(path), "--mount", f"/{name}"]
    log = (folder / "rtsp_server.log").open("w")
    stack.callback(log.close)
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    stack.callback(stop_process, server)
    assert server.stdout is not None
    readable, _, _ = select.select([server.stdout], [], [], 30)
    if not readable or server.stdout.readline().strip() != "READY":
        raise SystemExit(f"the RTSP server did not start: {(folder / 'rtsp_server.log').read_text()}")
    return port


def stop_process(process: subprocess.Popen, seconds: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The probe: the real CLI in this process, sampled from a thread.


def process_sample(pid: int) -> tuple[int, int, int]:
    """Resident memory (bytes), threads and open file descriptors of `pid`, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) * 1024
    threads = int(fields["Threads"])
    descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, threads, descriptors


def tree_sample(root: int) -> tuple[dict[str, float], int]:
    """CPU seconds by role and proportional memory (PSS, bytes) of `root` and every process
    under it: with --ray local, the Ray processes (GCS, raylet, the camera and detector workers)
    are. Roles: "camera" and "detector" for Ray's camera and detector actors (their process
    titles name them), "driver" for `root`, "ray" for the rest."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    cpu = {"driver": 0.0, "camera": 0.0, "detector": 0.0, "ray": 0.0}
    pss = 0
    for pid in tree:
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            role = "driver" if pid == root else "ray"
            role = "camera" if "CameraActor" in title else "detector" if "DetectorWorker" in title else role
            cpu[role] += ticks.get(pid, 0) / os.sysconf("SC_CLK_TCK")
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                    break
    return cpu, pss


def probe(out: Path, argv: list[str]) -> int:
    """Run `livefaces.cli.main(argv)` and write samples of its session's (or, with --ray, its
    fleet's) counters to `out`."""
    from livefaces import cli
    from livefaces.runtime import threaded

    runs: list = []

    def remember(kind: type) -> None:
        original = kind.__init__

        def init(self, *args, **kwargs) -> None:
            original(self, *args, **kwargs)
            runs.append(self)

        kind.__init__ = init  # type: ignore[method-assign]

    remember(threaded.Session)
    with contextlib.suppress(ImportError):
        from livefaces.fleet import ray_fleet

        remember(ray_fleet.Fleet)
    samples: list[dict] = []
    done = threading.Event()
    pid = os.getpid()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            if runs:
                take = fleet_reading if hasattr(runs[0], "hosts") else reading
                try:
                    samples.append(take(runs[0], pid))
                except Exception as error:  # one bad reading must not end the sampling
                    print(f"probe: a reading failed: {type(error).__name__}: {error}", file=sys.stderr)

    sampler = threading.Thread(target=sample, name="probe", daemon=True)
    sampler.start()
    code = 1
    try:
        code = cli.main(argv)
    finally:
        done.set()
        sampler.join(2)
        out.write_text(json.dumps({"code": code, "samples": samples}))
    return code


def usage(pid: int) -> dict:
    roles, pss = tree_sample(pid)
    rss = process_sample(pid)[0]
    return {"t": time.monotonic(), "cpu": sum(roles.values()), "roles": roles, "rss": rss, "pss": pss}


def reading(session, pid: int) -> dict:
    cameras = {}
    for worker in session.workers:
        snap = worker.stats.snapshot()
        runner = worker.setup.runner
        cameras[worker.name] = {
            "alive": worker.alive,
            "captured": snap.captured,
            "shown": snap.displayed,
            "dropped": snap.dropped,
            "scans": runner.full_scans,
            "refines": runner.refinements,
            "latency": snap.latency_ms,
        }
    load = session.service.load()
    return {**usage(pid), "batch": load.mean_batch, "busy": load.busy_percent, "cameras": cameras}


def fleet_reading(fleet, pid: int) -> dict:
    """The same reading from a Ray fleet (its driver's last poll), plus each camera's link."""
    from livefaces.runtime.status import RUNNING

    status, cameras = fleet.status(), {}
    for camera, host in zip(status.cameras, fleet.hosts(), strict=True):
        link = host.link if host is not None else None
        cameras[camera.name] = {
            "alive": camera.state in RUNNING,
            "captured": camera.stats.captured,
            "shown": camera.stats.displayed,
            "dropped": camera.stats.dropped,
            "scans": host.full_scans if host is not None else 0,
            "refines": host.refinements if host is not None else 0,
            "latency": camera.stats.latency_ms,
            "sent": link.sent if link else 0,
            "sent_bytes": link.sent_bytes if link else 0,
            "round_trip": link.round_trip_ms if link else 0.0,
            "link_dropped": link.dropped if link else 0,
        }
    load = status.detector
    batch, busy = (load.mean_batch, load.busy_percent) if load is not None else (0.0, 0.0)
    return {**usage(pid), "batch": batch, "busy": busy, "cameras": cameras}


# Runs.


@dataclass(frozen=True)
class Camera:
    name: str
    kind: str  # a clip name or "demo"
    url: str


@dataclass
class Process:
    cameras: list[Camera]
    probe: Path
    log: Path
    popen: subprocess.Popen
    samples: list[dict] = field(default_factory=list)
    code: int | None = None


def cameras_for(count: int, port: int, clips: dict[str, Path]) -> list[Camera]:
    kinds = [kind for kind in PLAN if kind == "demo" or kind in clips]
    cameras = []
    for k in range(count):
        kind = kinds[k % len(kinds)]
        url = "demo" if kind == "demo" else f"rtsp://127.0.0.1:{port}/{kind}"
        cameras.append(Camera(f"c{k + 1}", kind, url))
    return cameras


def launch(
    cameras: list[Camera], folder: Path, seconds: float, tag: str, record: bool, extra: list[str]
) -> Process:
    argv = [f"--source={c.name}={c.url}" for c in cameras] + extra
    argv += ["--no-display", "--live", "--camera-size", f"{SIZE[0]}x{SIZE[1]}", "--camera-fps", str(FPS)]
    argv += ["--rtsp-transport", "tcp", "--timeout", "60", "--duration", str(seconds)]
    argv += ["--output", str(folder / "rec-{name}.mp4")] if record else []
    argv += ["--json", str(folder / "faces-{name}.jsonl")]
    out, log = folder / f"probe-{tag}.json", folder / f"livefaces-{tag}.log"
    command = [sys.executable, __file__, "--probe", str(out), "--", *argv]
    with log.open("w") as errors:
        popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=folder)
    return Process(cameras, out, log, popen)


def run_mode(
    mode: str, cameras: list[Camera], root: Path, seconds: float, record: bool, extra: list[str]
) -> list[Process]:
    folder = root / f"{mode}-{len(cameras)}"
    folder.mkdir()
    if mode == "shared":
        processes = [launch(cameras, folder, seconds, "all", record, extra)]
    else:
        processes = [launch([camera], folder, seconds, camera.name, record, extra) for camera in cameras]
    return collect(processes, seconds)


def collect(processes: list[Process], seconds: float) -> list[Process]:
    """Wait for every process (stopped if it overruns by 4 minutes) and read its probe."""
    for process in processes:
        try:
            process.code = process.popen.wait(seconds + 240)
        except subprocess.TimeoutExpired:
            stop_process(process.popen)
            process.code = process.popen.returncode
        if process.probe.is_file():
            process.samples = json.loads(process.probe.read_text())["samples"]
    return processes


# Figures.


@dataclass
class CameraFigures:
    camera: Camera
    fps_in: float
    fps_shown: float
    scans: float
    dropped: int
    latency: str
    recorded: str

    @property
    def at_rate(self) -> bool:
        return self.fps_shown >= AT_RATE * FPS


@dataclass
class RunFigures:
    mode: str
    cameras: list[CameraFigures]
    window: float
    batch: float
    busy: str
    cpu: float
    rss_mb: float
    problems: list[str]

    @property
    def total_scans(self) -> float:
        return sum(c.scans for c in self.cameras)

    @property
    def all_at_rate(self) -> bool:
        return bool(self.cameras) and all(c.at_rate for c in self.cameras)


def steady_window(processes: list[Process], warmup: float) -> tuple[float, float] | None:
    """From `warmup` s after every camera showed a frame to when the first camera ended."""
    starts, ends = [], []
    for process in processes:
        known = [s for s in process.samples if s["cameras"]]  # a fleet lists its cameras once started
        shown = [s["t"] for s in known if all(c["shown"] > 0 for c in s["cameras"].values())]
        alive = [s["t"] for s in known if all(c["alive"] for c in s["cameras"].values())]
        if not shown or not alive:
            return None
        starts.append(shown[0] + warmup)
        ends.append(alive[-1])
    start, end = max(starts), min(ends)
    return (start, end) if end - start >= 2 * SAMPLE_SECONDS else None


def between(samples: list[dict], start: float, end: float) -> tuple[dict, dict]:
    inside = [s for s in samples if start <= s["t"] <= end]
    return inside[0], inside[-1]


def figures(mode: str, processes: list[Process], folder: Path, seconds: float, warmup: float) -> RunFigures:
    problems = [
        f"{', '.join(c.name for c in p.cameras)}: exit code {p.code}: {last_lines(p.log)}"
        for p in processes
        if p.code != 0
    ]
    window = steady_window(processes, warmup)
    if window is None:
        problems.append("no steady window (a camera never started, or ended before the warm-up was over)")
        return RunFigures(mode, [], 0.0, 0.0, "-", 0.0, 0.0, problems)
    start, end = window
    rows, cpu, rss, batches, busies = [], 0.0, 0.0, [], []
    for process in processes:
        first, last = between(process.samples, start, end)
        span = last["t"] - first["t"]
        cpu += 100 * (last["cpu"] - first["cpu"]) / span
        rss += max(s["rss"] for s in process.samples) / 2**20
        inside = [s for s in process.samples if start <= s["t"] <= end]
        batches += [s["batch"] for s in inside if s["batch"]]
        busies.append(statistics.mean(s["busy"] for s in inside))
        for camera in process.cameras:
            a, b = first["cameras"][camera.name], last["cameras"][camera.name]
            rows.append(
                CameraFigures(
                    camera,
                    (b["captured"] - a["captured"]) / span,
                    (b["shown"] - a["shown"]) / span,
                    (b["scans"] - a["scans"]) / span,
                    b["dropped"] - a["dropped"],
                    new_face_latency(camera, folder / f"faces-{camera.name}.jsonl", warmup),
                    recorded(folder / f"rec-{camera.name}.mp4", seconds),
                )
            )
    busy = f"{busies[0]:.0f}" if len(busies) == 1 else " ".join(f"{b:.0f}" for b in busies)
    batch = statistics.mean(batches) if batches else 0.0
    return RunFigures(mode, rows, end - start, batch, busy, cpu, rss, problems)


def last_lines(log: Path, count: int = 3) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def box_iou(a: list[float], b: np.ndarray) -> float:
    x1, y1, x2, y2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    w = max(0.0, min(x2, b[2]) - max(x1, b[0]))
    h = max(0.0, min(y2, b[3]) - max(y1, b[1]))
    inter = w * h
    union = (x2 - x1) * (y2 - y1) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def new_face_latency(camera: Camera, log: Path, warmup: float) -> str:
    if not log.is_file():
        return "-"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not records:
        return "-"
    if camera.kind != "demo":
        return "-"  # faces from the first frame on: only start-up would be measured
    from livefaces.demo import DemoScene

    scene = DemoScene(SIZE[0], SIZE[1], FPS)
    shown = {r["frame"]: r["faces"] for r in records}
    first, last = records[0]["frame"], records[-1]["frame"]
    delays = []
    for index in range(first + round(warmup * FPS), last + 1):
        if 0 not in scene.truth_by_face(index)[0] or 0 in scene.truth_by_face(index - 1)[0]:
            continue  # not the frame where the crossing face comes into view
        for later in range(index, last + 1):
            faces, boxes = scene.truth_by_face(later)
            if 0 not in faces:
                break  # it left again unseen
            truth = boxes[faces.index(0)]
            if any(box_iou(face["box"], truth) >= 0.3 for face in shown.get(later, [])):
                delays.append(1000 * (later - index) / FPS)
                break
    return " ".join(f"{d:.0f}" for d in delays) if delays else "-"


def recorded(path: Path, seconds: float) -> str:
    if not path.is_file():
        return "-"
    try:
        with av.open(str(path)) as container:
            frames = sum(1 for p in container.demux(video=0) if p.size)
    except av.error.FFmpegError as error:
        return f"unreadable ({error})"
    return f"{frames}/{round(seconds * FPS)}"


# Tables.


def camera_table(count: int, runs: list[RunFigures]) -> Table:
    table = Table(title=f"{count} camera{'s' if count > 1 else ''} at {SIZE[0]}x{SIZE[1]} {FPS} fps")
    columns = ("mode", "camera", "source", "fps in", "fps shown", "full scans/s", "dropped")
    columns += ("new-face latency ms", "recorded / s x 30")
    for column in columns:
        table.add_column(column, justify="left" if column in ("mode", "camera", "source") else "right")
    for run in runs:
        for row in run.cameras:
            style = None if row.at_rate else "red"
            table.add_row(
                run.mode,
                row.camera.name,
                row.camera.kind,
                f"{row.fps_in:.1f}",
                f"{row.fps_shown:.1f}",
                f"{row.scans:.1f}",
                str(row.dropped),
                row.latency,
                row.recorded,
                style=style,
            )
        if run.cameras:
            total_shown = sum(c.fps_shown for c in run.cameras)
            table.add_row(
                run.mode,
                "total",
                "",
                "",
                f"{total_shown:.1f}",
                f"{run.total_scans:.1f}",
                str(sum(c.dropped for c in run.cameras)),
                "",
                "",
                style="bold",
                end_section=True,
            )
    return table


def summary_table(results: dict[int, dict[str, RunFigures]]) -> Table:
    table = Table(title="summary (steady window; separate: sums over the processes, busy % per process)")
    columns = ("cameras", "mode", "window s", "total full scans/s", "min scans/s per camera")
    columns += ("all at source rate", "detector mean batch", "detector busy %", "CPU %", "RSS MB")
    for column in columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for count, runs in results.items():
        for mode, run in runs.items():
            if not run.cameras:
                table.add_row(str(count), mode, "-", *["-"] * 7)
                continue
            table.add_row(
                str(count),
                mode,
                f"{run.window:.1f}",
                f"{run.total_scans:.1f}",
                f"{min(c.scans for c in run.cameras):.1f}",
                "yes" if run.all_at_rate else "no",
                f"{run.batch:.2f}",
                run.busy,
                f"{run.cpu:.0f}",
                f"{run.rss_mb:.0f}",
            )
    return table


def comparison_table(results: dict[int, dict[str, RunFigures]]) -> Table:
    table = Table(title=f"shared / separate: total full scans per second (target >= {TARGET_RATIO}x at 4)")
    for column in (
        "cameras",
        "shared",
        "separate",
        "ratio",
        "every camera at source rate (shared / separate)",
    ):
        table.add_column(column, justify="right")
    for count, runs in results.items():
        shared, separate = runs.get("shared"), runs.get("separate")
        if not shared or not separate or not shared.cameras or not separate.cameras:
            continue
        ratio = shared.total_scans / separate.total_scans if separate.total_scans else float("inf")
        rates = f"{'yes' if shared.all_at_rate else 'no'} / {'yes' if separate.all_at_rate else 'no'}"
        table.add_row(
            str(count), f"{shared.total_scans:.1f}", f"{separate.total_scans:.1f}", f"{ratio:.2f}", rates
        )
    return table


def targets(results: dict[int, dict[str, RunFigures]]) -> list[str]:
    lines = []
    four = results.get(4, {})
    shared, separate = four.get("shared"), four.get("separate")
    if shared and shared.cameras:
        scans_ok = all(c.scans >= TARGET_SCANS for c in shared.cameras)
        lines.append(
            "4 cameras in one process: every camera at its source rate: "
            f"{'yes' if shared.all_at_rate else 'NO'}; >= {TARGET_SCANS:g} full scans/s each: "
            f"{'yes' if scans_ok else 'NO'} "
            f"(min {min(c.scans for c in shared.cameras):.1f})"
        )
        if separate and separate.cameras and separate.total_scans:
            ratio = shared.total_scans / separate.total_scans
            lines.append(
                f"4 cameras: shared / separate total full scans = {ratio:.2f} (target >= {TARGET_RATIO}): "
                f"{'yes' if ratio >= TARGET_RATIO and shared.all_at_rate else 'NO'}"
            )
    six = results.get(6, {}).get("shared")
    if six and six.cameras:
        at_rate = sum(c.at_rate for c in six.cameras)
        shown = [c.fps_shown for c in six.cameras]
        lines.append(
            f"6 cameras in one process: {at_rate}/6 at source rate, shown {min(shown):.1f}"
            f"-{max(shown):.1f} fps, full scans/s per camera "
            f"{min(c.scans for c in six.cameras):.1f}-{max(c.scans for c in six.cameras):.1f}"
        )
    return lines


def main() -> None:
    if "--probe" in sys.argv:
        at = sys.argv.index("--probe")
        rest = sys.argv[at + 2 :]
        sys.exit(probe(Path(sys.argv[at + 1]), rest[1:] if rest[:1] == ["--"] else rest))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="1,2,4,6", help="camera counts to run (default: 1,2,4,6)")
    parser.add_argument("--seconds", type=float, default=20.0, help="each run's --duration (default: 20)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds left out at the start (default: 5)"
    )
    parser.add_argument("--modes", default="shared,separate", help="shared, separate or both (default)")
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="leave out the recordings (JSON only)"
    )
    parser.add_argument(
        "--livefaces-args",
        default="",
        help="more livefaces options for every process, e.g. '--detect-width 640'",
    )
    parser.add_argument("--keep", type=Path, help="keep the recordings, logs and probes in this folder")
    args = parser.parse_args()
    counts = [int(v) for v in args.cameras.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if not Path(SYSTEM_PYTHON).is_file():
        raise SystemExit(f"{SYSTEM_PYTHON} not found: the RTSP server needs Debian's GStreamer bindings")
    console = Console(width=None if sys.stdout.isatty() else 150)
    results: dict[int, dict[str, RunFigures]] = {}
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        # Each client starts the clip from its beginning when it connects, before TensorFlow loads.
        clips = make_clips(root, args.seconds + 120)
        port = start_server(clips, root, stack)
        print(
            f"clips: {', '.join(clips) or 'none'} over rtsp://127.0.0.1:{port}/; plus demo", file=sys.stderr
        )
        for count in counts:
            cameras = cameras_for(count, port, clips)
            for mode in modes:
                processes = run_mode(
                    mode, cameras, root, args.seconds, args.record, args.livefaces_args.split()
                )
                folder = root / f"{mode}-{count}"
                results.setdefault(count, {})[mode] = figures(
                    mode, processes, folder, args.seconds, args.warmup
                )
                print(f"done: {count} cameras, {mode}", file=sys.stderr)
            console.print(camera_table(count, list(results[count].values())))
            for run in results[count].values():
                for problem in run.problems:
                    console.print(f"{count} cameras, {run.mode}: {problem}", style="red", markup=False)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for item in root.iterdir():
                if item.is_dir():
                    shutil.copytree(item, args.keep / item.name, dirs_exist_ok=True)
    console.print(summary_table(results))
    console.print(comparison_table(results))
    for line in targets(results):
        console.print(line, markup=False)


if __name__ == "__main__":
    main()
