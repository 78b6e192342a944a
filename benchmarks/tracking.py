"""Tracking figures: speed at 1280x720, quality against exact mode, id stability, jitter, and the
facenet-pytorch "fast MTCNN" recipe on the same frames.

    python benchmarks/tracking.py
    /opt/peers/bin/python benchmarks/tracking.py   # also runs the facenet-pytorch recipe

    python benchmarks/tracking.py --clips hamilton,walking --no-live --misses

Clips: every video of ../shared/data/videos (found in the folder; none there, none run) at its own
size and upscaled to 720 lines, pillarboxed to 1280x720 (H.264 at the source rate, made in a
temporary folder), a still face (the bundled photo, 90 frames, 1280x720), and the `demo` source
rendered at 1280x720. `--clips` keeps the clips whose name ("asl_again native", "demo 720p")
contains one of the given words: `--clips 720p` runs the upscales alone.

1. Recording: each clip through the app's threaded runtime with tracking (`--realtime`), annotated and
   encoded to mp4: end-to-end frames per second and full scans per second of video.
2. Live: each clip paced at its own rate (`--live`, tracking is the default there): display rate.
3. Quality: the tracked boxes of run 1 against exact mode (full detection on every frame):
   mean IoU of matched boxes, share of exact faces with confidence >= 0.95 that the tracked
   output also shows (IoU >= 0.5), track-id switches, and frame-to-frame jitter of the boxes.
4. On pre-decoded frames of the Hamilton clip: livefaces exact, livefaces tracking and the
   facenet-pytorch recipe (every 4th frame at half size, boxes reused), speed and quality.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
from frames import BUNDLED, VIDEOS
from peers import json_from_child
from rich.console import Console
from rich.table import Table

from livefaces.boxes import iou
from livefaces.capture import CaptureSettings, open_source
from livefaces.demo import DemoScene
from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.recorder import VideoRecorder
from livefaces.runtime.camera_runner import (
    COARSE_PIXELS_PER_SECOND,
    CameraRunner,
    RunnerSettings,
    coarse_face_size,
)
from livefaces.runtime.threaded import CameraSetup, CameraSummary, Session, Sink
from livefaces.scheduler import ScanScheduler, SchedulerSettings
from livefaces.tracker import greedy_match
from livefaces.tracking import TrackingDetector

if TYPE_CHECKING:  # TensorFlow stays out of the facenet-pytorch worker: the two together crash
    from livefaces import MTCNN

SIZE = (1280, 720)
CONFIDENT = 0.95
SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
# id switches and jitter are measured on the one-face clips (names as `clip_name` gives them)
SINGLE_FACE = ("asl_again", "head-pose-face-detection-female", "still face")


def fit_1280x720(rgb: np.ndarray) -> np.ndarray:
    """Upscale to 720 lines and pillarbox to 1280 columns (no stretching)."""
    height, width = rgb.shape[:2]
    scaled_width = round(width * SIZE[1] / height)
    scaled = cv2.resize(rgb, (scaled_width, SIZE[1]), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    left = (SIZE[0] - scaled_width) // 2
    canvas[:, left : left + scaled_width] = scaled[:, : SIZE[0]]
    return canvas


def encode(frames: list[np.ndarray], rate, path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def clip_name(path: Path) -> str:
    """A video's short name: its file name without the collection prefix ("sample-videos__")."""
    return path.stem.split("__")[-1]


