"""Anonymization figures: faces left uncovered, and speed, for livefaces and deface.

    python benchmarks/anonymize.py [--deface /opt/deface/bin/deface] [--only hamilton]

Clips: each video of ../shared/data/videos at its own size, and its 720p upscale (made as
benchmarks/tracking.py makes them, in a temporary folder).

Reference: exact mode (full detection of every frame, the paper's thresholds) keeping faces of
confidence >= 0.9. A reference face is covered when at least 90 % of its box (its part in view)
is masked in the anonymized output: the masks are solid black (`--anonymize solid`, deface's
`--replacewith solid`), so a pixel is masked where the decoded output is black and the source
is not (pixels black in the source count as covered: there a black mask cannot be told apart).
An uncovered frame holds at least one reference face that is not covered.

Runs, each anonymizing every frame to an H.264 mp4:
- livefaces exact (the default for files) and `--realtime` (tracking), in this process on the
  app's threaded runtime with the app's outputs (recorder behind the anonymizer) and the
  `--anonymize` defaults (thresholds 0.5 0.6 0.6, mask scale 1.3, ellipse, hold 1 s); fps is
  frames over the run's wall time, the detector already loaded;
- deface (when installed: `python3 -m venv /opt/deface && /opt/deface/bin/pip install deface
  onnxruntime`) at full resolution and with `--scale` at half the width and height; fps is its
  own progress bar's rate (model loading excluded), and its wall time is shown too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from frames import VIDEOS
from rich.console import Console
from rich.table import Table
from tracking import decoded, encode, fit_1280x720, run_source

from livefaces import MTCNN
from livefaces.capture import CaptureSettings
from livefaces.cascade import Settings
from livefaces.options import ANONYMIZE_THRESHOLDS
from livefaces.outputs.anonymize import MaskSettings, anonymized
from livefaces.recorder import VideoRecorder
from livefaces.runtime.camera_runner import COARSE_PIXELS_PER_SECOND, RunnerSettings

REFERENCE_CONFIDENCE = 0.9
COVERED = 0.9
DARK = 40
DEFACE = "/opt/deface/bin/deface"


@dataclass
class Outcome:
    fps: float
    uncovered: int
    frames: int  # in the output
    wall: float | None = None
    failed: str | None = None


def clips(folder: Path, only: str | None) -> dict[str, Path]:
    """Each shared video at its size, and its 720p upscale."""
    found = {}
    for path in sorted(p for p in VIDEOS.glob("*") if p.suffix in (".mp4", ".mkv", ".avi", ".mov")):
        name = path.stem.split("__")[-1]
        if only and only not in name:
            continue
        found[name] = path
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate or 30
            frames = [fit_1280x720(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        found[f"{name} 720p"] = encode(frames, rate, folder / f"{name}_720p.mp4")
    if not found:
        raise SystemExit(f"no videos in {VIDEOS}: this benchmark needs ../shared/data")
    return found


def reference(frames: list[np.ndarray], detector: MTCNN) -> list[np.ndarray]:
    """Exact mode: every frame's faces of confidence >= 0.9 (boxes (N, 4))."""
    boxes = []
    for image in frames:
        found = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        boxes.append(found.boxes[found.scores >= REFERENCE_CONFIDENCE].astype(np.float64))
    return boxes


