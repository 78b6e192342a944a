"""Scheduling and failure handling of the threaded runtime (one camera), with real frames and files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from livefaces.capture import CaptureSettings, Source, SourceInfo, open_source
from livefaces.channels import Closed, FrameChannel
from livefaces.detections import Detections
from livefaces.frames import Frame
from livefaces.outputs.snapshots import SnapshotSink
from livefaces.recorder import VideoRecorder
from livefaces.runtime.camera_runner import RunnerSettings
from livefaces.runtime.threaded import CameraLimits, run_camera
from livefaces.sinks import JsonLinesSink
from livefaces.sources.reconnect import ReconnectSettings
from livefaces.stats import PipelineStats
from livefaces.tracker import Tracker
from livefaces.tracking import detect_downscaled
from tests.videos import read_back


def test_live_channel_keeps_the_newest_and_counts_drops() -> None:
    drops = []
    channel: FrameChannel[int] = FrameChannel(
        2, lossless=False, stop=threading.Event(), on_drop=lambda: drops.append(1)
    )
    for item in range(5):
        assert channel.put(item)
    channel.close()
    assert [channel.get(), channel.get()] == [3, 4]
    assert isinstance(channel.get(), Closed) and len(drops) == 3


def test_lossless_channel_never_drops_and_gives_up_only_on_stop() -> None:
    stop = threading.Event()
    channel: FrameChannel[int] = FrameChannel(2, lossless=True, stop=stop)
    assert channel.put(1) and channel.put(2)
    stop.set()
    assert channel.put(3) is False
    assert [channel.get(), channel.get()] == [1, 2]
    assert channel.get() is None


def test_channel_carries_the_producer_error() -> None:
    channel: FrameChannel[int] = FrameChannel(1, lossless=True, stop=threading.Event())
    channel.put(7)
    channel.close(RuntimeError("boom"))
    assert channel.get() == 7
    closed = channel.get()
    assert isinstance(closed, Closed) and str(closed.error) == "boom"
    assert channel.poll() == closed


class GatedDetector:
    """Finds nothing, but only when the test lets it: lets a test hold the detector busy."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.seen: list[int] = []

    def detect(self, image: np.ndarray) -> Detections:
        self.gate.acquire()
        self.seen.append(int(image[0, 0, 0]))
        return Detections.empty()


class NumberedSource(Source):
    """Frames whose first pixel holds their index; live or not."""

    def __init__(self, count: int, live: bool, release: threading.Semaphore | None = None) -> None:
        def read(source: Source):
            for index in range(count):
                if release is not None and index > 0:
                    release.acquire()
                image = np.full((24, 32, 3), index, np.uint8)
                yield Frame(index, index / 30, 0.0, image)

        super().__init__(SourceInfo("numbers", "demo", live=live, fps=30.0), read, paced=False)


class Collector:
    render = None

    def __init__(self, after_write=None) -> None:
        self.items = []
        self.closed = False
        self._after_write = after_write

    def write(self, item, canvas) -> None:
        self.items.append(item)
        if self._after_write:
            self._after_write(item)

    def close(self) -> None:
        self.closed = True

    def summary(self) -> None:
        return None


def test_files_lose_nothing_and_every_frame_waits_for_its_detection() -> None:
    detector = GatedDetector()
    for _ in range(10):
        detector.gate.release()
    sink = Collector()
    summary = run_camera(NumberedSource(10, live=False), detector, [sink])
    assert detector.seen == list(range(10))
    assert [i.frame.index for i in sink.items] == list(range(10))
    assert all(i.fresh for i in sink.items)
    assert sink.closed and summary.frames == 10 and summary.ended_by == "source"


def test_live_display_shows_every_frame_while_the_detector_is_busy() -> None:
    """The detector is held on frame 0 while 20 more frames arrive: all are shown, with the
    old result, and the detector then gets only the newest frame."""
    detector, release = GatedDetector(), threading.Semaphore(0)

    def after_write(item) -> None:
        if item.frame.index == 19:
            detector.gate.release()
            detector.gate.release()
        release.release()

    sink = Collector(after_write)
    source = NumberedSource(21, live=True, release=release)
    summary = run_camera(source, detector, [sink], RunnerSettings(live=True))
    assert [i.frame.index for i in sink.items] == list(range(21))
    assert detector.seen[0] == 0 and len(detector.seen) <= 3
    assert summary.dropped == 0


def test_detector_failure_stops_the_run_and_finalizes_the_recording(tmp_path: Path) -> None:
    class FailingDetector:
        def __init__(self) -> None:
            self.calls = 0

        def detect(self, image: np.ndarray) -> Detections:
            self.calls += 1
            if self.calls > 5:
                raise RuntimeError("out of memory on the accelerator")
            return Detections.empty()

    out = tmp_path / "out.mp4"
    source = open_source("demo", CaptureSettings(demo_size=(160, 120)))
    recorder = VideoRecorder(out, fps=30)
    summary = run_camera(source, FailingDetector(), [recorder])
    assert summary.ended_by == "error" and summary.error_stage == "detector"
    assert "out of memory on the accelerator" in (summary.error or "")
    # the frames answered before the failing call are recorded (a failed call fails as a whole)
    assert 0 < read_back(out)["frames"] <= 5


