"""Unit costs behind the fleet's capacity model (README, "Many machines: Ray"), on one core.

    python benchmarks/capacity.py [--repeats 40] [--faces 2] [--scans 5]

Everything runs with TensorFlow on one op thread, as a detector worker given one CPU runs, on
real frames (../shared/data/videos upscaled to 1280x720, else the bundled image):

- camera side, per frame: decoding a 1280x720 H.264 frame with PyAV (the Hamilton clip encoded
  as benchmarks/cameras.py does), shrinking it to the pyramid's input (768x432, INTER_AREA, as a
  fleet camera does before a scan) and converting it to RGB, cutting the 48x48 patches of the
  tracked faces, and encoding the recording's frame (libx264 ultrafast);
- detector side, per request: a full scan of the 768x432 pyramid input for 12-pixel faces (what
  a fleet detector runs for a 1280x720 camera at the default 20-pixel faces), alone and four
  cameras' scans in one batch, against the whole 1280x720 frame for 20-pixel faces; and a
  refinement (O-Net on the patches of `--faces` faces), alone and eight cameras' in one call;
- on the wire: the bytes of a scan request and of a refinement request.

Then the model for one camera at 30 fps with `--scans` full scans and `--refines` refinements per
second (benchmarks/fleet.py prints the rates the cameras really ran at): detector milliseconds
per camera-second, hence cameras per detector core.
The camera side is better read from benchmarks/fleet.py's measured camera-worker CPU (decoding,
tracking, recording, serialising, Ray), which the parts here only bound from below.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
from frames import BUNDLED, VIDEOS
from rich.console import Console
from rich.table import Table

FPS = 30
SIZE = (1280, 720)
PYRAMID_INPUT = (768, 432)


def timed(work, repeats: int) -> float:
    """Median milliseconds of `work()` over `repeats` calls, after two warm-up calls."""
    work()
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def clip_720p(folder: Path) -> tuple[Path, list[np.ndarray]]:
    """The Hamilton clip (or the bundled image, repeated) at 1280x720, H.264, and its RGB frames."""
    sys.path.insert(0, str(Path(__file__).parent))
    from cameras import CLIPS, encode_clip, fit_1280x720

    source = VIDEOS / CLIPS["hamilton"]
    if source.is_file():
        path = encode_clip(source, folder / "hamilton_720p.mp4")
    else:
        print(f"{source} not found: using the bundled image", file=sys.stderr)
        image = fit_1280x720(cv2.cvtColor(cv2.imread(str(BUNDLED)), cv2.COLOR_BGR2RGB))
        path = folder / "still_720p.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
            for _ in range(60):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return path, frames


def decode_ms(path: Path) -> float:
    """Mean milliseconds to decode one frame to BGR (what a camera's reader hands on)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = time.perf_counter()
        count = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="bgr24") is not None)
    return 1000 * (time.perf_counter() - start) / count


