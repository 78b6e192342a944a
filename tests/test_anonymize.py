"""Anonymization: masks drawn, masks following faces over time, and anonymized recordings made by
the real command line, decoded with PyAV and checked against the demo scene's true face boxes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livefaces.capture import CaptureSettings, open_source
from livefaces.cascade import Settings
from livefaces.demo import DemoScene
from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.options import ANONYMIZE_THRESHOLDS, parse_command_line
from livefaces.outputs.anonymize import (
    TRAIL,
    AnonymizedOutput,
    MaskAnnotator,
    MaskSettings,
    MaskTimeline,
    scaled_boxes,
)
from livefaces.runtime.camera_runner import COARSE_PIXELS_PER_SECOND, RunnerSettings
from livefaces.runtime.threaded import CameraLimits, run_camera
from livefaces.tracker import TrackedFaces
from tests.conftest import shared_data
from tests.test_cli_process import environment, livefaces
from tests.test_rtsp import StartServer, gst_python, start_rtsp_server  # noqa: F401
from tests.videos import read_back, write_face_video, write_video

DEMO = DemoScene(640, 480, 30.0)
DEMO_FRAMES = 60  # 2 s: the crossing face enters from the left edge at about frame 37
COVERED = 0.9  # share of a true face box (its part in view) that must be masked
DARK = 40  # a solid (black) mask decodes below this in every channel


def result(
    t: float,
    boxes: list[list[float]],
    ids: list[int] | None = None,
    measured: bool = True,
    fresh: bool = True,
    scanned_until: float | None = None,
    index: int | None = None,
) -> FrameResult:
    count = len(boxes)
    detections = Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.ones(count, np.float32),
        np.zeros((count, 5, 2), np.float32),
        None if ids is None else np.array(ids, np.int64),
    )
    frame = Frame(round(t * 30) if index is None else index, t, 0.0, np.zeros((8, 8, 3), np.uint8))
    faces = TrackedFaces(detections, np.ones(count, bool), np.full(count, measured))
    return FrameResult("cam", frame, faces, fresh, scanned_until=scanned_until)


# Drawing.


@pytest.mark.parametrize("shape", ["box", "ellipse"])
def test_a_solid_mask_covers_the_scaled_box_and_nothing_far_outside(shape: str) -> None:
    scene = np.full((200, 300, 3), 200, np.uint8)
    faces = Detections(
        np.array([[100, 50, 160, 130]], np.float32), np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32)
    )
    MaskAnnotator("solid", 1.3, shape).annotate(scene, faces)
    x1, y1, x2, y2 = (round(v) for v in scaled_boxes(faces.boxes, 1.3)[0])
    masked = (scene == 0).all(axis=2)
    assert masked[50:130, 100:160].mean() >= (1.0 if shape == "box" else 0.98)
    assert not masked[: y1 - 1].any() and not masked[y2 + 1 :].any()
    assert not masked[:, : x1 - 1].any() and not masked[:, x2 + 1 :].any()
    corner = masked[y1 : y1 + 5, x1 : x1 + 5].mean()
    assert corner == (1.0 if shape == "box" else 0.0)


def test_a_mask_reaching_past_the_border_is_clipped() -> None:
    scene = np.full((100, 100, 3), 200, np.uint8)
    faces = Detections(
        np.array([[-30, 60, 30, 140]], np.float32), np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32)
    )
    MaskAnnotator("solid", 1.0, "box").annotate(scene, faces)
    assert (scene[60:, :30] == 0).all() and (scene[:60] == 200).all() and (scene[:, 31:] == 200).all()


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_a_blurred_or_pixelated_face_is_no_longer_a_face(detector, astronaut: np.ndarray, style: str) -> None:
    bgr = np.ascontiguousarray(astronaut[:, :, ::-1])
    found = detector.detect(astronaut)
    assert len(found) >= 1 and found.scores[0] > 0.99
    masked = MaskAnnotator(style, 1.3, "ellipse").annotate(bgr.copy(), found)
    assert np.abs(masked.astype(int) - bgr).sum() > 0
    after = detector.detect(np.ascontiguousarray(masked[:, :, ::-1]))
    assert not (after.scores >= 0.9).any(), after.scores


# Masks over time.


def test_a_mask_is_held_after_its_face_was_last_seen_then_dropped() -> None:
    timeline = MaskTimeline(hold=0.5)
    for i in range(10):
        timeline.push(result(i / 30, [[100 + 3 * i, 100, 160 + 3 * i, 180]], [7]))
    assert len(timeline.boxes_at(9 / 30 + 0.4)) == 1
    assert len(timeline.boxes_at(9 / 30 + 0.6)) == 0
    held = timeline.boxes_at(9 / 30 + 0.3)[0]
    assert held[0] < 127 + 0.3 * 90 and held[2] > 187 + 0.3 * 90  # moved on at 90 px/s, and grown


def test_a_mask_grows_with_speed_times_the_time_since_measured() -> None:
    timeline = MaskTimeline(hold=0.5)
    for i in range(6):
        timeline.push(result(i / 30, [[100 + 2 * i, 100, 160 + 2 * i, 180]], [1]))
    measured = timeline.boxes_at(5 / 30)[0]
    timeline.push(result(15 / 30, [[130, 100, 190, 180]], [1], measured=False))  # predicted, 1/3 s later
    predicted = timeline.boxes_at(15 / 30)[0]
    assert measured[2] - measured[0] == pytest.approx(60 + 2 * TRAIL * 2, abs=0.5)  # a frame at 60 px/s
    assert measured[3] - measured[1] == pytest.approx(80, abs=0.5)  # no vertical motion, just measured
    grown = (predicted[2] - predicted[0]) - (measured[2] - measured[0])
    assert grown == pytest.approx(2 * TRAIL * 60 * (10 / 30), abs=1.0)


def test_a_delayed_output_masks_a_face_before_it_was_found() -> None:
    timeline = MaskTimeline(hold=0.5, delay=0.5)
    released = []
    for i in range(40):
        boxes = [[-80 + 6 * i, 100, -20 + 6 * i, 180]] if i >= 20 else []  # found at frame 20
        released += timeline.push(result(i / 30, boxes, [3] * len(boxes)))
    released += timeline.flush()
    assert [r.frame.index for r, _, _ in released] == list(range(40))
    for r, _, boxes in released:
        if r.frame.index >= 20 - 14:  # up to 0.5 s (15 frames) before it was found
            true_x1 = -80 + 6 * r.frame.index
            assert len(boxes) == 1 and boxes[0][0] <= true_x1 and boxes[0][2] >= true_x1 + 60
        elif r.frame.index <= 3:
            assert len(boxes) == 0


def test_untracked_faces_are_followed_by_overlap() -> None:
    timeline = MaskTimeline(hold=0.5)
    timeline.push(result(0.0, [[0, 0, 50, 50], [200, 200, 260, 260]]))
    timeline.push(result(1 / 30, [[203, 200, 263, 260]]))  # the second face moved, the first was missed
    boxes = timeline.boxes_at(1 / 30)
    assert len(boxes) == 2


def test_frames_before_the_detector_first_looked_are_masked_whole() -> None:
    """A live camera's first frames go out before any detection: nothing known, all masked."""
    window = MaskTimeline(hold=0.5, delay=0.0)
    assert [boxes for _, _, boxes in window.push(result(0.0, [], fresh=False))] == [None]
    assert [boxes for _, _, boxes in window.push(result(1 / 30, [], fresh=False))] == [None]
    ready = window.push(result(2 / 30, [[10, 10, 50, 50]], [0]))
    assert len(ready) == 1 and ready[0][2] is not None and len(ready[0][2]) == 1
    recording = MaskTimeline(hold=0.5, delay=0.5)  # a lagging output learns in time: real masks
    released = [
        *recording.push(result(0.0, [], fresh=False)),
        *recording.push(result(0.1, [[10, 10, 50, 50]], [0])),
    ]
    released += recording.flush()
    assert [len(boxes) for _, _, boxes in released] == [1, 1]
    ended = MaskTimeline(hold=0.5, delay=0.5)  # a stream that ends before any answer
    ended.push(result(0.0, [], fresh=False))
    assert [boxes for _, _, boxes in ended.flush()] == [None]


