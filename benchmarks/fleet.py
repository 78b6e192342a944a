"""The same cameras through Ray (`--ray local`) against one process, in the same run (issue 14).

    python benchmarks/fleet.py [--cameras 2,4] [--seconds 30] [--warmup 8] [--detectors 1]
                               [--no-record] [--livefaces-args '--detect-width 640']

The cameras, the clips, the loopback RTSP server and the probe are benchmarks/cameras.py's: N
cameras at 1280x720 30 fps (Hamilton and ASL over RTSP, `demo`), each run the real command line
(`--no-display --live --output rec-{name}.mp4 --json faces-{name}.jsonl --duration S`) in a
subprocess, sampled twice a second. "one process" is that command as it is; "ray" adds
`--ray local --ray-detectors D`: a local Ray cluster in the driver's process tree, one camera
actor per camera and D detector actors (the camera workers send the detector the pyramid input
and the refinement patches, not the frame).

Per camera: fps in and shown against the source's 30, full scans per second, capture-to-display
latency (the median the panel shows) and new-face latency on `demo` (from the frame the crossing
face enters to the first shown frame with its box). Through Ray, also what crossed the wire:
requests sent per second, bytes sent per captured frame and per request, the mean exchange round
trip, and requests dropped.

Per run: CPU % and memory (PSS) of the whole process tree (the Ray GCS, raylet and workers are in
it), CPU milliseconds per shown frame, split by process (the driver; the camera actors; the
detector actors; the rest of Ray: GCS, raylet, idle workers), and the overhead per frame: ray's
CPU ms per shown frame minus one process's, over the same cameras in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cameras as bench
from rich.console import Console
from rich.table import Table

MODES = {"one process": [], "ray": ["--ray", "local"]}
ROLES = ("driver", "camera", "detector", "ray")


@dataclass
class Wire:
    """One camera's link through Ray over the steady window."""

    requests_per_second: float
    bytes_per_frame: float
    bytes_per_request: float
    round_trip_ms: float
    dropped: int


@dataclass
class Run:
    mode: str
    figures: bench.RunFigures
    latency_ms: dict[str, float]
    refines: dict[str, float]
    wire: dict[str, Wire]
    cpu_ms_per_frame: float
    pss_mb: float
    role_ms_per_frame: dict[str, float]


def measure(mode: str, processes: list[bench.Process], folder: Path, seconds: float, warmup: float) -> Run:
    figures = bench.figures(mode, processes, folder, seconds, warmup)
    latency: dict[str, float] = {}
    wire: dict[str, Wire] = {}
    window = bench.steady_window(processes, warmup)
    if window is None:
        return Run(mode, figures, latency, {}, wire, 0.0, 0.0, {})
    (process,) = processes
    inside = [s for s in process.samples if window[0] <= s["t"] <= window[1]]
    first, last = inside[0], inside[-1]
    span = last["t"] - first["t"]
    refines: dict[str, float] = {}
    for name, camera in last["cameras"].items():
        latency[name] = statistics.median(s["cameras"][name]["latency"] for s in inside)
        refines[name] = (camera["refines"] - first["cameras"][name]["refines"]) / span
        if "sent" not in camera:
            continue
        a = first["cameras"][name]
        sent, sent_bytes = camera["sent"] - a["sent"], camera["sent_bytes"] - a["sent_bytes"]
        frames = camera["captured"] - a["captured"]
        wire[name] = Wire(
            sent / span,
            sent_bytes / frames if frames else 0.0,
            sent_bytes / sent if sent else 0.0,
            camera["round_trip"],
            camera["link_dropped"] - a["link_dropped"],
        )
    shown = sum(last["cameras"][n]["shown"] - first["cameras"][n]["shown"] for n in last["cameras"])
    per_frame = 1000 / shown if shown else 0.0
    cpu_ms = (last["cpu"] - first["cpu"]) * per_frame
    roles = {role: (last["roles"][role] - first["roles"][role]) * per_frame for role in last["roles"]}
    pss = max(s["pss"] for s in process.samples) / 2**20
    return Run(mode, figures, latency, refines, wire, cpu_ms, pss, roles)


