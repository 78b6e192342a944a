"""Real frames for the benchmarks: from ../shared/data/videos when present, else the bundled image.

Importing this module also puts the repository first on `sys.path`, so a benchmark run from a
checkout measures that checkout's livefaces rather than an older installed copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
VIDEOS = DATA / "videos"
BUNDLED = REPO / "livefaces" / "assets" / "astronaut.jpg"


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` RGB frames spread evenly over a video."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    step = max(len(frames) // count, 1)
    return frames[::step][:count]


def real_frames(per_video: int = 5) -> tuple[list[np.ndarray], str]:
    """RGB frames from every shared video, or the bundled astronaut when the data is absent."""
    videos = sorted(p for p in VIDEOS.glob("*") if p.suffix in (".mp4", ".mkv", ".avi", ".mov"))
    if not videos:
        print(f"{VIDEOS} not found: using the bundled image", file=sys.stderr)
        image = cv2.cvtColor(cv2.imread(str(BUNDLED)), cv2.COLOR_BGR2RGB)
        return [image], BUNDLED.name
    frames = [frame for video in videos for frame in video_frames(video, per_video)]
    return frames, f"{len(frames)} frames from {len(videos)} videos in {VIDEOS}"


def resized(frames: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    """Frames stretched to exactly width x height, as a camera of that size would give them."""
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]