def test_capture_failure_is_carried_to_the_caller(tmp_path: Path) -> None:
    def read(source: Source):
        yield Frame(0, 0.0, 0.0, np.zeros((24, 32, 3), np.uint8))
        raise OSError("stream reset by peer")

    source = Source(SourceInfo("flaky", "stream", live=True), read, paced=False)
    log = tmp_path / "faces.jsonl"

    class NoFaces:
        def detect(self, image: np.ndarray) -> Detections:
            return Detections.empty()

    no_reconnection = ReconnectSettings(max_reconnects=0)  # tests/test_watchdog.py reconnects
    summary = run_camera(
        source, NoFaces(), [JsonLinesSink(str(log))], RunnerSettings(live=True), reconnect=no_reconnection
    )
    assert summary.ended_by == "error" and summary.error_stage == "capture"
    assert summary.error == "flaky: stream reset by peer"
    assert len(log.read_text().splitlines()) == 1


def test_stop_event_ends_an_endless_source() -> None:
    stop = threading.Event()

    class NoFaces:
        def detect(self, image: np.ndarray) -> Detections:
            return Detections.empty()

    sink = Collector(lambda item: stop.set() if item.frame.index == 4 else None)
    summary = run_camera(open_source("demo"), NoFaces(), [sink], stop=stop)
    assert summary.ended_by == "stop" and 5 <= len(sink.items) <= 10 and sink.closed


def test_downscaled_detection_maps_boxes_back(detector) -> None:
    from livefaces.boxes import iou
    from livefaces.demo import DemoScene

    scene = DemoScene(1280, 720)
    rgb = scene.render(30)[:, :, ::-1].copy()
    full = detect_downscaled(detector, rgb, None)
    small = detect_downscaled(detector, rgb, 640)
    truth = scene.truth(30)
    assert len(full) == len(small) == len(truth)
    assert iou(truth, small.boxes).max(axis=1).min() > 0.6
    strong = full.confident(0.9999)
    assert np.all(strong.scores >= 0.9999) and len(strong) <= len(full)


class BatchRecorder:
    """Returns one box whose x1 is the frame's index and records each call's frames; every call
    waits until the source has read its last frame."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.all_read = threading.Event()

    def _found(self, image: np.ndarray) -> Detections:
        index = float(image[0, 0, 0])
        box = np.array([[index, 0, index + 10, 10]], np.float32)
        return Detections(box, np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32))

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        assert self.all_read.wait(10)
        self.calls.append([int(image[0, 0, 0]) for image in images])
        return [self._found(image) for image in images]


def test_file_frames_are_asked_ahead_and_keep_their_own_results() -> None:
    """Exact mode asks a few frames ahead, so the detector is never idle waiting for the next frame;
    each frame still gets its own result, in order."""
    detector = BatchRecorder()

    def read(source: Source):
        for index in range(10):
            yield Frame(index, index / 30, 0.0, np.full((24, 32, 3), index, np.uint8))
        detector.all_read.set()

    source = Source(SourceInfo("numbers", "demo", live=False, fps=30.0), read, paced=False)
    sink = Collector()
    run_camera(source, detector, [sink])
    assert [index for call in detector.calls for index in call] == list(range(10))
    assert [int(item.detections.boxes[0, 0]) for item in sink.items] == list(range(10))
    assert all(item.fresh for item in sink.items)


class OneFace:
    """Finds the same face by full scan or by refinement."""

    def _face(self) -> Detections:
        box = np.array([[4, 4, 20, 20]], np.float32)
        return Detections(box, np.full(1, 0.99, np.float32), np.full((1, 5, 2), 12, np.float32))

    def detect(self, image: np.ndarray) -> Detections:
        return self._face()

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections:
        return self._face()


class SignallingTracker(Tracker):
    """Releases one permit after each update, so a test source can wait for the tracker."""

    def __init__(self) -> None:
        super().__init__()
        self.updates = threading.Semaphore(0)

    def step(self, found: Detections, timestamp: float):
        update = super().step(found, timestamp)
        self.updates.release()
        return update


def test_live_tracking_shows_predicted_tracks_on_every_frame() -> None:
    tracker = SignallingTracker()
    source = NumberedSource(10, live=True, release=tracker.updates)  # frame k after k updates
    sink = Collector()
    stats = PipelineStats()
    run_camera(
        source, OneFace(), [sink], RunnerSettings(tracking=True, live=True), tracker=tracker, stats=stats
    )
    shown = [item for item in sink.items if item.frame.index > 0]
    assert [item.frame.index for item in shown] == list(range(1, 10))
    assert all(item.detections.track_ids.tolist() == [0] for item in shown)
    assert stats.snapshot().detect_every.startswith("tracking, ")


def test_max_frames_bounds_a_camera() -> None:
    class NoFaces:
        def detect(self, image: np.ndarray) -> Detections:
            return Detections.empty()

    sink = Collector()
    summary = run_camera(open_source("demo"), NoFaces(), [sink], limits=CameraLimits(max_frames=7))
    assert summary.ended_by == "limit" and summary.frames == len(sink.items) == 7


class EventCollector(Collector):
    """Records the order of writes and events, as an event output sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple] = []

    def write(self, item, canvas) -> None:
        super().write(item, canvas)
        self.log.append(("frame", item.frame.index))

    def on_events(self, events) -> None:
        self.log += [(event.kind, getattr(event, "reason", None)) for event in events]