def timed_frames(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame's presentation time (seconds) and its BGR image."""
    with av.open(str(path)) as container:
        frames = [(float(f.time or 0.0), f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]
    return np.array([t for t, _ in frames]), [image for _, image in frames]


def uncovered_frames(output: Path, source: Path, truth: list[np.ndarray]) -> tuple[int, int]:
    """Frames of the source where some reference face is less than 90 % masked (solid black) in
    `output`, each compared with the output frame shown at its time (a tool that pads or drops
    frames is compared as a viewer sees it); and the output's frame count."""
    source_times, raws = timed_frames(source)
    output_times, images = timed_frames(output)
    count = 0
    for when, raw, boxes in zip(source_times, raws, truth):
        shown = max(int(np.searchsorted(output_times, when + 1e-3, side="right")) - 1, 0)
        image = images[shown]
        height, width = raw.shape[:2]
        for box in boxes:
            x1, y1 = max(round(box[0]), 0), max(round(box[1]), 0)
            x2, y2 = min(round(box[2]), width), min(round(box[3]), height)
            if x2 <= x1 or y2 <= y1:
                continue
            masked = (image[y1:y2, x1:x2].max(axis=2) < DARK) | (raw[y1:y2, x1:x2].max(axis=2) < DARK)
            if masked.mean() < COVERED:
                count += 1
                break
    return count, len(images)


def livefaces_run(clip: Path, detector: MTCNN, output: Path, tracking: bool) -> tuple[float, Path]:
    """The app's anonymized recording of `clip`: fps over the run's wall time."""
    with av.open(str(clip)) as container:
        rate = float(container.streams.video[0].average_rate or 30)
    recorder = VideoRecorder(output, rate, audio_from=clip)
    sink = anonymized(recorder, MaskSettings("solid"), lag=True)
    settings = RunnerSettings(
        tracking=tracking,
        live=False,
        adaptive=False,
        cascade=Settings(thresholds=ANONYMIZE_THRESHOLDS),
        patches=True,
        coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND,  # as the app runs it
    )
    run = run_source(clip, CaptureSettings(), detector, [sink], settings)  # type: ignore[list-item]
    return run.summary.frames / run.seconds, output


def deface_run(deface: str, clip: Path, output: Path, scale: str | None) -> tuple[float, float, Path]:
    """deface's solid-mask output: its own rate (from its progress bar) and the wall time."""
    command = [deface, str(clip), "-o", str(output), "--replacewith", "solid"]
    if scale:
        command += ["--scale", scale]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if run.returncode != 0 or not output.exists():
        raise RuntimeError((run.stderr.strip().splitlines() or ["no output"])[-1])
    rates = re.findall(r"([\d.]+)(it/s|s/it)", run.stderr)
    if not rates:
        raise RuntimeError("no rate in deface's progress bar")
    value, unit = rates[-1]
    return (float(value) if unit == "it/s" else 1 / float(value)), wall, output


def half(clip: Path) -> str:
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        return f"{video.width // 4 * 2}x{video.height // 4 * 2}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deface", default=shutil.which("deface") or DEFACE, help="deface's executable")
    parser.add_argument("--only", help="clips whose name holds this")
    args = parser.parse_args()
    has_deface = os.access(args.deface, os.X_OK)
    console = Console(width=max(Console().width, 170))
    console.print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: figures taken under that load"
    )
    if not has_deface:
        console.print(f"deface not found at {args.deface}: its columns stay empty")
    detector = MTCNN()
    detector.detect(np.zeros((360, 640, 3), np.uint8))  # warm up: tracing is not anonymization
    table = Table(title="Anonymization: frames with a reference face left uncovered, and speed")
    table.add_column("clip")
    table.add_column("frames", justify="right")
    table.add_column("ref. faces", justify="right")
    runs = ["livefaces exact", "livefaces realtime", "deface full", "deface --scale"]
    for name in runs:
        table.add_column(f"{name}\nuncovered", justify="right")
        table.add_column("fps", justify="right")
    with tempfile.TemporaryDirectory(prefix="livefaces-anon-") as folder:
        work = Path(folder)
        for name, clip in clips(work, args.only).items():
            source = decoded(clip)
            truth = reference(source, detector)
            outcomes: dict[str, Outcome] = {}
            safe = name.replace(" ", "_")
            for mode, tracking in (("livefaces exact", False), ("livefaces realtime", True)):
                fps, output = livefaces_run(clip, detector, work / f"{safe}-{mode[10:]}.mp4", tracking)
                outcomes[mode] = Outcome(fps, *uncovered_frames(output, clip, truth))
            if has_deface:
                for mode, scale in (("deface full", None), ("deface --scale", half(clip))):
                    try:
                        fps, wall, output = deface_run(
                            args.deface, clip, work / f"{safe}-{mode[7:]}.mp4", scale
                        )
                        outcomes[mode] = Outcome(fps, *uncovered_frames(output, clip, truth), wall)
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        outcomes[mode] = Outcome(0.0, -1, 0, failed=str(error))
                        console.print(f"{name}: {mode} failed: {error}")
            cells = [name, str(len(source)), str(sum(len(b) for b in truth))]
            for mode in runs:
                outcome = outcomes.get(mode)
                if outcome is None or outcome.failed:
                    cells += ["-", "-"]
                    continue
                wall = f" ({len(source) / outcome.wall:.1f})" if outcome.wall else ""
                extra = (
                    f" ({outcome.frames - len(source):+d} frames)" if outcome.frames != len(source) else ""
                )
                cells += [f"{outcome.uncovered}{extra}", f"{outcome.fps:.1f}{wall}"]
            table.add_row(*cells)
            console.print(f"{name}: done")
    console.print(table)
    console.print(
        "deface fps: its progress bar's rate (in brackets: frames over the wall time of the whole "
        "process, model loading included); deface --scale: half width and height. (+N frames): the "
        "output has N frames more than the source (each source frame is compared with the output "
        f"frame shown at its time). Load average now "
        f"{os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