def test_a_live_recording_masks_whole_the_frames_no_scan_reached() -> None:
    """A live stream's burst passes on frames faster than the detector answers, then ends: the
    frames after the last full scan are masked whole, those it reached get the faces' masks."""
    live = MaskTimeline(hold=0.5, delay=0.5, live_fps=30.0)
    file = MaskTimeline(hold=0.5, delay=0.5)  # a file's frames are each followed in order
    for timeline in (live, file):
        timeline.push(result(0.0, [[10, 10, 50, 50]], [0]))
        for step in range(1, 6):  # no answer came for these
            timeline.push(result(step / 100, [[10, 10, 50, 50]], [0], False, False, 0.0, index=step))
    assert [boxes is None for _, _, boxes in live.flush()] == [False] + [True] * 5
    assert all(boxes is not None and len(boxes) == 1 for _, _, boxes in file.flush())


def test_a_live_recording_masks_whole_a_burst_between_two_scans() -> None:
    """Sixty frames stamped 5 ms apart (a drained backlog) came between two full scans that saw
    no face: two seconds of a 30 fps camera the detector did not look at. They are masked whole;
    the frames of ordinary gaps (five frames) get their (no) masks, up to the last scan."""
    timeline = MaskTimeline(hold=0.5, delay=0.5, live_fps=30.0)
    times = [0.0] + [0.005 * k for k in range(1, 61)] + [0.3 + k / 30 for k in range(1, 41)]
    released = []
    for index, t in enumerate(times):
        scanned = index == 0 or (index > 60 and index % 5 == 0)
        frame_result = result(t, [], fresh=scanned, scanned_until=t if scanned else None, index=index)
        released += timeline.push(frame_result)
    released += timeline.flush()
    whole = [r.frame.index for r, _, boxes in released if boxes is None]
    last_scan = max(index for index in range(61, 101) if index % 5 == 0)
    assert whole == [*range(1, 65), *range(last_scan + 1, 101)]  # the burst's gap ends at scan 65