def test_events_reach_outputs_after_their_frame_and_open_tracks_end_with_the_run() -> None:
    """A face seen on every frame of a file: it is confirmed on its third measured frame (the
    face_appeared right after that frame's write) and ends with the source (face_left,
    "source_ended"), delivered after the last frame."""
    sink = EventCollector()
    settings = RunnerSettings(tracking=True, live=False, detect_every=1)
    summary = run_camera(NumberedSource(6, live=False), OneFace(), [sink], settings)
    frames = [entry for entry in sink.log if entry[0] == "frame"]
    assert frames == [("frame", k) for k in range(6)]
    appeared = sink.log.index(("face_appeared", None))
    assert sink.log[appeared - 1] == ("frame", 2)
    assert sink.log[-1] == ("face_left", "source_ended")
    assert summary.ended_by == "source"


class EventKeeper(Collector):
    def __init__(self) -> None:
        super().__init__()
        self.events: list = []

    def on_events(self, events) -> None:
        self.events += events


def test_an_output_that_enriches_events_hands_them_to_the_outputs_after_it(tmp_path: Path) -> None:
    """The snapshot output adds paths to the face events; outputs after it get those, the ones
    before it the events as the runner raised them."""
    before, after = EventKeeper(), EventKeeper()
    snapshots = SnapshotSink(tmp_path, "numbers")
    settings = RunnerSettings(tracking=True, live=False, detect_every=1)
    run_camera(NumberedSource(6, live=False), OneFace(), [before, snapshots, after], settings)
    assert [e.kind for e in before.events] == [e.kind for e in after.events] == ["face_appeared", "face_left"]
    assert [e.event_id for e in before.events] == [e.event_id for e in after.events]
    assert all(e.snapshots == () for e in before.events)
    appeared, left = after.events
    assert len(appeared.snapshots) == 2 and len(left.snapshots) == 1
    assert all(Path(path).is_file() for path in (*appeared.snapshots, *left.snapshots))


def test_a_live_channel_never_drops_an_item_that_must_arrive() -> None:
    dropped = []
    channel = FrameChannel(
        2, False, threading.Event(), lambda: dropped.append(1), droppable=lambda v: v % 2 == 0
    )
    for value in (1, 3, 4, 5, 6):
        channel.put(value)
    assert [channel.poll() for _ in range(4)] == [1, 3, 5, 6]
    assert len(dropped) == 1


def test_recordings_keep_the_colours_of_the_frames(tmp_path: Path) -> None:
    """Colour blocks survive the BGR -> YUV conversion and encoding, in both recorder paths
    (OpenCV's I420 for H.264, FFmpeg's converter for MJPEG's full-range yuvj420p)."""
    import av

    image = np.zeros((96, 128, 3), np.uint8)
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (40, 160, 220)]
    for k, colour in enumerate(colours):
        image[:, 32 * k : 32 * (k + 1)] = colour
    for codec, suffix in (("h264", ".mp4"), ("mjpeg", ".avi")):
        out = tmp_path / f"colours{suffix}"
        recorder = VideoRecorder(out, fps=30, codec=codec)
        for index in range(3):
            frame = Frame(index, index / 30, 0.0, image)
            recorder.write(_result(frame), image)
        recorder.close()
        with av.open(str(out)) as container:
            decoded = next(container.decode(video=0)).to_ndarray(format="bgr24")
        for k, colour in enumerate(colours):
            block = decoded[16:80, 32 * k + 8 : 32 * (k + 1) - 8].reshape(-1, 3).mean(axis=0)
            assert np.abs(block - colour).max() < 8, (codec, colour, block)


def _result(frame: Frame):
    from livefaces.frames import FrameResult
    from livefaces.tracker import TrackedFaces

    faces = TrackedFaces(Detections.empty(), np.zeros(0, bool), np.zeros(0, bool))
    return FrameResult("colours", frame, faces, True)