def encode_ms(frames: list[np.ndarray], folder: Path) -> float:
    """Mean milliseconds to encode one 1280x720 frame, libx264 ultrafast (a recording)."""
    with av.open(str(folder / "record.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        start = time.perf_counter()
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return 1000 * (time.perf_counter() - start) / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per figure (default: 40)")
    parser.add_argument("--faces", type=int, default=2, help="faces per refinement (default: 2)")
    parser.add_argument("--scans", type=float, default=5.0, help="full scans per camera-second (default: 5)")
    parser.add_argument(
        "--refines", type=float, default=15.0, help="refinements per camera-second (default: 15)"
    )
    args = parser.parse_args()

    from livefaces.quiet_tensorflow import tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from livefaces import boxes as bx
    from livefaces.detector import MTCNN

    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path, frames = clip_720p(folder)
        bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
        decode = decode_ms(path)
        encode = encode_ms(frames[:120], folder)
    fleet_detector = MTCNN(min_face_size=12, device="CPU:0")
    whole_detector = MTCNN(min_face_size=20, device="CPU:0")
    frame = bgr[len(bgr) // 2]
    small = cv2.cvtColor(cv2.resize(frame, PYRAMID_INPUT, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    found = whole_detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    boxes = found.boxes[: args.faces] if len(found.boxes) else np.array([[600, 200, 700, 320]], np.float64)
    while len(boxes) < args.faces:
        boxes = np.concatenate([boxes, boxes[:1] + 10])
    squares = bx.to_square(boxes.astype(np.float64))
    rgb_frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    patches = bx.cut_patches(rgb_frame, squares, 48)
    shrink = timed(
        lambda: cv2.cvtColor(
            cv2.resize(frame, PYRAMID_INPUT, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        ),
        args.repeats,
    )
    cut = timed(lambda: bx.cut_patches(rgb_frame, squares, 48), args.repeats)
    scan = timed(lambda: fleet_detector.detect_batch([small]), args.repeats)
    scan4 = timed(lambda: fleet_detector.detect_batch([small] * 4), args.repeats) / 4
    whole = timed(lambda: whole_detector.detect(rgb_frame), args.repeats)
    refine = timed(lambda: fleet_detector.refine_patches([patches], [squares]), args.repeats)
    refine8 = timed(lambda: fleet_detector.refine_patches([patches] * 8, [squares] * 8), args.repeats) / 8
    scan_bytes, refine_bytes = small.nbytes, patches.nbytes + squares.nbytes

    console = Console(width=None if sys.stdout.isatty() else 130)
    table = Table(title=f"unit costs on one core ({len(frames)} frames of {path.name}; {args.faces} faces)")
    for column in ("where", "what", "ms", "bytes on the wire"):
        table.add_column(column, justify="left" if column in ("where", "what") else "right")
    rows = [
        ("camera", "decode a 1280x720 H.264 frame (PyAV, to BGR)", decode, ""),
        ("camera", "encode a 1280x720 frame (libx264 ultrafast)", encode, ""),
        ("camera", "shrink to 768x432 + RGB (per scan)", shrink, ""),
        ("camera", f"cut {args.faces} 48x48 patches (per refinement)", cut, ""),
        ("detector", "full scan 768x432, 12 px faces, alone", scan, f"{scan_bytes:,}"),
        ("detector", "the same, per camera in a batch of 4", scan4, ""),
        ("detector", "(one process: full scan 1280x720, 20 px faces)", whole, ""),
        ("detector", f"refinement of {args.faces} faces, alone", refine, f"{refine_bytes:,}"),
        ("detector", "the same, per camera in a call of 8 cameras", refine8, ""),
    ]
    for where, what, ms, wire in rows:
        table.add_row(where, what, f"{ms:.2f}", wire)
    console.print(table)

    refines = args.refines
    alone = args.scans * scan + refines * refine
    batched = args.scans * scan4 + refines * refine8
    wire = args.scans * scan_bytes + refines * refine_bytes
    camera_floor = FPS * decode + args.scans * shrink + refines * cut
    model = Table(title=f"one camera at {FPS} fps, {args.scans:g} full scans/s, {refines:g} refinements/s")
    for column in ("", "ms per camera-second", "cameras per core"):
        model.add_column(column, justify="left" if not column else "right")
    model.add_row("detector, requests alone", f"{alone:.0f}", f"{1000 / alone:.1f}")
    model.add_row(
        "detector, requests batched (4 scans, 8 refinements)", f"{batched:.0f}", f"{1000 / batched:.1f}"
    )
    model.add_row(
        "camera, decode + shrink + patches (no recording)",
        f"{camera_floor:.0f}",
        f"{1000 / camera_floor:.1f}",
    )
    recording = camera_floor + FPS * encode
    model.add_row("camera, the same + recording", f"{recording:.0f}", f"{1000 / recording:.1f}")
    console.print(model)
    console.print(
        f"to the detectors: {wire / 1e6:.2f} MB/s per camera ({8 * wire / 1e6:.0f} Mbit/s)", markup=False
    )


if __name__ == "__main__":
    main()