def test_an_anonymized_output_writes_every_frame_in_order_masked() -> None:
    class Keep:
        render = "annotated"

        def __init__(self) -> None:
            self.written: list[tuple[int, np.ndarray]] = []
            self.closed = False

        def write(self, item: FrameResult, image: np.ndarray | None) -> None:
            assert image is not None
            self.written.append((item.frame.index, image))

        def close(self) -> None:
            self.closed = True

        def summary(self) -> str:
            return "kept"

    kept = Keep()
    output = AnonymizedOutput(kept, MaskSettings("solid", 1.0, "box", hold=0.15), delay=0.15)
    raw = [np.full((60, 80, 3), 200, np.uint8) for _ in range(12)]
    for i, image in enumerate(raw):
        output.write(result(i / 30, [[10, 10, 30, 30]] if i == 6 else [], [1] if i == 6 else None), image)
    output.close()
    assert kept.closed and [i for i, _ in kept.written] == list(range(12))
    masked = [i for i, image in kept.written if (image[15:25, 15:25] == 0).all()]
    # Found at frame 6, not at 5 (the scan before): masked from 0.15 s (4.5 frames) before frame 5
    # to 0.15 s after frame 6.
    assert masked == list(range(1, 11))
    assert (raw[6] == 200).all()  # the shared raw frame is left alone


# Options.


