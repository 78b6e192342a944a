"""The command line end to end on real encoded files: recordings, logs, bounds and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from livefaces.app import _every_frame_shown, wants_tracking
from livefaces.cli import main
from livefaces.demo import DemoScene
from livefaces.options import parse_command_line
from tests.conftest import shared_data
from tests.videos import read_back, write_video


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([*args, "--no-display"])
    return code, capsys.readouterr().err


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("outputs", "shown"),
    [
        (["--save-faces", "crops"], False),
        (["--save-faces", "crops", "--events", "events.jsonl", "--snapshots", "snaps"], False),
        (["--save-faces", "crops", "--json", "faces.jsonl"], True),
        (["--output", "out.mp4"], True),
        (["--save-faces", "crops", "--anonymize", "blur"], True),
    ],
)
def test_coarse_scans_run_only_for_outputs_that_show_every_frame(outputs: list[str], shown: bool) -> None:
    """Face crops, events and snapshots keep a best shot per track over seconds: the detector
    time of coarse scans (a new face found on its first frame, not 0.2 s later) is spent only
    when a window, a video, per-frame JSON or masks show every frame."""
    config = parse_command_line(["--source", "clip.mp4", "--realtime", "--no-display", *outputs])
    assert _every_frame_shown(config, config.cameras[0].name, board=None) is shown


def test_file_to_mp4_keeps_every_frame_timing_and_audio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_video(tmp_path / "in.mp4", frames=24, audio=True)
    out, log = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    code, err = run_cli(["--source", str(source), "--output", str(out), "--json", str(log)], capsys)
    assert code == 0, err
    original, recorded = read_back(source), read_back(out)
    assert recorded["frames"] == original["frames"] == 24
    assert recorded["first"] == pytest.approx(original["first"], abs=1e-3)
    assert recorded["last"] == pytest.approx(original["last"], abs=1e-3)
    assert recorded["duration"] == pytest.approx(original["duration"], abs=0.05)
    assert recorded["audio"] and recorded["audio_packets"] >= original["audio_packets"] - 1
    records = json_lines(log)
    assert [r["frame"] for r in records] == list(range(24))
    assert all(r["detected"] for r in records)
    assert sum(len(r["faces"]) for r in records) > 0
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("codec", "suffix", "out_suffix"), [("mpeg4", ".mkv", ".mkv"), ("mjpeg", ".avi", ".mov")]
)
def test_odd_sized_files_without_audio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, suffix: str, out_suffix: str
) -> None:
    source = write_video(tmp_path / f"in{suffix}", frames=12, size=(321, 241), codec=codec)
    out = tmp_path / f"out{out_suffix}"
    code, err = run_cli(["--source", str(source), "--output", str(out)], capsys)
    assert code == 0, err
    recorded = read_back(out)
    assert recorded["frames"] == 12
    assert recorded["size"] == (322, 242)
    assert not recorded["audio"]


def test_bounds_and_detect_every(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_video(tmp_path / "in.mp4", frames=24)
    log = tmp_path / "faces.jsonl"
    args = ["--source", str(source), "--json", str(log), "--max-frames", "10", "--detect-every", "3"]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    records = json_lines(log)
    assert len(records) == 10
    assert [r["detected"] for r in records] == [i % 3 == 0 for i in range(10)]
    assert records[1]["faces"] == records[0]["faces"]


def test_demo_is_bounded_by_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.mp4"
    args = ["--source", "demo", "--duration", "1", "--camera-fps", "10", "--output", str(out)]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    assert read_back(out)["frames"] == 10


def test_images_folder_to_annotated_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    scene = DemoScene(320, 240)
    cv2.imwrite(str(folder / "b.png"), scene.render(0))
    cv2.imwrite(str(folder / "nested" / "a.jpg"), scene.render(40))
    (folder / "broken.jpg").write_bytes(b"not an image")
    out, log = tmp_path / "annotated", tmp_path / "faces.jsonl"
    code, err = run_cli(["--source", str(folder), "--output", str(out), "--json", str(log)], capsys)
    assert code == 0, err
    assert (out / "b.png").is_file() and (out / "nested" / "a.jpg").is_file()
    records = json_lines(log)
    assert [Path(r["file"]).name for r in records] == ["b.png", "a.jpg"]
    assert all(len(r["faces"]) >= 1 for r in records)


def test_single_image_with_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ASSETS

    code = main(["--source", str(ASSETS / "astronaut.jpg"), "--json", "-", "--no-display"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out.strip())
    assert record["frame"] == 0 and any(f["confidence"] > 0.95 for f in record["faces"])


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda d: ["--source", str(d / "missing.mp4")], "no such file"),
        (lambda d: ["--source", str(d / "notes.mp4")], "not a readable video"),
        (lambda d: ["--source", "ftp://example/video"], "unknown scheme"),
        (lambda d: ["--source", "7"], "camera 7"),
        (lambda d: ["--source", "demo", "--output", str(d / "nowhere" / "out.mp4")], "does not exist"),
        (lambda d: ["--source", "demo", "--output", str(d / "out.gif")], "must end in one of"),
        (lambda d: ["--source", "demo", "--thresholds", "2", "0.7", "0.7"], "--thresholds"),
        (lambda d: ["--source", "demo", "--camera-size", "big"], "WIDTHxHEIGHT"),
        (lambda d: ["--source", str(d / "empty")], "holds no images"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_args, needle: str
) -> None:
    (tmp_path / "notes.mp4").write_text("this is not a video\n")
    (tmp_path / "empty").mkdir()
    code, err = run_cli(make_args(tmp_path), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("livefaces: error:"), err
    assert needle in lines[0]


def test_corrupt_frame_in_the_middle_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_video(tmp_path / "in.avi", frames=20, codec="mjpeg")
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = b"\x00" * 400
    source.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    code, err = run_cli(["--source", str(source), "--output", str(out)], capsys)
    assert code == 0, err
    assert 15 <= read_back(out)["frames"] <= 20


def test_sigterm_mid_run_leaves_a_playable_recording(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    args = [sys.executable, "-m", "livefaces", "--source", "demo", "--no-display", "--output", str(out)]
    process = subprocess.Popen(
        [*args, "--json", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    for _ in range(15):
        assert json.loads(process.stdout.readline())["frame"] >= 0
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read().decode().splitlines()
    err = process.stderr.read().decode() if process.stderr else ""
    assert process.wait(60) == 0, err
    assert "Traceback" not in err
    assert read_back(out)["frames"] == 15 + len(rest)


def test_real_clip_with_audio_is_copied_frame_for_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = shared_data("videos/face_recognition__short_hamilton_clip.mp4")
    out = tmp_path / "out.mp4"
    code, err = run_cli(["--source", str(clip), "--output", str(out), "--max-frames", "60"], capsys)
    assert code == 0, err
    original, recorded = read_back(clip), read_back(out)
    assert recorded["frames"] == 60 and recorded["audio"]
    assert recorded["first"] == pytest.approx(original["first"], abs=1e-3)


def test_realtime_file_run_tracks_every_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_video(tmp_path / "in.mp4", frames=30)
    out, log = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    args = ["--source", str(source), "--realtime", "--output", str(out), "--json", str(log)]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    assert read_back(out)["frames"] == 30
    records = json_lines(log)
    assert [r["frame"] for r in records] == list(range(30))
    faces = [face for r in records for face in r["faces"]]
    assert faces and all("track_id" in face for face in faces)
    assert len({face["track_id"] for face in faces}) <= 3


def test_exact_file_run_has_no_track_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_video(tmp_path / "in.mp4", frames=6)
    log = tmp_path / "faces.jsonl"
    code, err = run_cli(["--source", str(source), "--json", str(log)], capsys)
    assert code == 0, err
    faces = [face for r in json_lines(log) for face in r["faces"]]
    assert faces and not any("track_id" in face for face in faces)


@pytest.mark.parametrize(
    ("every", "live", "realtime", "tracking"),
    [
        (None, True, False, True),
        (None, False, False, False),
        (None, False, True, True),
        ("auto", False, False, True),
        (3, True, False, False),
        (1, False, False, False),
    ],
)
def test_when_the_app_tracks(every: int | str | None, live: bool, realtime: bool, tracking: bool) -> None:
    assert wants_tracking(every, live, realtime) is tracking


def test_realtime_with_a_fixed_cadence_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["--source", "demo", "--realtime", "--detect-every", "3"], capsys)
    assert code == 2
    assert err.strip() == (
        "livefaces: error: --realtime tracks faces (--detect-every auto): leave out --detect-every N"
    )


def test_tracking_is_refused_for_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), DemoScene().render(0))
    code, err = run_cli(["--source", str(image), "--realtime"], capsys)
    assert code == 2
    assert err.strip() == (
        "livefaces: error: --detect-every auto and --realtime track faces across video frames, not images"
    )
