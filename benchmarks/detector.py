"""Detector speed: livefaces against the `mtcnn` and `facenet-pytorch` packages, and a soak run.

    python benchmarks/detector.py                  # speed, batch and same-call tables + soak
    python benchmarks/detector.py --soak 0         # tables only
    python benchmarks/detector.py --parts same-call  # only the same-call comparison
    /opt/peers/bin/python benchmarks/detector.py   # an environment that also has the peers

Real frames (../shared/data/videos when present, else the bundled image) are resized to
640x480 and 1280x720; every detector sees the same frames with the paper's settings. The
figures are medians (and 90th percentiles) of single-call wall times after a warm-up. The soak
alternates the two sizes and reports graph retracing and resident-memory growth.

The same-call table runs identical code on livefaces and the `mtcnn` package, only the import
changed: `MTCNN(device="CPU:0")`, then `detect_faces(path, **settings)` on 8 real photos one file
at a time, `detect_faces([8 photo arrays])` and `detect_faces([8 video frames at 640x480])`
(photos from ../shared/data/images, sides <= 1280 px, else the bundled image 8 times).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from frames import BUNDLED, DATA, real_frames, resized
from peers import (
    FACTORIES,
    MIN_FACE,
    MTCNN_CLASSES,
    SAME_CALL,
    THRESHOLDS,
    available,
    json_from_child,
    mtcnn_class,
)
from rich.console import Console
from rich.table import Table

SIZES = ((640, 480), (1280, 720))
WARMUP = 3
PHOTOS = DATA / "images"
SAME_CALL_IMAGES = 8
MAX_PHOTO_SIDE = 1280
PARTS = ("speed", "batch", "same-call", "soak")


def timed_calls(call, items: list, repeat: int) -> np.ndarray:
    """Wall time in ms of each call of `call(item)`, over `repeat` passes, after a warm-up."""
    for item in items[:WARMUP]:
        call(item)
    times = []
    for _ in range(repeat):
        for item in items:
            start = time.perf_counter()
            call(item)
            times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def worker(name: str, per_video: int, repeat: int) -> None:
    """Time one detector on every size and print {size: [ms, ...]} as JSON (run in a child)."""
    detect = available([name])[name]
    frames, _ = real_frames(per_video)
    times = {f"{w}x{h}": timed_calls(detect, resized(frames, w, h), repeat).tolist() for w, h in SIZES}
    print(json.dumps(times))


def times_in_child(name: str, per_video: int, repeat: int) -> dict[str, np.ndarray] | None:
    found = json_from_child(__file__, name, ["--per-video", str(per_video), "--repeat", str(repeat)])
    return None if found is None else {size: np.array(ms) for size, ms in found.items()}


def speed_table(names: list[str], per_video: int, repeat: int, console: Console) -> None:
    results = {name: times_in_child(name, per_video, repeat) for name in names}
    results = {name: times for name, times in results.items() if times is not None}
    table = Table(title="ms per frame (median / p90), paper settings, same frames")
    table.add_column("size")
    for name in results:
        table.add_column(name, justify="right")
    peers = [name for name in results if name != "livefaces"]
    for name in peers:
        table.add_column(f"livefaces faster than {name}", justify="right")
    for width, height in SIZES:
        size = f"{width}x{height}"
        cells = [f"{np.median(t[size]):.1f} / {np.percentile(t[size], 90):.1f}" for t in results.values()]
        ratios = []
        if "livefaces" in results:
            own = np.median(results["livefaces"][size])
            ratios = [f"{np.median(results[name][size]) / own:.2f}x" for name in peers]
        table.add_row(size, *cells, *ratios)
    console.print(table)


def batch_table(frames: list[np.ndarray], repeat: int, console: Console) -> None:
    from livefaces import MTCNN

    detector = MTCNN(min_face_size=MIN_FACE, thresholds=THRESHOLDS)
    table = Table(title="livefaces: detect() against detect_batch() of 4 frames, ms per frame (median)")
    for column in ("size", "detect", "detect_batch(4)"):
        table.add_column(column, justify="right")
    for width, height in SIZES:
        sized = resized(frames, width, height)
        single = np.median(timed_calls(detector.detect, sized, repeat))
        groups = [sized[i : i + 4] for i in range(0, len(sized) - 3, 4)] or [sized * 4]
        batched = np.median(timed_calls(detector.detect_batch, groups, repeat)) / len(groups[0])
        table.add_row(f"{width}x{height}", f"{single:.1f}", f"{batched:.1f}")
    console.print(table)


def photos(count: int = SAME_CALL_IMAGES) -> tuple[list[Path], str]:
    """`count` real photos (sides <= MAX_PHOTO_SIDE, by name), or the bundled image repeated."""
    found = sorted(
        path for path in PHOTOS.glob("*.jpg") if max(cv2.imread(str(path)).shape[:2]) <= MAX_PHOTO_SIDE
    )
    if not found:
        print(f"{PHOTOS} not found: using the bundled image {count} times", file=sys.stderr)
        return [BUNDLED] * count, f"{BUNDLED.name} x {count}"
    picked = (found * count)[:count]
    return picked, f"{len(picked)} photos from {PHOTOS}: " + ", ".join(path.name for path in picked)


def same_call_worker(name: str, per_video: int, repeat: int) -> None:
    """Time the same `detect_faces` calls with one package's MTCNN; print JSON (run in a child)."""
    detector = mtcnn_class(name)(device="CPU:0")
    paths = [str(path) for path in photos()[0]]
    arrays = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB) for path in paths]
    frames = (resized(real_frames(per_video)[0], 640, 480) * SAME_CALL_IMAGES)[:SAME_CALL_IMAGES]
    calls = {
        "paths": lambda: [detector.detect_faces(path, **SAME_CALL) for path in paths],
        "photo batch": lambda: detector.detect_faces(arrays, **SAME_CALL),
        "frame batch": lambda: detector.detect_faces(frames, **SAME_CALL),
    }
    measured = {}
    for label, call in calls.items():
        found = call()  # warm-up: graphs traced, weights loaded
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        faces = sum(face["confidence"] >= 0.9 for image in found for face in image)
        measured[label] = {"seconds": seconds, "faces": int(faces)}
    print(json.dumps(measured))