def test_anonymize_lowers_the_default_thresholds_but_not_given_ones() -> None:
    plain = parse_command_line(["--no-display"]).cameras[0].options
    masked = parse_command_line(["--anonymize", "blur"]).cameras[0].options
    given = (
        parse_command_line(["--anonymize", "blur", "--thresholds", "0.7", "0.8", "0.9"]).cameras[0].options
    )
    assert plain.thresholds == (0.6, 0.7, 0.7)
    assert masked.thresholds == ANONYMIZE_THRESHOLDS
    assert given.thresholds == (0.7, 0.8, 0.9)
    config = parse_command_line(["--anonymize", "pixelate", "--mask-shape", "box", "--mask-scale", "1.5"])
    assert config.mask_settings() == MaskSettings("pixelate", 1.5, "box", 1.0)
    assert parse_command_line([]).mask_settings() is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--anonymize", "smudge"], "--anonymize: invalid choice: 'smudge'"),
        (
            ["--anonymize", "blur", "--mask-scale", "0.5"],
            "--mask-scale: must be a number >= 1 and <= 4, got 0.5",
        ),
        (["--mask-shape", "star"], "--mask-shape: invalid choice: 'star'"),
        (["--mask-hold", "-1"], "--mask-hold: must be a number >= 0 and <= 5, got -1"),
    ],
)
def test_bad_mask_options_give_one_line_and_exit_2(args: list[str], needle: str) -> None:
    run = livefaces("--source", "demo", "--no-display", *args)
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("livefaces: error: ") and needle in err, err


def test_a_bad_mask_key_in_the_config_file_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "cameras.toml"
    config.write_text('anonymize = "smear"\n[[cameras]]\nurl = "demo"\n')
    run = livefaces("--config", str(config), "--no-display")
    err = run.stderr.decode()
    assert run.returncode == 2 and len(err.splitlines()) == 1, err
    assert 'anonymize: must be one of "blur", "pixelate", "solid", "none", got "smear"' in err, err


# Recordings made by the command line.


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def coverage(image: np.ndarray, raw: np.ndarray, box: np.ndarray) -> float:
    """Share of the box's part in view that the solid mask covers (pixels dark in the raw frame
    count as covered: there a black mask cannot be told apart)."""
    height, width = image.shape[:2]
    x1, y1 = max(round(float(box[0])), 0), max(round(float(box[1])), 0)
    x2, y2 = min(round(float(box[2])), width), min(round(float(box[3])), height)
    dark = image[y1:y2, x1:x2].max(axis=2) < DARK
    dark |= raw[y1:y2, x1:x2].max(axis=2) < DARK
    return float(dark.mean())


