"""`--save-faces`: face crops from photo folders and videos, as a user runs it (a real process).

Photo folders: a broken file is named on one line and the rest processed; a second run of the
same command reprocesses nothing; a run stopped by Ctrl-C and run again leaves every photo in the
index exactly once. Videos: `--save-every S` keeps at most one crop per track per S seconds.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import pytest

from livefaces.demo import DemoScene
from tests.conftest import ASSETS
from tests.log_lines import messages
from tests.test_cli_process import TIMEOUT, environment, livefaces
from tests.videos import write_video

ORIGINALS = ("astronaut.jpg", "demo/later.jpg", "demo/scene.png")


def index_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]


def make_photos(folder: Path, copies: int = 1) -> list[str]:
    """The astronaut and two demo frames (in a sub-folder), `copies` times each; their paths
    relative to `folder`, in the order the walk gives them."""
    scene = DemoScene(640, 480)
    (folder / "demo").mkdir(parents=True)
    cv2.imwrite(str(folder / "demo" / "scene.png"), scene.render(0))
    cv2.imwrite(str(folder / "demo" / "later.jpg"), scene.render(45))
    shutil.copy(ASSETS / "astronaut.jpg", folder / "astronaut.jpg")
    names = list(ORIGINALS)
    for copy in range(1, copies):
        for name in ORIGINALS:
            target = folder / f"copy{copy:03d}" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(folder / name)
            names.append(target.relative_to(folder).as_posix())
    return sorted(names, key=lambda name: name.split("/"))


def test_a_folder_with_a_broken_file(tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "faces"
    names = make_photos(photos)
    (photos / "demo" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    result = livefaces("--source", str(photos), "--no-display", "--save-faces", str(out), "--face-size", "96")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    skipped = [line for line in messages(err) if "skipped" in line and "broken.jpg" in line]
    assert skipped == [f"livefaces: skipped {photos / 'demo' / 'broken.jpg'}: not a readable image"], err
    assert "livefaces: done: 3 frames" in err
    index = index_of(out / "photos")
    assert sorted({line["photo"] for line in index}) == sorted(names)
    saved = [line for line in index if line["crop"] is not None]
    assert len(saved) >= 3 and {line["photo"] for line in saved} == set(names)
    for line in saved:
        crop = cv2.imread(str(out / "photos" / line["crop"]))
        assert crop.shape == (96, 96, 3)
        assert line["confidence"] >= 0.7 and len(line["box"]) == 4 and len(line["landmarks"]) == 5
        assert line["track"] is None
    assert (out / "photos" / "astronaut_0.jpg").exists() and (
        out / "photos" / "demo" / "scene_0.jpg"
    ).exists()


def test_running_again_reprocesses_nothing_and_picks_up_new_photos(tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "faces"
    names = make_photos(photos)
    command = (
        "--source",
        str(photos),
        "--no-display",
        "--save-faces",
        str(out),
        "--align",
        "--face-format",
        "png",
    )
    first = livefaces(*command)
    assert first.returncode == 0, first.stderr.decode()
    lines = index_of(out / "photos")
    assert {line["photo"] for line in lines} == set(names)
    assert all(
        cv2.imread(str(out / "photos" / line["crop"])).shape == (112, 112, 3)
        for line in lines
        if line["crop"]
    )

    again = livefaces(*command)
    err = again.stderr.decode()
    assert again.returncode == 0, err
    assert index_of(out / "photos") == lines  # nothing reprocessed, nothing appended
    assert f"{len(names)} photos already in the index were skipped" in err

    cv2.imwrite(
        str(photos / "blank.png"), cv2.resize(cv2.imread(str(photos / "astronaut.jpg")), (64, 64)) * 0
    )
    third = livefaces(*command)
    assert third.returncode == 0, third.stderr.decode()
    added = index_of(out / "photos")[len(lines) :]
    assert added == [{"camera": "photos", "photo": "blank.png", "crop": None}]  # no face: done all the same


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_a_stopped_run_resumes_with_each_photo_once(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C finishes the photos in hand; a crash (SIGKILL, and a half-written last line as a
    kill in the middle of a write leaves) loses at most the photo in progress."""
    photos, out = tmp_path / "photos", tmp_path / "faces"
    names = make_photos(photos, copies=40)
    command = [sys.executable, "-m", "livefaces", "--source", str(photos), "--no-display"]
    command += ["--save-faces", str(out), "--json", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment())
    try:
        assert process.stdout is not None
        for _ in range(3):  # three photos through the detector: the run is under way
            assert json.loads(process.stdout.readline())["file"]
        process.send_signal(stop)
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    if stop == signal.SIGINT:
        assert process.returncode == 0, err.decode()
        assert "stopped by Ctrl-C" in err.decode()
    else:
        assert process.returncode == -signal.SIGKILL
        with open(out / "photos" / "index.jsonl", "a") as index:
            index.write('{"camera": "photos", "photo": "copy039/demo/sce')
    stopped = (out / "photos" / "index.jsonl").read_text().splitlines()
    done = {json.loads(line)["photo"] for line in stopped if line.endswith("}")}
    assert 2 <= len(done) < len(names)

    resumed = livefaces("--source", str(photos), "--no-display", "--save-faces", str(out))
    assert resumed.returncode == 0, resumed.stderr.decode()
    index = index_of(out / "photos")
    per_photo = Counter(line["photo"] for line in index)
    assert set(per_photo) == set(names)
    original = {name: per_photo[name] for name in ORIGINALS}  # lines one photo of each kind gives
    for name, count in per_photo.items():
        assert count == original[name.split("/", 1)[1] if name.startswith("copy") else name], name
    assert len({line["crop"] for line in index}) == len(index)  # each crop file once


