"""Face extraction figures: photos per second on a folder of a few thousand photos, the same
folder resumed with nothing left to do, and frames per second extracting faces from 720p videos.

    python benchmarks/extract.py [--copies 100] [--peer-photos 52] [--parts photos,videos]

1. Photos: every image of ../shared/data/images (26), symlinked `--copies` times into a temporary
   folder (100 copies: 2600 files in 100 sub-folders), through the app as a user runs it:
   `python -m livefaces --source DIR --no-display --save-faces OUT`. Reported: photos per second
   over the whole process (TensorFlow's start included) and over the run itself (the log's
   `online` to `ended` stamps), faces saved.
2. The same command again: every photo is in the index, nothing is left to do.
3. The `mtcnn` package's `detect_faces` loop (imread, BGR to RGB, detect_faces with the paper's
   settings) on the first `--peer-photos` files of the same folder (52: two passes over the 26
   distinct images), in its own process under /opt/peers/bin/python (or this interpreter when
   it has `mtcnn`), and livefaces' own `detect_faces` loop on the same files.
4. Videos: each clip of ../shared/data/videos upscaled to 1280x720 (as benchmarks/tracking.py
   does) through `python -m livefaces --source CLIP --realtime --no-display --save-faces OUT
   --save-every 1`: frames per second of the run (`online` to `ended`) and crops saved. The
   facenet-pytorch fast-MTCNN recipe is measured by benchmarks/tracking.py when that package is
   installed (it is not in /opt/peers here).

The machine is shared: repeat runs and read the spread before trusting a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import av
import cv2
from frames import DATA, REPO
from rich.console import Console
from rich.table import Table

from livefaces.capture import IMAGE_SUFFIXES

PEER_PYTHON = Path("/opt/peers/bin/python")
SAME_CALL = {
    "min_face_size": 20,
    "scale_factor": 0.709,
    "threshold_pnet": 0.6,
    "threshold_rnet": 0.7,
    "threshold_onet": 0.7,
}
STAMP = re.compile(r"^(\S+) \w+ livefaces: (?:\[\S+\] )?(online|ended after (\d+) frames)")


def photo_folder(folder: Path, copies: int) -> list[Path]:
    """The shared images symlinked `copies` times, one sub-folder per copy; the files in walk order."""
    images = sorted(p for p in (DATA / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for copy in range(copies):
        sub = folder / f"set{copy:04d}"
        sub.mkdir(parents=True)
        for image in images:
            (sub / image.name).symlink_to(image)
    return [folder / f"set{c:04d}" / image.name for c in range(copies) for image in images]


def run_app(*args: str) -> tuple[float, float | None, int | None, str]:
    """Run livefaces; wall seconds, run seconds (log stamps `online` to `ended`), frames, stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "livefaces", "--no-display", *args], capture_output=True, env=env
    )
    wall = time.perf_counter() - start
    err = done.stderr.decode()
    if done.returncode != 0:
        raise SystemExit(f"livefaces failed ({done.returncode}): {err.strip().splitlines()[-1:]}")
    online = ended = frames = None
    for line in err.splitlines():
        match = STAMP.match(line)
        if match and match.group(2) == "online":
            online = datetime.fromisoformat(match.group(1))
        elif match:
            ended, frames = datetime.fromisoformat(match.group(1)), int(match.group(3))
    run = (ended - online).total_seconds() if online and ended else None
    return wall, run, frames, err


def crops_in(index: Path) -> int:
    return sum(1 for line in index.read_text().splitlines() if json.loads(line).get("crop"))


def detect_faces_loop(package: str, files: list[str]) -> None:
    """Worker: the plain loop users write, printing {"seconds", "faces"} as the last line."""
    if package == "mtcnn":
        from mtcnn import MTCNN

        detector = MTCNN(device="CPU:0")
    else:
        from livefaces import MTCNN

        detector = MTCNN()
    first = cv2.cvtColor(cv2.imread(files[0]), cv2.COLOR_BGR2RGB)
    detector.detect_faces(first, **SAME_CALL)  # warm-up: graphs traced, weights loaded
    start, faces = time.perf_counter(), 0
    for name in files:
        rgb = cv2.cvtColor(cv2.imread(name), cv2.COLOR_BGR2RGB)
        faces += len(detector.detect_faces(rgb, **SAME_CALL))
    print(json.dumps({"seconds": time.perf_counter() - start, "faces": faces}))


