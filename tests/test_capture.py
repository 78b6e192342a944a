"""Sources: one clock for the whole session across reopens, and information published as values."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from livefaces.capture import CaptureSettings, Source, SourceInfo, configure_decoder, open_source
from tests.videos import write_video


def take(source: Source, count: int) -> list:
    frames = source.frames()
    try:
        return list(itertools.islice(frames, count))
    finally:
        frames.close()


def test_a_reopened_file_continues_the_session_clock(tmp_path: Path) -> None:
    source = open_source(str(write_video(tmp_path / "clip.mp4", frames=12, fps=24)))
    first, second = take(source, 5), take(source, 5)
    assert [f.index for f in first + second] == list(range(10))
    times = [f.timestamp for f in first + second]
    assert all(later > earlier for earlier, later in itertools.pairwise(times))
    assert second[0].timestamp == pytest.approx(first[-1].timestamp + 1 / 24)


def test_demo_and_images_continue_too(tmp_path: Path) -> None:
    demo = open_source("demo", CaptureSettings(demo_size=(64, 48), demo_fps=10))
    frames = take(demo, 3) + take(demo, 3)
    assert [f.index for f in frames] == list(range(6))
    assert [round(f.timestamp, 6) for f in frames] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_info_is_a_value_published_when_the_source_opens(tmp_path: Path) -> None:
    source = open_source(str(write_video(tmp_path / "clip.mp4", frames=12, size=(160, 120), fps=24)))
    before = source.info
    assert (before.fps, before.size, before.frame_count) == (None, None, None)
    frames = source.frames()
    frames.close()
    after = source.info
    assert after.fps == pytest.approx(24) and after.size == (160, 120) and after.frame_count == 12
    assert before.fps is None  # the earlier value did not change under its reader
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.fps = 1.0  # type: ignore[misc]


def test_a_live_source_is_stamped_on_arrival_against_its_first_opening() -> None:
    arrivals = iter([100.0, 100.5, 107.0, 107.5])

    def read(source: Source):
        import numpy as np

        from livefaces.frames import Frame

        for local in range(2):
            yield Frame(local, local * 0.5, next(arrivals), np.zeros((8, 8, 3), np.uint8))

    source = Source(SourceInfo("cam", "stream", live=True, fps=2.0), read, paced=False)
    frames = take(source, 2) + take(source, 2)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    # the 6.5 s outage between the two openings shows as a gap, not hidden
    assert [f.timestamp for f in frames] == [0.0, 0.5, 7.0, 7.5]


def frames_held_by_the_decoder(path: Path, stream: bool) -> int:
    """The most packets fed to the decoder, as livefaces configures it, that had not come out as
    frames yet: the frames of latency the decoder adds."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        configure_decoder(video, stream)
        sent = out = held = 0
        for packet in container.demux(video):
            if packet.size:
                sent += 1
                out += len(packet.decode())
                held = max(held, sent - out)
        return held


def test_live_streams_are_decoded_without_holding_frames_back(tmp_path: Path) -> None:
    """A low-latency camera stream (no B-frames): each packet comes out as its frame at once."""
    path = tmp_path / "camera.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        noise = np.random.default_rng(0)
        for _ in range(30):
            image = noise.integers(0, 255, (240, 320, 3), np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
    assert frames_held_by_the_decoder(path, stream=True) == 0
    assert frames_held_by_the_decoder(path, stream=False) >= 1  # files: frame threads, faster