def test_photos_cannot_take_save_every(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_photos(photos)
    result = livefaces(
        "--source", str(photos), "--no-display", "--save-faces", str(tmp_path / "f"), "--save-every", "1"
    )
    assert result.returncode == 2
    assert messages(result.stderr.decode()) == [
        "livefaces: error: --save-every: keeps one crop per tracked face per S seconds; files need "
        "--realtime (or --detect-every auto), and photos have no tracks"
    ]


@pytest.mark.parametrize("every", [1.0, 0.5])
def test_save_every_keeps_at_most_one_crop_per_track_per_window(tmp_path: Path, every: float) -> None:
    video = write_video(tmp_path / "clip.mp4", frames=96, size=(640, 480), fps=24)
    out = tmp_path / "faces"
    result = livefaces(
        "--source",
        str(video),
        "--no-display",
        "--realtime",
        "--save-faces",
        str(out),
        "--save-every",
        str(every),
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    index = index_of(out / "clip")
    assert index and all(line["track"] is not None for line in index)
    windows = Counter((line["track"], int(line["time"] // every)) for line in index)
    assert max(windows.values()) == 1, windows
    tracks = {line["track"] for line in index}
    assert len(index) <= len(tracks) * (4 / every + 1)  # 4 s of video
    for line in index:
        name = line["crop"]
        assert name == f"clip_{line['frame']:07d}_{line['time']:.3f}s_track{line['track']}.jpg"
        assert (out / "clip" / name).exists()

    every_face = livefaces(
        "--source", str(video), "--no-display", "--realtime", "--save-faces", str(tmp_path / "all")
    )
    assert every_face.returncode == 0
    assert len(index_of(tmp_path / "all" / "clip")) > 2 * len(index)  # the limit is what kept it small


def test_save_every_on_demo_picks_the_best_of_each_window(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    common = ("--source", "demo", "--no-display", "--realtime", "--max-frames", "90", "--save-faces")
    limited = livefaces(*common, str(out), "--save-every", "1", "--margin", "20%")
    assert limited.returncode == 0, limited.stderr.decode()
    every_face = livefaces(*common, str(tmp_path / "all"), "--margin", "20%")
    assert every_face.returncode == 0
    picked, seen = index_of(out / "demo"), index_of(tmp_path / "all" / "demo")
    assert picked and max(Counter((line["track"], int(line["time"])) for line in picked).values()) == 1
    for line in picked:  # the pick is the window's best by confidence (to 0.01), then sharpness
        window = [s for s in seen if s["track"] == line["track"] and int(s["time"]) == int(line["time"])]
        best = max((round(s["confidence"], 2), s["sharpness"]) for s in window)
        assert (round(line["confidence"], 2), line["sharpness"]) == best


def test_save_every_needs_tracking_on_files(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", frames=4)
    result = livefaces(
        "--source", str(video), "--no-display", "--save-faces", str(tmp_path), "--save-every", "1"
    )
    assert result.returncode == 2 and len(messages(result.stderr.decode())) == 1
    assert "--save-every" in result.stderr.decode()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--margin", "-3"], "--margin: must be pixels such as 20 or a percentage"),
        (["--margin", "wide"], "--margin: must be pixels"),
        (["--face-size", "4"], "--face-size: must be an integer >= 8"),
        (["--face-format", "gif"], "--face-format: invalid choice"),
    ],
)
def test_bad_crop_options_are_one_line(tmp_path: Path, args: list[str], problem: str) -> None:
    result = livefaces("--save-faces", str(tmp_path), "--no-display", *args)
    lines = messages(result.stderr.decode())
    assert result.returncode == 2 and len(lines) == 1 and problem in lines[0], lines


def test_save_faces_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = livefaces(
        "--source", str(ASSETS / "astronaut.jpg"), "--no-display", "--save-faces", str(tmp_path / "file")
    )
    assert result.returncode == 2
    assert messages(result.stderr.decode()) == [
        f"livefaces: error: {tmp_path / 'file'}: --save-faces must be a folder"
    ]


def test_crop_options_from_the_command_line_and_the_config_file(tmp_path: Path) -> None:
    from livefaces.options import parse_command_line

    given = parse_command_line(["--save-faces", "out", "--margin", "25%", "--face-size", "160", "--align"])
    assert (given.save_faces, given.margin, given.face_size, given.align) == ("out", "25%", 160, True)
    assert (given.face_format, given.save_every) == ("jpg", None)
    config = tmp_path / "run.toml"
    config.write_text('save_faces = "faces"\nmargin = 20\nface_format = "png"\nsave_every = 0.5\n')
    from_file = parse_command_line(["--config", str(config), "--source", "demo"])
    assert from_file.save_faces == str(tmp_path / "faces")  # beside the config file
    assert (from_file.margin, from_file.face_format, from_file.save_every) == ("20", "png", 0.5)