def loop_in_child(python: Path, package: str, files: list[Path]) -> dict | None:
    listing = Path(tempfile.mkstemp(suffix=".json")[1])
    listing.write_text(json.dumps([str(f) for f in files]))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [str(python), __file__, "--worker", package, "--files", str(listing)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    listing.unlink()
    if done.returncode != 0 or not done.stdout.strip():
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        print(f"skipping the {package} loop: {reason}", file=sys.stderr)
        return None
    return json.loads(done.stdout.splitlines()[-1])


def peer_python() -> Path | None:
    for python in (Path(sys.executable), PEER_PYTHON):
        if (
            python.exists()
            and subprocess.run([str(python), "-c", "import mtcnn"], capture_output=True).returncode == 0
        ):
            return python
    print(
        "skipping the mtcnn loop: the mtcnn package is installed neither here nor in /opt/peers",
        file=sys.stderr,
    )
    return None


def photos(console: Console, work: Path, copies: int, peer_photos: int) -> None:
    files = photo_folder(work / "photos", copies)
    out = work / "faces"
    command = ("--source", str(work / "photos"), "--save-faces", str(out))
    table = Table(
        title=f"photos: {len(files)} files ({copies} x the {len(files) // copies} of {DATA / 'images'})"
    )
    for column in ("run", "photos", "wall s", "photos/s (wall)", "run s", "photos/s (run)", "faces"):
        table.add_column(column, justify="left" if column == "run" else "right")
    wall, run, frames, _ = run_app(*command)
    saved = crops_in(out / "photos" / "index.jsonl")
    app_rate = len(files) / (run or wall)
    table.add_row(
        "livefaces --save-faces",
        str(frames),
        f"{wall:.1f}",
        f"{len(files) / wall:.1f}",
        _s(run),
        _rate(len(files), run),
        str(saved),
    )
    wall, run, frames, _ = run_app(*command)
    assert crops_in(out / "photos" / "index.jsonl") == saved, "the resumed run saved faces again"
    table.add_row(
        "same command again (resumed, nothing left)",
        str(frames),
        f"{wall:.1f}",
        f"{len(files) / wall:.0f}",
        _s(run),
        "",
        "0",
    )
    subset = files[:peer_photos]
    python = peer_python()
    rows = [("livefaces detect_faces loop", Path(sys.executable), "livefaces")]
    rows += [("mtcnn package detect_faces loop", python, "mtcnn")] if python else []
    for label, interpreter, package in rows:
        result = loop_in_child(interpreter, package, subset)
        if result is not None:
            rate = len(subset) / result["seconds"]
            table.add_row(
                label,
                str(len(subset)),
                "",
                "",
                f"{result['seconds']:.1f}",
                f"{rate:.2f}",
                f"{result['faces']} found",
            )
            if package == "mtcnn":
                table.caption = (
                    f"livefaces --save-faces: {app_rate / rate:.1f}x the mtcnn package's loop (run rates)"
                )
    console.print(table)


def upscaled_clips(folder: Path) -> dict[str, Path]:
    from tracking import encode, fit_1280x720

    clips = {}
    for path in sorted((DATA / "videos").glob("*.m*")):
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            frames = [fit_1280x720(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        clips[path.stem] = encode(frames, rate, folder / f"{path.stem}_1280x720.mp4")
    return clips


def videos(console: Console, work: Path) -> None:
    table = Table(title="videos at 1280x720: --realtime --save-faces DIR --save-every 1")
    for column in ("clip", "frames", "run s", "fps (run)", "wall s", "crops saved"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    total_frames = total_run = 0.0
    for name, clip in upscaled_clips(work).items():
        out = work / f"video-faces-{name}"
        wall, run, frames, _ = run_app(
            "--source", str(clip), "--realtime", "--save-faces", str(out), "--save-every", "1"
        )
        saved = crops_in(next(out.iterdir()) / "index.jsonl")
        table.add_row(name, str(frames), _s(run), _rate(frames or 0, run), f"{wall:.1f}", str(saved))
        total_frames += frames or 0
        total_run += run or 0
    table.add_row(
        "all clips", f"{total_frames:.0f}", f"{total_run:.1f}", _rate(total_frames, total_run), "", ""
    )
    console.print(table)


def _s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f}"


def _rate(count: float, seconds: float | None) -> str:
    return "" if not seconds else f"{count / seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100, help="copies of the shared photos (default 100)")
    parser.add_argument("--peer-photos", type=int, default=52, help="files the detect_faces loops run on")
    parser.add_argument(
        "--parts", default="photos,videos", help="which figures: photos, videos or both (default both)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        detect_faces_loop(args.worker, json.loads(Path(args.files).read_text()))
        return
    if not (DATA / "images").is_dir():
        raise SystemExit(f"{DATA / 'images'} not found: these figures need the shared data")
    console = Console(width=130)
    work = Path(tempfile.mkdtemp(prefix="livefaces-extract-"))
    try:
        parts = set(args.parts.split(","))
        if "photos" in parts:
            photos(console, work, args.copies, args.peer_photos)
        if "videos" in parts:
            videos(console, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
