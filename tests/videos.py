"""Real encoded test videos, written with PyAV from the demo scene (faces included) or from the
bundled astronaut photo (one face that appears and leaves)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from livefaces.demo import DemoScene

ASTRONAUT = Path(__file__).resolve().parent.parent / "livefaces" / "assets" / "astronaut.jpg"


def write_video(
    path: Path,
    frames: int = 24,
    size: tuple[int, int] = (320, 240),
    fps: int = 24,
    audio: bool = False,
    codec: str = "libx264",
) -> Path:
    """Encode `frames` demo frames at `size` (odd sizes allowed for non-H.264 codecs) and
    optionally a 440 Hz AAC tone as long as the video."""
    scene = DemoScene(640, 480, fps)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        tone = None
        if audio:
            tone = container.add_stream("aac", rate=48000)
            tone.layout = "mono"
        for index in range(frames):
            image = cv2.resize(scene.render(index), size, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if tone is not None:
            samples = np.sin(2 * np.pi * 440 * np.arange(48000 * frames // fps) / 48000).astype(np.float32)
            for start in range(0, samples.size, 1024):
                chunk = samples[start : start + 1024][None, :]
                audio_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                audio_frame.sample_rate, audio_frame.pts = 48000, start
                for packet in tone.encode(audio_frame):
                    container.mux(packet)
            for packet in tone.encode(None):
                container.mux(packet)
    return path


def write_face_video(
    path: Path, blank_before: int = 6, face: int = 24, blank_after: int = 24, fps: int = 24
) -> Path:
    """A 480x360 H.264 clip: grey frames, then the astronaut photo (one face, about 60 px wide)
    for `face` frames, then grey again: one face that appears and leaves."""
    photo = cv2.resize(cv2.imread(str(ASTRONAUT)), (360, 360), interpolation=cv2.INTER_AREA)
    blank = np.full((360, 480, 3), 96, np.uint8)
    shown = blank.copy()
    shown[:, 60:420] = photo
    frames = [blank] * blank_before + [shown] * face + [blank] * blank_after
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 480, 360, "yuv420p"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def read_back(path: Path) -> dict:
    """What a player would see: video frame count, size, first/last time, duration, audio."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = [float(f.time) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        audio_packets = sum(1 for p in container.demux(audio=0) if p.size) if has_audio else 0
        duration = container.duration / av.time_base if container.duration else None
    return {
        "frames": len(times),
        "size": (video.width, video.height),
        "first": times[0] if times else None,
        "last": times[-1] if times else None,
        "duration": duration,
        "audio": has_audio,
        "audio_packets": audio_packets,
    }