@pytest.fixture(scope="module", params=["exact", "realtime"])
def demo_recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[np.ndarray]:
    """The demo's first DEMO_FRAMES frames recorded with solid masks, in exact mode or tracking."""
    path = tmp_path_factory.mktemp("anon") / f"demo-{request.param}.mp4"
    mode = ["--realtime"] if request.param == "realtime" else []
    run = livefaces(
        "--source", "demo", "--max-frames", str(DEMO_FRAMES), "--no-display", "--anonymize", "solid", *mode,
        "--output", str(path),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    return decode(path)


def test_every_true_face_is_masked_on_every_frame(demo_recording: list[np.ndarray]) -> None:
    assert len(demo_recording) == DEMO_FRAMES
    checked = 0
    for index, image in enumerate(demo_recording):
        raw = DEMO.render(index)
        for face, box in zip(*DEMO.truth_by_face(index)):
            assert coverage(image, raw, box) >= COVERED, (index, face)
            checked += 1
    assert checked >= 2 * DEMO_FRAMES
    background = DEMO.render(0)[:40, 200:440]
    assert np.abs(demo_recording[0][:40, 200:440].astype(int) - background).mean() < 8  # the rest is intact


def test_a_face_entering_from_the_edge_is_masked_from_its_first_frame(
    demo_recording: list[np.ndarray],
) -> None:
    """The crossing face, from the first frame where any of its box is in view (a sliver at the
    left edge), long before the detector can find it; recordings are written `--mask-hold`
    seconds late, so it is masked backwards in time from where it was found."""
    entering = [i for i in range(DEMO_FRAMES) if 0 in DEMO.truth_by_face(i, min_inside=0.01)[0]]
    assert entering and entering[0] > 0 and 0 not in DEMO.truth_by_face(entering[0], 0.5)[0]
    for index in entering:
        faces, boxes = DEMO.truth_by_face(index, min_inside=0.01)
        box = boxes[faces.index(0)]
        assert coverage(demo_recording[index], DEMO.render(index), box) >= COVERED, index


def test_anonymized_recording_keeps_audio_timing_and_duration(tmp_path: Path) -> None:
    source = write_video(tmp_path / "talk.mp4", frames=48, size=(320, 240), fps=24, audio=True)
    output = tmp_path / "talk-anon.mp4"
    run = livefaces("--source", str(source), "--no-display", "--anonymize", "blur", "--output", str(output))
    assert run.returncode == 0, run.stderr.decode()
    assert "audio copied" in run.stderr.decode()
    before, after = read_back(source), read_back(output)
    assert after["frames"] == before["frames"] == 48
    assert after["audio"] and after["audio_packets"] == before["audio_packets"]
    assert after["first"] == pytest.approx(before["first"], abs=1e-3)
    assert after["last"] == pytest.approx(before["last"], abs=1e-3)
    assert after["duration"] == pytest.approx(before["duration"], abs=1 / 24)


def test_real_clip_anonymized_in_realtime_keeps_its_audio_and_frames(tmp_path: Path) -> None:
    clip = shared_data("videos/face_recognition__short_hamilton_clip.mp4")
    output = tmp_path / "hamilton-anon.mp4"
    run = livefaces(
        "--source", str(clip), "--no-display", "--realtime", "--anonymize", "pixelate", "-o", str(output)
    )
    assert run.returncode == 0, run.stderr.decode()
    before, after = read_back(clip), read_back(output)
    assert after["frames"] == before["frames"] and after["audio_packets"] == before["audio_packets"]
    assert after["duration"] == pytest.approx(before["duration"], abs=0.05)


def test_a_folder_of_photos_is_anonymized(tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for index in (0, 50, 100):
        cv2.imwrite(str(photos / f"p{index:03d}.png"), DEMO.render(index))
    run = livefaces("--source", str(photos), "--no-display", "--anonymize", "solid", "--output", str(out))
    assert run.returncode == 0, run.stderr.decode()
    for index in (0, 50, 100):
        image = cv2.imread(str(out / f"p{index:03d}.png"))
        for box in DEMO.truth(index):
            assert coverage(image, DEMO.render(index), box) >= COVERED, index


def test_a_live_rtsp_stream_is_recorded_anonymized(
    start_rtsp_server: StartServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A face appears all at once on a live stream: no recorded frame shows it unmasked (here the
    frames the server buffered while TensorFlow loaded come in a burst, before the detector's
    first answer: those are masked whole)."""
    clip = write_face_video(tmp_path / "face.mp4", blank_before=48, face=72, blank_after=24)
    url, _ = start_rtsp_server("--file", str(clip))
    output = tmp_path / "live.mp4"
    command = [sys.executable, "-m", "livefaces", "--source", url, "--no-display", "--anonymize", "solid",
               "--max-reconnects", "0", "--stall-timeout", "10", "--output", str(output)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, env=environment(), timeout=120)
    assert output.exists(), run.stderr.decode()
    frames = decode(output)
    assert len(frames) >= 24
    face = (slice(45, 115), slice(190, 245))  # the photo's face in write_face_video's frames
    unmasked = [i for i, image in enumerate(frames) if not _blank_or_masked(image[face])]
    assert not unmasked, unmasked


def test_a_live_source_is_masked_in_place_on_every_frame(tmp_path: Path) -> None:
    """`demo --live`: paced at 30 fps, newest frame wins, tracking. Every recorded frame (found by
    its timestamp: the demo's frame i is at i/30 s) has its true faces masked; once the detector
    has answered, masks are drawn where the faces are, not over the whole frame."""
    output = tmp_path / "live.mp4"
    run = livefaces(
        "--source", "demo", "--live", "--max-frames", "120", "--no-display", "--anonymize", "solid",
        "--output", str(output),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    with av.open(str(output)) as container:
        frames = [
            (round(float(f.time) * 30), f.to_ndarray(format="bgr24")) for f in container.decode(video=0)
        ]
    assert len(frames) >= 60
    in_place = 0
    for index, image in frames:
        raw = DEMO.render(index)
        for face, box in zip(*DEMO.truth_by_face(index)):
            assert coverage(image, raw, box) >= COVERED, (index, face)
        in_place += int(np.median(image[:40, 200:440]) > DARK)
    assert in_place >= len(frames) // 2


def _blank_or_masked(region: np.ndarray) -> bool:
    """The grey of the blank frames (96) or the black of a mask, over most of the face's region."""
    grey = np.abs(region.astype(int) - 96).max(axis=2) < 12
    black = region.max(axis=2) < DARK
    return float((grey | black).mean()) >= COVERED


# The window cannot wait for later frames: it masks what the tracks know on each frame.


class Keep:
    """A sink keeping every result (no image)."""

    render = None

    def __init__(self) -> None:
        self.results: list[FrameResult] = []

    def write(self, item: FrameResult, image: np.ndarray | None) -> None:
        self.results.append(item)

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None


def window_coverage(detector, tracking: bool) -> list[tuple[int, float]]:
    """The crossing face's coverage by an undelayed output's masks (the window's), on each frame
    from the first where half of it is in view, with the app's --anonymize settings."""
    keep = Keep()
    settings = RunnerSettings(
        tracking=tracking,
        adaptive=False,
        cascade=Settings(thresholds=ANONYMIZE_THRESHOLDS),
        patches=True,
        coarse_pixels_per_second=COARSE_PIXELS_PER_SECOND,  # as the app runs it
    )
    run_camera(open_source("demo", CaptureSettings()), detector, [keep], settings, CameraLimits(DEMO_FRAMES))
    timeline = MaskTimeline(hold=1.0, delay=0.0)
    found = []
    for item in keep.results:
        for released, _, boxes in timeline.push(item):
            index = released.frame.index
            faces, truth = DEMO.truth_by_face(index)
            if 0 in faces:
                canvas = np.full((DEMO.height, DEMO.width, 3), 255, np.uint8)
                if boxes is None:
                    canvas[:] = 0
                else:
                    masks = Detections(
                        boxes.astype(np.float32),
                        np.ones(len(boxes), np.float32),
                        np.zeros((len(boxes), 5, 2), np.float32),
                    )
                    MaskAnnotator("solid", 1.3, "ellipse").annotate(canvas, masks)
                found.append((index, coverage(canvas, canvas * 0 + 255, truth[faces.index(0)])))
    assert found
    return found


def test_the_window_masks_a_face_entering_from_the_edge_at_once_in_exact_mode(detector) -> None:
    uncovered = [(i, c) for i, c in window_coverage(detector, tracking=False) if c < COVERED]
    assert not uncovered


def test_the_window_masks_a_face_entering_from_the_edge_at_once_when_tracking(detector) -> None:
    """Tracking finds a large new face on the frame it enters (coarse scans between full scans),
    so even an output that cannot wait masks it from its first frame half in view."""
    uncovered = [(i, c) for i, c in window_coverage(detector, tracking=True) if c < COVERED]
    assert not uncovered


@pytest.mark.parametrize(
    ("args", "window_masked", "recording_masked"),
    [
        (["--anonymize", "blur"], True, True),
        (["--anonymize", "blur", "--window-boxes"], False, True),
        ([], False, False),
    ],
)
def test_which_outputs_are_anonymized(
    tmp_path: Path, args: list[str], window_masked: bool, recording_masked: bool
) -> None:
    """--anonymize masks the window and the recording; --window-boxes keeps boxes in the window.
    The recording waits for later frames (it may lag), the window does not."""
    from livefaces.app import SharedOutputs, _sinks, open_cameras
    from livefaces.tiles import TileBoard

    config = parse_command_line(["--source", "demo", *args, "--output", str(tmp_path / "out.mp4")])
    camera = open_cameras(config)[0]
    try:
        window, recording = _sinks(config, camera, TileBoard([camera.spec.name]), SharedOutputs(config))[:2]
    finally:
        camera.close()
    assert isinstance(window, AnonymizedOutput) == window_masked
    assert isinstance(recording, AnonymizedOutput) == recording_masked
    assert window.render == ("raw" if window_masked else "annotated")
    if window_masked:
        assert window.timeline.delay == 0.0
    if recording_masked:
        assert recording.timeline.delay == 1.0 and recording.settings.style == "blur"
