"""Recordings cut into segments: by time and by a change of picture size, each file complete."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from livefaces.cli import main
from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.recorder import VideoRecorder
from livefaces.segments import SegmentedRecorder, segment_path, with_start
from livefaces.tracker import TrackedFaces
from tests.videos import read_back

NO_FACES = TrackedFaces(Detections.empty(), np.zeros(0, bool), np.zeros(0, bool))


class FakeWallClock:
    """Wall-clock seconds that advance only when the test says so."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def record(recorder: SegmentedRecorder, clock: FakeWallClock, times: list[float], size=(48, 64)) -> None:
    for index, timestamp in enumerate(times):
        clock.now = 1_800_000_000.0 + timestamp
        image = np.full((*size, 3), index % 250, np.uint8)
        recorder.write(FrameResult("cam", Frame(index, timestamp, 0.0, image), NO_FACES, True), image)


def test_segments_are_cut_by_source_time_and_each_plays_from_zero(tmp_path: Path) -> None:
    clock = FakeWallClock(0.0)
    make = functools.partial(VideoRecorder, fps=10.0, rebase=True)
    recorder = SegmentedRecorder(tmp_path / "cam.mp4", make, seconds=2.0, wall_clock=clock)
    record(recorder, clock, [k / 10 for k in range(50)])  # 5 s at 10 fps
    recorder.close()
    paths = recorder.paths
    assert len(paths) == 3
    assert all(p.name.startswith("cam-") and p.suffix == ".mp4" for p in paths)
    assert len(set(paths)) == 3 and all(p.is_file() for p in paths)
    videos = [read_back(p) for p in paths]
    assert [v["frames"] for v in videos] == [20, 20, 10]
    assert all(v["first"] == pytest.approx(0.0, abs=1e-3) for v in videos)
    assert videos[0]["last"] == pytest.approx(1.9, abs=1e-3)
    assert "3 segments" in (recorder.summary() or "")


def test_a_new_picture_size_starts_a_new_segment(tmp_path: Path) -> None:
    clock = FakeWallClock(0.0)
    make = functools.partial(VideoRecorder, fps=10.0, rebase=True)
    recorder = SegmentedRecorder(tmp_path / "cam-{start}.mkv", make, seconds=None, wall_clock=clock)
    record(recorder, clock, [0.0, 0.1, 0.2], size=(48, 64))
    record(recorder, clock, [0.3, 0.4], size=(96, 128))
    recorder.close()
    first, second = (read_back(p) for p in recorder.paths)
    assert (first["frames"], first["size"]) == (3, (64, 48))
    assert (second["frames"], second["size"]) == (2, (128, 96))


def test_segment_names_carry_the_start_and_never_collide(tmp_path: Path) -> None:
    assert with_start(Path("out/rec.mp4")) == Path("out/rec-{start}.mp4")
    assert with_start(Path("{start}-rec.mp4")) == Path("{start}-rec.mp4")
    pattern = tmp_path / "rec-{start}.mp4"
    first = segment_path(pattern, 1_800_000_000.0, set())
    assert "{start}" not in first.name and first.name.startswith("rec-20")
    assert segment_path(pattern, 1_800_000_000.0, {first}) == first.with_name(first.stem + "-2.mp4")
    first.write_bytes(b"")  # an earlier run's file is never overwritten
    assert segment_path(pattern, 1_800_000_000.0, set()) != first


def test_cli_segments_a_demo_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pattern = tmp_path / "demo-{name}.mp4"
    code = main(["--source", "demo", "--duration", "3", "--segment-time", "1", "--output", str(pattern),
                 "--no-display", "--camera-size", "160x120"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    files = sorted(tmp_path.glob("demo-demo-*.mp4"))
    assert len(files) == 3
    assert sum(read_back(f)["frames"] for f in files) == 90
    assert "3 segments" in capsys.readouterr().err


def test_segment_time_refuses_image_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    output = str(tmp_path / "out")
    code = main(["--source", str(image), "--segment-time", "5", "--output", output, "--no-display"])
    assert code == 2
    assert "--segment-time" in capsys.readouterr().err


def test_rotating_segments_frees_each_encoder(tmp_path: Path) -> None:
    """Ten one-second segments: the process's native threads (x264's among them) stay flat, so a
    service cutting segments for weeks does not pile up finished encoders."""
    import os

    def native_threads() -> int:
        return len(os.listdir("/proc/self/task"))

    clock = FakeWallClock(0.0)
    make = functools.partial(VideoRecorder, fps=30.0, rebase=True, crash_safe=True)
    recorder = SegmentedRecorder(tmp_path / "cam.mp4", make, seconds=1.0, wall_clock=clock)
    counts = []
    for second in range(10):
        record(recorder, clock, [second + k / 30 for k in range(30)], size=(120, 160))
        counts.append(native_threads())
    recorder.close()
    assert len(recorder.paths) == 10
    assert max(counts) == counts[0], counts