def make_clips(folder: Path, wanted: list[str] | None) -> dict[str, Path]:
    """Every clip to run, by name: each shared video at its own size and at 720p, a still face and
    `demo` at 720p; only the names containing one of `wanted` when given."""

    def keep(name: str) -> bool:
        return not wanted or any(word in name for word in wanted)

    clips = {}
    videos = sorted(p for p in VIDEOS.glob("*") if p.suffix.lower() in SUFFIXES)
    if not videos:
        print(f"no videos in {VIDEOS}: skipping the shared clips", file=sys.stderr)
    for path in videos:
        name = clip_name(path)
        if not keep(f"{name} 720p") and not keep(f"{name} native"):
            continue
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                rate, width, height = stream.average_rate, stream.width, stream.height
                frames = [fit_1280x720(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        except (av.error.FFmpegError, IndexError) as exc:
            print(f"{path}: cannot be read ({exc}): skipping that clip", file=sys.stderr)
            continue
        if keep(f"{name} native"):
            clips[f"{name} {width}x{height}"] = path
        if keep(f"{name} 720p"):
            clips[f"{name} 720p"] = encode(frames, rate, folder / f"{name}_1280x720.mp4")
    if keep("still face 720p"):
        still = fit_1280x720(cv2.cvtColor(cv2.imread(str(BUNDLED)), cv2.COLOR_BGR2RGB))
        clips["still face 720p"] = encode([still] * 90, 30, folder / "still_1280x720.mp4")
    if keep("demo 720p"):
        demo = DemoScene(*SIZE)
        rendered = [cv2.cvtColor(demo.render(i), cv2.COLOR_BGR2RGB) for i in range(300)]
        clips["demo 720p"] = encode(rendered, 30, folder / "demo_1280x720.mp4")
    return clips


@dataclass
class Collector:
    """A sink keeping each frame's faces, as drawn and logged (no image needed)."""

    render: str | None = None
    faces: dict[int, Detections] = field(default_factory=dict)

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.faces[result.frame.index] = result.detections

    def close(self) -> None:
        pass

    def summary(self) -> str | None:
        return None


@dataclass
class Run:
    """One camera's run on the threaded runtime: its summary, runner (counters) and wall time."""

    summary: CameraSummary
    runner: CameraRunner
    seconds: float
    fps: float


def run_source(
    clip: Path, capture: CaptureSettings, detector: MTCNN, sinks: list[Sink], settings: RunnerSettings
) -> Run:
    """Run `clip` as the app runs one camera: reader, runner and writer threads, shared detector."""
    source = open_source(str(clip), capture)
    frames = source.frames()  # opened first, as the app does: the rate is known once it is open
    fps = source.info.fps or 30.0
    runner = CameraRunner(source.info.name, fps, settings)
    session = Session([CameraSetup(source, runner, sinks, frames=frames)], detector)
    start = time.perf_counter()
    summary = session.run().cameras[0]
    elapsed = time.perf_counter() - start
    if summary.error:
        raise SystemExit(f"{clip.name}: failed in {summary.error_stage}: {summary.error}")
    return Run(summary, runner, elapsed, fps)


def warm_up(detector: MTCNN, rgb: np.ndarray, rate: float) -> None:
    """Trace the graphs a clip of this size needs (one per pyramid depth) before it is timed:
    otherwise tracing, a second or so, dominates the fps of the short clips."""
    detector.detect(rgb)
    smallest = coarse_face_size(rgb.shape, COARSE_PIXELS_PER_SECOND / rate)
    if smallest is not None:
        detector.detect_batch([rgb], min_face_size=smallest, known=[np.zeros((0, 4))])


def record_with_tracking(
    clip: Path, detector: MTCNN, output: Path, coarse: float | None = COARSE_PIXELS_PER_SECOND
) -> tuple[float, float, dict[int, Detections]]:
    """End-to-end fps, full scans per second of video, and the faces of every frame
    (`--realtime`: tracking on a file, nothing dropped, full scans at the scheduler's floor)."""
    collector = Collector()
    with av.open(str(clip)) as container:
        rate = float(container.streams.video[0].average_rate or 30)
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    warm_up(detector, first, rate)
    recorder = VideoRecorder(output, rate)
    settings = RunnerSettings(
        tracking=True,
        live=False,
        adaptive=False,
        patches=True,
        coarse_pixels_per_second=coarse,
    )  # as the app
    run = run_source(clip, CaptureSettings(), detector, [recorder, collector], settings)
    video_seconds = run.summary.frames / run.fps
    return run.summary.frames / run.seconds, run.runner.full_scans / video_seconds, collector.faces


def live_display_rate(
    clip: Path, detector: MTCNN, coarse: float | None = COARSE_PIXELS_PER_SECOND
) -> tuple[float, float, int]:
    """Display fps and source fps when the clip is paced like a camera, and frames dropped."""
    settings = RunnerSettings(
        tracking=True,
        live=True,
        adaptive=True,
        patches=True,
        coarse_pixels_per_second=coarse,
    )
    run = run_source(clip, CaptureSettings(live=True), detector, [Collector()], settings)
    return run.summary.frames / run.seconds, run.fps, run.summary.dropped


def decoded(clip: Path) -> list[np.ndarray]:
    with av.open(str(clip)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def exact_mode(frames: list[np.ndarray], detector: MTCNN) -> tuple[float, dict[int, Detections]]:
    start = time.perf_counter()
    faces = {i: detector.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for i, f in enumerate(frames)}
    return len(frames) / (time.perf_counter() - start), faces


def tracking_loop(
    frames: list[np.ndarray], detector: MTCNN, fps: float
) -> tuple[float, dict[int, Detections]]:
    tracking = TrackingDetector(detector, ScanScheduler(fps, SchedulerSettings(adaptive=False)))
    start = time.perf_counter()
    faces = {i: tracking.process(Frame(i, i / fps, 0.0, f))[0] for i, f in enumerate(frames)}
    return len(frames) / (time.perf_counter() - start), faces


def quality(
    tracked: dict[int, Detections | np.ndarray], exact: dict[int, Detections]
) -> tuple[float, float, list[tuple[int, float]]]:
    """Mean IoU of matched boxes, the share of confident exact faces the tracked output shows, and
    the misses: (frame index, best IoU of a tracked box) of each confident exact face not shown."""
    overlaps, confident, shown, misses = [], 0, 0, []
    for index, truth in exact.items():
        found = tracked.get(index)
        boxes = found.boxes if isinstance(found, Detections) else np.asarray(found).reshape(-1, 4)
        matrix = iou(truth.boxes, boxes) if len(boxes) and len(truth) else np.zeros((len(truth), 0))
        overlaps += [matrix[row, column] for row, column in greedy_match(matrix, 0.3)]
        for row in np.flatnonzero(truth.scores >= CONFIDENT):
            confident += 1
            best = float(matrix[row].max()) if matrix.shape[1] else 0.0
            shown += best >= 0.5
            if best < 0.5:
                misses.append((index, best))
    return float(np.mean(overlaps)) if overlaps else 0.0, shown / max(confident, 1), misses


def id_switches(tracked: dict[int, Detections], exact: dict[int, Detections]) -> int:
    """How often the track shown on the same exact-mode face changes id between frames."""
    switches, previous = 0, None
    for index in sorted(exact):
        truth, found = exact[index], tracked.get(index)
        confident = truth.select(truth.scores >= CONFIDENT)
        if found is None or not len(confident) or not len(found):
            continue
        matrix = iou(confident.boxes[:1], found.boxes)[0]
        if matrix.max() < 0.5:
            continue
        current = int(found.track_ids[int(matrix.argmax())])
        switches += previous is not None and current != previous
        previous = current
    return switches


def jitter(tracked: dict[int, Detections]) -> tuple[float, float]:
    """Frame-to-frame movement of the most confident face's box as % of its size: median, p95."""
    boxes = [tracked[i].boxes[int(np.argmax(tracked[i].scores))] for i in sorted(tracked) if len(tracked[i])]
    steps = [np.abs(b - a).max() / (a[2] - a[0]) * 100 for a, b in itertools.pairwise(boxes)]
    return float(np.median(steps)), float(np.percentile(steps, 95))


def fast_recipe_worker(clip: str) -> None:
    """facenet-pytorch's fast-MTCNN recipe: every 4th frame at half size, boxes reused in between."""
    import json

    import torch
    from facenet_pytorch import MTCNN as FacenetMTCNN

    torch.set_grad_enabled(False)
    mtcnn = FacenetMTCNN(
        keep_all=True, min_face_size=20, thresholds=[0.6, 0.7, 0.7], factor=0.709, device="cpu"
    )
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in decoded(Path(clip))]
    mtcnn.detect(frames[0])
    boxes_of_frame, boxes = [], np.zeros((0, 4))
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        if i % 4 == 0:
            small = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2))
            found, _ = mtcnn.detect(small)
            boxes = np.zeros((0, 4)) if found is None else np.asarray(found) * 2
        boxes_of_frame.append(boxes.tolist())
    print(json.dumps({"fps": len(frames) / (time.perf_counter() - start), "boxes": boxes_of_frame}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--clips", help="comma-separated words: run only the clips whose name has one")
    parser.add_argument("--no-live", action="store_true", help="skip the paced live runs")
    parser.add_argument("--no-compare", action="store_true", help="skip the pre-decoded comparison")
    parser.add_argument("--misses", action="store_true", help="list the missed exact faces per clip")
    parser.add_argument(
        "--no-coarse", action="store_true", help="refinements alone between full scans (the old policy)"
    )
    args = parser.parse_args()
    if args.worker:
        fast_recipe_worker(args.clip)
        return
    from livefaces import MTCNN

    console = Console(width=None if sys.stdout.isatty() else 180)
    detector = MTCNN()
    detector.detect(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    wanted = [word.strip() for word in args.clips.split(",")] if args.clips else None
    with tempfile.TemporaryDirectory() as scratch:
        clips = make_clips(Path(scratch), wanted)
        runs = Table(
            title="tracking vs exact mode (--realtime recording to mp4; live: paced at the source rate)"
        )
        columns = ("clip", "frames", "recording fps", "full scans/s")
        columns += () if args.no_live else ("live display fps", "source fps", "dropped")
        columns += (
            f"exact faces >= {CONFIDENT} shown",
            "mean IoU vs exact",
            "id switches",
            "jitter median / p95 %",
        )
        for column in columns:
            runs.add_column(column, justify="right")
        for name, clip in clips.items():
            coarse = None if args.no_coarse else COARSE_PIXELS_PER_SECOND
            output = Path(scratch) / f"{name}.out.mp4"
            fps, scans, tracked = record_with_tracking(clip, detector, output, coarse)
            live = () if args.no_live else live_display_rate(clip, detector, coarse)
            _, exact = exact_mode(decoded(clip), detector)
            mean_iou, recall, misses = quality(tracked, exact)
            single = name.rsplit(" ", 1)[0] in SINGLE_FACE
            still_jitter = "{:.2f} / {:.2f}".format(*jitter(tracked)) if single else "-"
            switches = str(id_switches(tracked, exact)) if single else "-"
            speed = (f"{fps:.1f}", f"{scans:.1f}")
            if live:
                display, source_fps, dropped = live
                speed += (f"{display:.2f}", f"{source_fps:.2f}", str(dropped))
            runs.add_row(
                name, str(len(tracked)), *speed, f"{recall:.3f}", f"{mean_iou:.3f}", switches, still_jitter
            )
            print(f"done: {name}", file=sys.stderr)
            if args.misses and misses:
                listed = ", ".join(f"{index} ({best:.2f})" for index, best in misses)
                print(f"{name}: missed at frame (best IoU): {listed}", file=sys.stderr)
        console.print(runs)
        hamilton = next((clip for name, clip in clips.items() if "hamilton" in name and "720p" in name), None)
        if hamilton is not None and not args.no_compare:
            compare(hamilton, detector, console)


def compare(clip: Path, detector: MTCNN, console: Console) -> None:
    frames = decoded(clip)
    exact_fps, exact = exact_mode(frames, detector)
    tracked_fps, tracked = tracking_loop(frames, detector, 29.97)
    table = Table(title=f"detection loop on {len(frames)} pre-decoded 1280x720 frames of the Hamilton clip")
    for column in ("method", "frames/s", f"exact faces >= {CONFIDENT} shown", "mean IoU vs exact"):
        table.add_column(column, justify="right")
    table.add_row("livefaces exact (every frame)", f"{exact_fps:.1f}", "1.000", "1.000")
    table.add_row(
        "livefaces tracking (--realtime)",
        f"{tracked_fps:.1f}",
        *(f"{v:.3f}" for v in quality(tracked, exact)[1::-1]),
    )
    recipe = json_from_child(__file__, "facenet-pytorch", ["--clip", str(clip)])
    if recipe is not None:
        boxes = {i: np.array(b).reshape(-1, 4) for i, b in enumerate(recipe["boxes"])}
        values = quality(boxes, exact)[1::-1]
        table.add_row("facenet-pytorch fast recipe", f"{recipe['fps']:.1f}", *(f"{v:.3f}" for v in values))
    console.print(table)


if __name__ == "__main__":
    main()