def camera_table(count: int, runs: list[Run]) -> Table:
    table = Table(title=f"{count} cameras at {bench.SIZE[0]}x{bench.SIZE[1]} {bench.FPS} fps")
    columns = ("mode", "camera", "source", "fps in", "fps shown", "full scans/s", "refinements/s")
    columns += ("dropped", "latency ms", "new-face ms", "requests/s", "KB sent/frame", "KB/request")
    columns += ("round trip ms", "requests dropped")
    for column in columns:
        table.add_column(column, justify="left" if column in ("mode", "camera", "source") else "right")
    for run in runs:
        for row in run.figures.cameras:
            name = row.camera.name
            wire = run.wire.get(name)
            link = ["-"] * 5
            if wire is not None:
                link = [
                    f"{wire.requests_per_second:.1f}",
                    f"{wire.bytes_per_frame / 1000:.1f}",
                    f"{wire.bytes_per_request / 1000:.1f}",
                    f"{wire.round_trip_ms:.0f}",
                    str(wire.dropped),
                ]
            table.add_row(
                run.mode,
                name,
                row.camera.kind,
                f"{row.fps_in:.1f}",
                f"{row.fps_shown:.1f}",
                f"{row.scans:.1f}",
                f"{run.refines.get(name, 0.0):.1f}",
                str(row.dropped),
                f"{run.latency_ms.get(name, 0.0):.0f}",
                row.latency,
                *link,
                style=None if row.at_rate else "red",
                end_section=row is run.figures.cameras[-1],
            )
    return table


def summary_table(results: dict[int, dict[str, Run]]) -> Table:
    table = Table(title="per run (steady window; CPU and memory of the whole process tree)")
    columns = ("cameras", "mode", "window s", "fps shown (sum)", "full scans/s (sum)", "all at rate")
    columns += ("detector batch", "CPU %", "CPU ms/frame", "overhead ms/frame")
    columns += ("driver / camera / detector / ray ms/frame", "PSS MB")
    for column in columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for count, runs in results.items():
        base = runs.get("one process")
        for mode, run in runs.items():
            f = run.figures
            if not f.cameras:
                table.add_row(str(count), mode, *["-"] * 10)
                continue
            overhead = "-"
            if mode != "one process" and base is not None and base.figures.cameras:
                overhead = f"{run.cpu_ms_per_frame - base.cpu_ms_per_frame:+.1f}"
            table.add_row(
                str(count),
                mode,
                f"{f.window:.1f}",
                f"{sum(c.fps_shown for c in f.cameras):.1f}",
                f"{f.total_scans:.1f}",
                "yes" if f.all_at_rate else "no",
                f"{f.batch:.2f}",
                f"{f.cpu:.0f}",
                f"{run.cpu_ms_per_frame:.1f}",
                overhead,
                " / ".join(f"{run.role_ms_per_frame.get(r, 0.0):.1f}" for r in ROLES),
                f"{run.pss_mb:.0f}",
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="2,4", help="camera counts to run (default: 2,4)")
    parser.add_argument("--seconds", type=float, default=30.0, help="each run's --duration (default: 30)")
    parser.add_argument(
        "--warmup", type=float, default=8.0, help="seconds left out at the start (default: 8)"
    )
    parser.add_argument("--detectors", type=int, default=1, help="--ray-detectors (default: 1)")
    parser.add_argument(
        "--no-record", dest="record", action="store_false", help="leave out the recordings (JSON only)"
    )
    parser.add_argument("--livefaces-args", default="", help="more livefaces options for every run")
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit('Ray is not installed: pip install ".[fleet]"') from None
    if not Path(bench.SYSTEM_PYTHON).is_file():
        raise SystemExit(f"{bench.SYSTEM_PYTHON} not found: the RTSP server needs Debian's GStreamer")
    console = Console(width=None if sys.stdout.isatty() else 170)
    extra = args.livefaces_args.split()
    results: dict[int, dict[str, Run]] = {}
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        clips = bench.make_clips(root, args.seconds + 120)
        port = bench.start_server(clips, root, stack)
        served = ", ".join(clips) or "none"
        print(f"clips: {served} over rtsp://127.0.0.1:{port}/; plus demo", file=sys.stderr)
        for count in (int(v) for v in args.cameras.split(",")):
            cameras = bench.cameras_for(count, port, clips)
            for mode, flags in MODES.items():
                tag = mode.replace(" ", "-")
                folder = root / f"{tag}-{count}"
                folder.mkdir()
                flags = [*flags, "--ray-detectors", str(args.detectors)] if flags else flags
                process = bench.launch(cameras, folder, args.seconds, tag, args.record, [*extra, *flags])
                processes = bench.collect([process], args.seconds)
                run = measure(mode, processes, folder, args.seconds, args.warmup)
                results.setdefault(count, {})[mode] = run
                print(f"done: {count} cameras, {mode}", file=sys.stderr)
            console.print(camera_table(count, list(results[count].values())))
            for run in results[count].values():
                for problem in run.figures.problems:
                    console.print(f"{count} cameras, {run.mode}: {problem}", style="red", markup=False)
    console.print(summary_table(results))


if __name__ == "__main__":
    main()
