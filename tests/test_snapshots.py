"""Snapshots: the best crop of each track, paths in the events, the per-minute limit, retention
by age and disk use (fake clocks, real files), names that are safe; then the real command line
on a clip where one face appears and leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.events import FaceAppeared, FaceLeft, track_events
from livefaces.frames import Frame, FrameResult
from livefaces.options import ConfigError, parse_command_line
from livefaces.outputs.retention import DAY, Retention, snapshot_files, sweep
from livefaces.outputs.snapshots import SnapshotLimit, SnapshotSink, crop, safe_name
from livefaces.tracker import Tracker
from tests.test_cli_process import environment
from tests.test_tracker import faces
from tests.videos import write_face_video

NOW = 1_714_564_800.25  # 2024-05-01T12:00:00.250 UTC
BOX = (100.0, 60.0, 160.0, 120.0)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shade(k: int) -> int:
    return 20 + 15 * k


def feed(sink: SnapshotSink, scores: list[float | None], extra_once: bool = False) -> list:
    """Frames 0.1 s apart through a real tracker into `sink`, as the writer does: write, then the
    frame's events (with their returned replacements). Frame k is grey `shade(k)`, so a crop
    tells which frame it came from. None: no face on that frame."""
    tracker, handed = Tracker(), []
    for k, score in enumerate(scores):
        t = k * 0.1
        found = faces(BOX, score=score) if score is not None else Detections.empty()
        if extra_once and k == 0:
            found = faces(BOX, (10.0, 10.0, 40.0, 40.0), score=score or 0.9)
        step = tracker.step(found, t)
        events = tuple(track_events("door", step.births, step.ends, NOW + t))
        image = np.full((240, 320, 3), shade(k), np.uint8)
        sink.write(FrameResult("door", Frame(k, t, 0.0, image), step.snapshot.at(t), True, events), image)
        if events:
            handed += sink.on_events(events)
    return handed


def mean_of(path: str) -> float:
    return float(cv2.imread(path).mean())


def test_a_face_gets_its_crop_and_frame_when_it_appears_and_its_best_shot_when_it_leaves(
    tmp_path: Path,
) -> None:
    sink = SnapshotSink(tmp_path, "door")
    handed = feed(sink, [0.90, 0.93, 0.95, 0.99, 0.92, *[None] * 8], extra_once=True)
    appeared, left = handed
    assert isinstance(appeared, FaceAppeared) and isinstance(left, FaceLeft)
    face, frame = appeared.snapshots
    assert face.endswith("door_20240501T120000.450Z_track0_face.jpg")
    assert Path(face).parent == tmp_path / "door" / "2024-05-01"
    assert cv2.imread(frame).shape == (240, 320, 3) and mean_of(frame) == pytest.approx(shade(2), abs=1.5)
    assert cv2.imread(face).shape == (96, 96, 3)  # the 60 px box with 30 % on each side
    assert mean_of(face) == pytest.approx(shade(2), abs=1.5)  # confirmed on its third frame
    (best,) = left.snapshots
    assert best.endswith("door_20240501T120000.450Z_track0_best.jpg")
    assert mean_of(best) == pytest.approx(shade(3), abs=1.5)  # 0.99: the best shot
    assert left.best_confidence == pytest.approx(0.99)
    assert sink.written == 3 and sink.crops_held == 0  # the tentative extra face was let go too
    assert sink.summary() == f"{tmp_path / 'door'}: 3 snapshots"


def test_the_limit_leaves_events_without_the_files_that_do_not_fit(tmp_path: Path) -> None:
    sink = SnapshotSink(tmp_path, "door", SnapshotLimit(2, FakeClock()))
    appeared, left = feed(sink, [0.9, 0.9, 0.9, 0.9, *[None] * 8])
    assert len(appeared.snapshots) == 2 and left.snapshots == ()
    assert sink.written == 2 and sink.skipped == 1
    assert "1 skipped by --snapshot-limit (2 a minute)" in sink.summary()


def test_the_limit_counts_files_in_any_minute() -> None:
    clock = FakeClock()
    limit = SnapshotLimit(3, clock)
    assert limit.allow(2) and not limit.allow(2) and limit.allow(1) and not limit.allow(1)
    clock.now = 59.9
    assert not limit.allow(1)
    clock.now = 60.0  # the first minute's files are out of the window
    assert limit.allow(3) and not limit.allow(1)


def test_a_file_that_cannot_be_written_is_counted_and_the_camera_goes_on(tmp_path: Path) -> None:
    blocked = tmp_path / "snaps"
    blocked.mkdir()
    (blocked / "door").write_text("a file where the camera's folder should be")
    sink = SnapshotSink(blocked, "door")
    appeared, left = feed(sink, [0.9, 0.9, 0.9, 0.9, *[None] * 8])
    assert appeared.snapshots == () and left.snapshots == ()
    assert sink.failed == 3 and "3 could not be written" in sink.summary()


@pytest.mark.parametrize(
    ("camera", "safe"),
    [
        ("front", "front"),
        ("rtsp://admin:p@ss@192.0.2.1:554/live?token=abc", "rtsp-192.0.2.1-554-live-token"),
        ("camera 0", "camera-0"),
        ("../../etc", "etc"),
        ("", "camera"),
    ],
)
def test_camera_names_become_safe_file_names_without_credentials(camera: str, safe: str) -> None:
    assert safe_name(camera) == safe


def test_crops_keep_a_margin_and_stay_inside_the_image() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    assert crop(image, (50, 20, 90, 60)).shape == (64, 64, 3)  # a 40 px box with 12 px on each side
    assert crop(image, (-20, -20, 20, 20)).shape == (32, 32, 3)  # clipped at the corner
    assert crop(image, (300, 300, 340, 340)) is None


# Retention: real files, ages set with os.utime against a fake clock.


def snapshot(root: Path, camera: str, day: str, track: int, age_days: float, size: int = 1000) -> Path:
    path = root / camera / day / f"{camera}_{day.replace('-', '')}T120000.000Z_track{track}_face.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff" * size)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def test_files_past_keep_days_are_removed_and_nothing_else(tmp_path: Path) -> None:
    old = [snapshot(tmp_path, "door", "2024-04-01", i, age_days=30 + i) for i in range(3)]
    recent = snapshot(tmp_path, "yard", "2024-04-30", 7, age_days=1)
    foreign = tmp_path / "door" / "2024-04-02" / "holiday.jpg"
    foreign.parent.mkdir()
    foreign.write_bytes(b"mine")
    os.utime(foreign, (0, 0))
    crashed, writing = (recent.with_name(f"{recent.stem}-{n}.jpg.part") for n in (2, 3))
    for path, age in ((crashed, 2 * 3600), (writing, 1)):
        path.write_bytes(b"\xff")
        os.utime(path, (NOW - age, NOW - age))
    swept = sweep(tmp_path, NOW, keep_days=10, max_bytes=None)
    assert (swept.files, swept.bytes) == (3, 3000)
    assert not any(path.exists() for path in old) and not (tmp_path / "door" / "2024-04-01").exists()
    assert recent.exists() and foreign.exists()
    assert not crashed.exists() and writing.exists()


def test_over_max_disk_the_oldest_go_first(tmp_path: Path) -> None:
    paths = [snapshot(tmp_path, f"cam{i % 2}", "2024-05-01", i, age_days=0.5 - i * 0.01) for i in range(6)]
    swept = sweep(tmp_path, NOW, keep_days=None, max_bytes=2500)
    assert swept.files == 4
    assert [path.exists() for path in paths] == [False, False, False, False, True, True]
    assert [found.path for found in snapshot_files(tmp_path)] == paths[4:]


def test_retention_sweeps_at_start_then_once_a_minute(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    retention = Retention(tmp_path, keep_days=1, max_bytes=None, clock=clock)
    first = snapshot(tmp_path, "door", "2024-04-28", 1, age_days=2)
    assert retention.maybe_sweep().files == 1 and not first.exists()  # at the first call
    second = snapshot(tmp_path, "door", "2024-04-28", 2, age_days=2)
    clock.now = NOW + 59
    assert retention.maybe_sweep() is None and second.exists()  # not due yet
    clock.now = NOW + 60
    assert retention.maybe_sweep().files == 1 and not second.exists()
    third = snapshot(tmp_path, "door", "2024-04-28", 3, age_days=2)
    clock.now = NOW  # the wall clock was set back: sweep rather than wait an hour
    assert retention.maybe_sweep().files == 1 and not third.exists()
    assert retention.summary() == f"{tmp_path}: removed 3 old snapshots (0.0 MB)"


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500_000_000), ("2GB", 2_000_000_000), ("1.5 GiB", 1_610_612_736), ("64kb", 64_000)],
)
def test_max_disk_sizes(text: str, size: int) -> None:
    assert parse_command_line(["--max-disk", text]).max_disk == size


def test_max_disk_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cameras.toml"
    config.write_text('snapshots = "snaps"\nmax_disk = "2GB"\nkeep_days = 3\n')
    run = parse_command_line(["--config", str(config)])
    assert (run.max_disk, run.keep_days, run.snapshots) == (2_000_000_000, 3.0, str(tmp_path / "snaps"))
    config.write_text("max_disk = 500\n")
    with pytest.raises(ConfigError, match=r"cameras.toml: max_disk: must be a size with its unit .*got 500$"):
        parse_command_line(["--config", str(config)])


def test_events_paths_may_be_shared_or_per_camera() -> None:
    shared = parse_command_line(["-s", "a=demo", "-s", "b=demo", "--events", "events.jsonl"])
    assert shared.events_for("a") == shared.events_for("b") == "events.jsonl"
    apart = parse_command_line(["-s", "a=demo", "-s", "b=demo", "--events", "events-{name}.jsonl"])
    assert apart.events_for("b") == "events-b.jsonl"
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_command_line(["--events", "events-{camera}.jsonl"])


# The real command line.


def livefaces(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "livefaces", "--no-display", *args]
    return subprocess.run(command, capture_output=True, env=environment(), timeout=300)


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_face_that_comes_and_goes_in_a_clip(tmp_path: Path) -> None:
    clip = write_face_video(tmp_path / "doorway.mp4")
    events_path, snaps = tmp_path / "events.jsonl", tmp_path / "snaps"
    run = livefaces(
        "--source", str(clip), "--realtime", "--events", str(events_path), "--snapshots", str(snaps)
    )
    err = run.stderr.decode()
    assert run.returncode == 0, err
    events = read_events(events_path)
    assert [e["event"] for e in events] == ["face_appeared", "face_left"]
    appeared, left = events
    assert len({e["event_id"] for e in events}) == 2
    assert appeared["camera"] == left["camera"] == "doorway" and appeared["track_id"] == left["track_id"]
    assert left["reason"] == "lost" and 0.25 <= appeared["source_time"] < left["source_time"] <= 2.25
    assert appeared["confidence"] > 0.9 and left["best_confidence"] >= appeared["confidence"]
    paths = [Path(p) for p in appeared["snapshots"] + left["snapshots"]]
    assert [p.name.rsplit("_", 1)[1] for p in paths] == ["face.jpg", "frame.jpg", "best.jpg"]
    assert sorted(snaps.rglob("*.jpg")) == sorted(paths)  # every file named in the events, no other
    face, frame, best = (cv2.imread(str(p)) for p in paths)
    assert frame.shape == (360, 480, 3)
    for picture in (face, best):
        assert 70 <= picture.shape[0] <= 160 and 70 <= picture.shape[1] <= 160
    assert f"wrote {snaps.resolve() / 'doorway'}: 3 snapshots" in err
    assert f"wrote {events_path}: 2 events" in err


@pytest.mark.parametrize("pattern", ["events.jsonl", "events-{name}.jsonl"])
def test_two_cameras_write_one_events_file_or_one_each(tmp_path: Path, pattern: str) -> None:
    clip = write_face_video(tmp_path / "doorway.mp4")
    snaps = tmp_path / "snaps"
    sources = ["--source", f"a={clip}", "--source", f"b={clip}"]
    run = livefaces(*sources, "--realtime", "--events", str(tmp_path / pattern), "--snapshots", str(snaps))
    assert run.returncode == 0, run.stderr.decode()
    files = [tmp_path / pattern.replace("{name}", name) for name in ("a", "b")]
    events = read_events(files[0]) if files[0] == files[1] else read_events(files[0]) + read_events(files[1])
    assert len(events) == 4 and len({e["event_id"] for e in events}) == 4
    for camera in ("a", "b"):
        mine = [e for e in events if e["camera"] == camera]
        assert [e["event"] for e in mine] == ["face_appeared", "face_left"]
        assert all(Path(p).is_file() and f"/{camera}/" in p for e in mine for p in e["snapshots"])
    assert len(list(snaps.rglob("*.jpg"))) == 6


BAD = [
    (["--max-disk", "5XB"], 'argument --max-disk: must be a size with its unit such as "500MB"'),
    (["--max-disk", "500"], "got '500'"),
    (["--keep-days", "0"], "argument --keep-days: must be a number >= 0.01"),
    (["--snapshot-limit", "0"], "argument --snapshot-limit"),
    (["--source", "{clip}", "--snapshots", "{d}/snaps"], "--snapshots: snapshots are taken of tracked faces"),
    (["--source", "{clip}", "--realtime", "--snapshots", "{clip}"], "must be a folder"),
    (["--source", "{clip}", "--realtime", "--snapshots", "{d}/no/snaps"], "does not exist"),
    (["--source", "{clip}", "--events", "{d}/no/events.jsonl"], "does not exist"),
]


@pytest.mark.parametrize(("args", "needle"), BAD)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    clip = write_face_video(tmp_path / "doorway.mp4", face=1, blank_after=1)
    run = livefaces(*(arg.format(d=tmp_path, clip=clip) for arg in args))
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert run.stdout == b""
    assert len(err.splitlines()) == 1 and err.startswith("livefaces: error: ") and needle in err, err