def same_call_table(per_video: int, repeat: int, console: Console) -> None:
    """livefaces against `mtcnn` on identical calls, each package in its own process."""
    args = ["--same-call", "--per-video", str(per_video), "--repeat", str(repeat)]
    results = {name: json_from_child(__file__, name, args) for name in MTCNN_CLASSES}
    if any(result is None for result in results.values()):
        console.print("same-call table skipped: it needs both livefaces and the mtcnn package")
        return
    console.print(f"photos: {photos()[1]}")
    table = Table(title=f"same detect_faces calls, {SAME_CALL_IMAGES} images, images per second (median)")
    for column in ("call", "livefaces", "mtcnn", "livefaces faster", "faces >= 0.9 (livefaces / mtcnn)"):
        table.add_column(column, justify="right")
    labels = {
        "paths": "detect_faces(path) per photo",
        "photo batch": "detect_faces([8 photo arrays])",
        "frame batch": "detect_faces([8 frames 640x480])",
    }
    for key, label in labels.items():
        rates = {name: SAME_CALL_IMAGES / np.median(results[name][key]["seconds"]) for name in results}
        faces = " / ".join(str(results[name][key]["faces"]) for name in MTCNN_CLASSES)
        ratio = rates["livefaces"] / rates["mtcnn"]
        table.add_row(label, f"{rates['livefaces']:.1f}", f"{rates['mtcnn']:.1f}", f"{ratio:.1f}x", faces)
    console.print(table)


def resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tracing_count(detector) -> int:
    """How many times the detector's graphs have been traced so far."""
    graphs = [*detector._pyramids.values(), detector._rnet, detector._onet]
    return sum(graph.experimental_get_tracing_count() for graph in graphs)


def soak(frames: list[np.ndarray], calls: int, console: Console) -> None:
    from livefaces import MTCNN

    detector = MTCNN(min_face_size=MIN_FACE, thresholds=THRESHOLDS)
    small, large = (resized(frames, w, h) for w, h in SIZES)
    for image in small[:WARMUP] + large[:WARMUP]:
        detector.detect(image)
    gc.collect()
    traced, rss = tracing_count(detector), resident_mb()
    start = time.perf_counter()
    for i in range(calls):
        pool = small if i % 2 == 0 else large
        detector.detect(pool[(i // 2) % len(pool)])
    elapsed = time.perf_counter() - start
    gc.collect()
    table = Table(title=f"soak: {calls} calls alternating 640x480 and 1280x720 after one warm-up of each")
    for column in ("calls", "seconds", "graphs retraced", "RSS before MB", "RSS after MB", "RSS growth MB"):
        table.add_column(column, justify="right")
    after = resident_mb()
    table.add_row(
        str(calls),
        f"{elapsed:.0f}",
        str(tracing_count(detector) - traced),
        f"{rss:.0f}",
        f"{after:.0f}",
        f"{after - rss:+.1f}",
    )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(FACTORIES), help="comma-separated names")
    parser.add_argument("--per-video", type=int, default=5, help="frames taken from each video")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames per detector")
    parser.add_argument("--soak", type=int, default=2000, help="soak calls (0: skip)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--same-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = same_call_worker if args.same_call else worker
        run(args.worker, args.per_video, args.repeat)
        return
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {PARTS}")
    console = Console(width=None if sys.stdout.isatty() else 120)
    frames, origin = real_frames(args.per_video)
    console.print(f"frames: {origin}")
    if "speed" in parts:
        speed_table(args.detectors.split(","), args.per_video, args.repeat, console)
    if "batch" in parts:
        batch_table(frames, args.repeat, console)
    if "same-call" in parts:
        same_call_table(args.per_video, args.repeat, console)
    if args.soak and "soak" in parts:
        soak(frames, args.soak, console)


if __name__ == "__main__":
    main()
