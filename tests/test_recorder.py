"""The recorder across a reconnection: one file that plays through, at the size it started with."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.recorder import VideoRecorder
from livefaces.tracker import TrackedFaces

NO_FACES = TrackedFaces(Detections.empty(), np.zeros(0, bool), np.zeros(0, bool))


def write(recorder: VideoRecorder, index: int, timestamp: float, image: np.ndarray) -> None:
    frame = Frame(index, timestamp, 0.0, image)
    recorder.write(FrameResult("cam", frame, NO_FACES, True), image)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_camera_back_at_another_size_is_scaled_into_the_first_and_the_gap_stays(
    tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"rec{suffix}"
    recorder = VideoRecorder(out, 15.0, crash_safe=True)
    grey = np.full((240, 320, 3), 60, np.uint8)
    wide = np.full((180, 320, 3), 200, np.uint8)  # 16:9 after the reconnection
    for index in range(15):
        write(recorder, index, index / 15, grey)
    for index in range(15, 30):
        write(recorder, index, 6.0 + index / 15, wide)  # six seconds of outage
    recorder.close()
    assert recorder.frames_in_file == 30 and recorder.frames_resized == 15
    assert "30 frames" in recorder.summary()
    assert "15 scaled to 320x240 after a resolution change" in recorder.summary()
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = [(float(frame.time), frame.to_ndarray(format="bgr24")) for frame in container.decode(video)]
    assert len(frames) == 30 and (video.width, video.height) == (320, 240)
    times = np.array([time for time, _ in frames])
    steps = np.diff(times)
    assert np.all(steps > 0) and steps.max() == pytest.approx(6.0 + 1 / 15, abs=0.01)
    assert abs(float(frames[0][1].mean()) - 60) < 4
    last = frames[-1][1]
    assert last.shape == (240, 320, 3)
    assert float(last[:20].mean()) < 20 and float(last[-20:].mean()) < 20  # letterboxed: bars
    assert abs(float(last[40:200].mean()) - 200) < 4  # the picture whole, aspect kept
