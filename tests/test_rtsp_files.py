"""tests/rtsp_server.py serving H.264 mp4 files at named mounts (as benchmarks/cameras.py does),
read back through livefaces' RTSP source. Skipped where GStreamer's Python bindings are missing."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from livefaces.capture import CaptureSettings, open_source
from tests.test_rtsp import StartServer, gst_python, start_rtsp_server  # noqa: F401

SIZE = (160, 120)
FPS = 15
FRAMES = 45  # 3 s: FFmpeg's probe on opening takes about 2 s of it


def write_clip(path: Path, level: int) -> Path:
    """A grey clip of FRAMES frames, H.264 in mp4, a keyframe every second."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(FPS)}
        image = np.full((SIZE[1], SIZE[0], 3), level, np.uint8)
        for _ in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_two_files_at_their_own_mounts_play_to_their_end(
    start_rtsp_server: StartServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    dark, light = write_clip(tmp_path / "dark.mp4", 40), write_clip(tmp_path / "light.mp4", 200)
    args = ["--file", str(dark), "--mount", "/dark", "--file", str(light), "--mount", "light"]
    url, _ = start_rtsp_server(*args)
    base = url.rsplit("/", 1)[0]
    for mount, level in (("dark", 40), ("light", 200)):
        source = open_source(f"{base}/{mount}", CaptureSettings(open_timeout=5, read_timeout=5))
        frames = list(source.frames())  # the stream ends with the file
        assert 0 < len(frames) <= FRAMES
        assert all(frame.image.shape == (SIZE[1], SIZE[0], 3) for frame in frames)
        assert abs(float(frames[-1].image.mean()) - level) < 8
        assert source.info.fps == FPS
