"""End-to-end speed of the app on a real clip: an exact annotated recording, then a paced live run.

    python benchmarks/pipeline.py [--clip PATH] [--output annotated.mp4]

1. Recording: the clip (default: the 640x360 Hamilton clip in ../shared/data/videos) is decoded,
   detected on every frame, drawn and encoded to an mp4 with its audio, exactly as
   `python -m livefaces --source CLIP --output OUT --no-display` does (the threaded runtime in
   exact mode: `RunnerSettings()`). Reports end-to-end frames per second and the mean time of
   each stage per frame (the stages run in parallel threads).
2. Live: the same clip paced at its own frame rate as if it were a camera (`--live`), newest
   frame wins, with tracking as the app does for live sources; reports the display rate, frames
   dropped, the capture-to-display latency and the box age: how many frames before each shown
   frame its faces were last measured (full scan or refinement).

The detector is built and warmed up on one frame before the clock starts: model loading and
graph tracing are start-up costs, not per-frame costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np
from frames import VIDEOS
from rich.console import Console
from rich.table import Table

from livefaces import MTCNN, overlay
from livefaces.capture import CaptureSettings, open_source
from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.recorder import VideoRecorder
from livefaces.runtime.camera_runner import CameraRunner, RunnerSettings
from livefaces.runtime.detector_service import DetectorReply
from livefaces.runtime.threaded import CameraSetup, Session, Sink

DEFAULT_CLIP = VIDEOS / "face_recognition__short_hamilton_clip.mp4"


class StageClock:
    """Seconds spent per stage, added from several threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def timed(self, stage: str, function: Callable) -> Callable:
        """`function`, adding the seconds of each call to `stage`."""

        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - start)

        return call


class TimedDetector:
    """The detector calls the shared detector service makes, timed as one stage."""

    def __init__(self, detector: MTCNN, clock: StageClock) -> None:
        self.detector, self.clock = detector, clock

    def detect_batch(self, images: Sequence[np.ndarray], **kwargs) -> list[Detections]:
        return self.clock.timed("detect (MTCNN)", self.detector.detect_batch)(images, **kwargs)

    def refine(self, image: np.ndarray, boxes: np.ndarray, **kwargs) -> Detections:
        return self.clock.timed("detect (MTCNN)", self.detector.refine)(image, boxes, **kwargs)

    def refine_batch(self, images, boxes_list, **kwargs) -> list[Detections]:
        return self.clock.timed("detect (MTCNN)", self.detector.refine_batch)(images, boxes_list, **kwargs)


class TimedSink:
    """A sink whose writes are timed as one stage."""

    def __init__(self, sink: Sink, stage: str, clock: StageClock) -> None:
        self.sink, self.stage, self.clock = sink, stage, clock
        self.render = sink.render

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.clock.timed(self.stage, self.sink.write)(result, image)

    def close(self) -> None:
        self.sink.close()

    def summary(self) -> str | None:
        return self.sink.summary()


class LatencySink:
    """Records, for each shown frame, its capture-to-display time. It asks for the annotated
    image, as a window would."""

    render: str | None = "annotated"

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.latencies.append(time.monotonic() - result.frame.captured_at)

    def close(self) -> None:
        pass

    def summary(self) -> str | None:
        return None


class AgeRunner(CameraRunner):
    """A camera runner that notes, for each frame it passes on, its box age: how many frames ago
    the faces were last measured. A live camera never waits for the detector, so a frame goes out
    with the tracks predicted to its time and its own measurement, if any, lands later: that lag
    is the price of keeping the rate."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.box_ages: list[int] = []
        self._last_measured: int | None = None

    def absorb(self, frame: Frame, reply: DetectorReply) -> None:
        before = self.full_scans + self.refinements
        super().absorb(frame, reply)
        if self.full_scans + self.refinements > before:
            self._last_measured = frame.index

    def result(self, frame: Frame) -> FrameResult:
        if self._last_measured is not None:
            self.box_ages.append(frame.index - self._last_measured)
        return super().result(frame)


def timed_frames(frames: Iterator[Frame], clock: StageClock) -> Iterator[Frame]:
    try:
        while True:
            start = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            clock.add("decode", time.perf_counter() - start)
            yield frame
    finally:
        frames.close()  # type: ignore[attr-defined]


def warm_detector(clip: Path) -> MTCNN:
    detector = MTCNN()
    with av.open(str(clip)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    detector.detect(first)
    detector.detect_batch([first])
    return detector


def recording(clip: Path, output: Path, detector: MTCNN, console: Console) -> None:
    clock = StageClock()
    source = open_source(str(clip))
    frames = timed_frames(source.frames(), clock)  # opened here: fps is known once it is open
    recorder = VideoRecorder(output, source.info.fps, audio_from=clip)
    sinks: list[Sink] = [TimedSink(recorder, "encode + mux", clock)]
    original = overlay.render
    overlay.render = clock.timed("draw", original)  # the writer thread renders through this name
    start = time.perf_counter()
    try:
        runner = CameraRunner(source.info.name, source.info.fps, RunnerSettings())
        setup = CameraSetup(source, runner, sinks, frames=frames)
        summary = Session([setup], TimedDetector(detector, clock)).run().cameras[0]
    finally:
        overlay.render = original
    elapsed = time.perf_counter() - start
    if summary.error:
        raise SystemExit(f"recording failed in {summary.error_stage}: {summary.error}")
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
    runner = AgeRunner(source.info.name, source.info.fps, RunnerSettings(tracking=True, live=True))
    session = Session([CameraSetup(source, runner, [latency])], detector)
    start = time.perf_counter()
    summary = session.run().cameras[0]
    elapsed = time.perf_counter() - start
    if summary.error:
        raise SystemExit(f"live run failed in {summary.error_stage}: {summary.error}")
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
        str(summary.dropped),
        f"{np.median(ms):.1f} / {np.percentile(ms, 90):.1f}",
        f"{np.median(runner.box_ages):.0f} / {np.percentile(runner.box_ages, 90):.0f}",
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
