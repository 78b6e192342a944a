"""End-to-end speed of the app on a real clip: an exact annotated recording, then a paced live run.

    python benchmarks/pipeline.py [--clip PATH] [--output annotated.mp4]

1. Recording: the clip (default: the 640x360 Hamilton clip in ../shared/data/videos) is decoded,
   detected on every frame, drawn and encoded to an mp4 with its audio, exactly as
   `python -m livefaces --source CLIP --output OUT --no-display` does. Reports end-to-end frames
   per second and the mean time of each stage per frame (the stages run in parallel threads).
2. Live: the same clip paced at its own frame rate as if it were a camera (`--live`), newest
   frame wins, with tracking as the app does for live sources; reports the display rate, frames
   dropped, the capture-to-display latency and how many frames old the last measurement is.

The detector is built and warmed up on one frame before the clock starts: model loading and
graph tracing are start-up costs, not per-frame costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from frames import VIDEOS
from rich.console import Console
from rich.table import Table

from livefaces import MTCNN
from livefaces import pipeline as pipeline_module
from livefaces.capture import CaptureSettings, open_source
from livefaces.detections import Detections
from livefaces.frames import AnnotatedFrame, Frame
from livefaces.pipeline import Pipeline, PipelineSettings
from livefaces.recorder import VideoRecorder

DEFAULT_CLIP = VIDEOS / "face_recognition__short_hamilton_clip.mp4"


class StageClock:
    """Seconds spent per stage, added from several threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


class TimedDetector:
    def __init__(self, detector: MTCNN, clock: StageClock) -> None:
        self.detector, self.clock = detector, clock

    def detect(self, image: np.ndarray) -> Detections:
        start = time.perf_counter()
        found = self.detector.detect(image)
        self.clock.add("detect (MTCNN)", time.perf_counter() - start)
        return found

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        start = time.perf_counter()
        found = self.detector.detect_batch(images)
        self.clock.add("detect (MTCNN)", time.perf_counter() - start)
        return found


class TimedSink:
    def __init__(self, sink, stage: str, clock: StageClock) -> None:
        self.sink, self.stage, self.clock = sink, stage, clock
        self.needs_canvas = sink.needs_canvas

    def write(self, item: AnnotatedFrame, canvas: np.ndarray | None) -> None:
        start = time.perf_counter()
        self.sink.write(item, canvas)
        self.clock.add(self.stage, time.perf_counter() - start)

    def close(self) -> None:
        self.sink.close()


class LatencySink:
    """Records, for each shown frame, its capture-to-display time and the age of its boxes.

    The age is how many frames earlier the boxes drawn on it were detected: the display never
    waits for the detector on a live source, so that lag is the price of keeping the rate.
    """

    needs_canvas = True

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.box_ages: list[int] = []  # frames since the last measured frame

    def write(self, item: AnnotatedFrame, canvas: np.ndarray | None) -> None:
        self.latencies.append(time.monotonic() - item.frame.captured_at)
        self.box_ages.append(item.frame.index - item.detected_index)

    def close(self) -> None:
        pass


def timed_frames(frames: Iterator[Frame], clock: StageClock) -> Iterator[Frame]:
    while True:
        start = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            return
        clock.add("decode", time.perf_counter() - start)
        yield frame


def timed_draw(clock: StageClock):
    draw = pipeline_module.overlay.draw

    def timed(*args, **kwargs):
        start = time.perf_counter()
        canvas = draw(*args, **kwargs)
        clock.add("draw", time.perf_counter() - start)
        return canvas

    return timed


def warm_detector(clip: Path) -> MTCNN:
    detector = MTCNN()
    with av.open(str(clip)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    detector.detect(first)
    return detector


def recording(clip: Path, output: Path, detector: MTCNN, console: Console) -> None:
    clock = StageClock()
    source = open_source(str(clip))
    recorder = VideoRecorder(output, source.info.fps, audio_from=clip)
    sinks = [TimedSink(recorder, "encode + mux", clock)]
    pipeline = Pipeline(source, TimedDetector(detector, clock), sinks)
    pipeline_module.overlay.draw, original = timed_draw(clock), pipeline_module.overlay.draw
    start = time.perf_counter()
    try:
        summary = pipeline.run(threading.Event(), timed_frames(source.frames(), clock))
    finally:
        pipeline_module.overlay.draw = original
    elapsed = time.perf_counter() - start
    with av.open(str(output)) as container:
        written = sum(1 for _ in container.decode(video=0))
        audio = bool(container.streams.audio)
    table = Table(title=f"recording {clip.name} -> {output.name}, detection on every frame")
    for column in ("frames in", "frames written", "audio", "seconds", "end-to-end fps"):
        table.add_column(column, justify="right")
    fps = summary.frames / elapsed
    table.add_row(str(summary.frames), str(written), "yes" if audio else "no", f"{elapsed:.1f}", f"{fps:.1f}")
    console.print(table)
    stages = Table(title="time per frame in each stage (threads overlap, so they do not add up)")
    stages.add_column("stage")
    stages.add_column("ms per frame", justify="right")
    for stage, seconds in clock.seconds.items():
        stages.add_row(stage, f"{1000 * seconds / max(summary.frames, 1):.1f}")
    console.print(stages)


def live(clip: Path, detector: MTCNN, console: Console) -> None:
    source = open_source(str(clip), CaptureSettings(live=True))
    latency = LatencySink()
    pipeline = Pipeline(source, detector, [latency], PipelineSettings(tracking=True))
    start = time.perf_counter()
    summary = pipeline.run(threading.Event())
    elapsed = time.perf_counter() - start
    snapshot = pipeline.stats.snapshot()
    title = f"live: {clip.name} paced at {source.info.fps:.2f} fps, newest frame wins, tracking"
    table = Table(title=title)
    columns = (
        "source fps",
        "display fps",
        "measured frames/s",
        "dropped",
        "latency median / p90 ms",
        "box age median / p90 frames",
    )
    for column in columns:
        table.add_column(column, justify="right")
    ms = np.array(latency.latencies) * 1000
    table.add_row(
        f"{source.info.fps:.2f}",
        f"{summary.frames / elapsed:.2f}",
        f"{summary.detections / elapsed:.1f}",
        str(snapshot.dropped),
        f"{np.median(ms):.1f} / {np.percentile(ms, 90):.1f}",
        f"{np.median(latency.box_ages):.0f} / {np.percentile(latency.box_ages, 90):.0f}",
    )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--output", type=Path, help="where to write the annotated mp4 (default: a temp file)")
    args = parser.parse_args()
    if not args.clip.is_file():
        print(f"{args.clip} not found: pass --clip PATH", file=sys.stderr)
        sys.exit(1)
    console = Console(width=None if sys.stdout.isatty() else 120)
    detector = warm_detector(args.clip)
    with tempfile.TemporaryDirectory() as scratch:
        output = args.output or Path(scratch) / "annotated.mp4"
        recording(args.clip, output, detector, console)
    live(args.clip, detector, console)


if __name__ == "__main__":
    main()
