"""The web view's parts without a server: posted images read from their headers, the newest
frame per camera encoded once per version, the event store's filters and bounds."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.events import FaceAppeared, StreamDown
from livefaces.frames import Frame, FrameResult
from livefaces.outputs.anonymize import MaskSettings, anonymized
from livefaces.outputs.web.live import EventStore, LiveFrames, WebSink
from livefaces.outputs.web.page import MJPEG_TILES, camera, index
from livefaces.outputs.web.upload import UploadError, decode_upload, image_size
from livefaces.tracker import TrackedFaces


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(extension: str, width: int = 64, height: int = 48) -> bytes:
    ok, data = cv2.imencode(extension, np.full((height, width, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (encoded(".jpg"), ("jpeg", 64, 48)),
        (encoded(".png", 33, 21), ("png", 33, 21)),
        (png_claiming(50_000, 50_000), ("png", 50_000, 50_000)),
    ],
)
def test_the_size_comes_from_the_header(data: bytes, expected: tuple[str, int, int]) -> None:
    assert image_size(data) == expected


def test_a_progressive_jpeg_and_one_with_metadata_are_read(astronaut: np.ndarray) -> None:
    ok, progressive = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and image_size(progressive.tobytes()) == ("jpeg", 512, 512)
    assets = Path(__file__).resolve().parent.parent / "livefaces" / "assets" / "astronaut.jpg"
    assert image_size(assets.read_bytes())[1:] == (512, 512)


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"hello, not an image", 415, "not a JPEG or PNG"),
        (encoded(".bmp"), 415, "not a JPEG or PNG"),
        (png_claiming(50_000, 50_000), 413, "50000x50000"),
        (encoded(".jpg")[:40], 400, "JPEG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", 400, "frame header"),
        (png_claiming(0, 10), 400, "0x10"),
    ],
)
def test_bad_uploads_are_refused_with_a_status_and_a_reason(data: bytes, status: int, words: str) -> None:
    with pytest.raises(UploadError, match=words) as caught:
        decode_upload(data)
    assert caught.value.status == status


def test_a_good_upload_decodes_to_rgb() -> None:
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[:, :, 0] = 255  # blue in BGR
    _, data = cv2.imencode(".png", bgr)
    rgb = decode_upload(data.tobytes())
    assert rgb.shape == (20, 30, 3) and rgb[0, 0].tolist() == [0, 0, 255]


def result_for(index: int, boxes: list[list[float]], camera: str = "front") -> FrameResult:
    image = np.full((90, 160, 3), 40 + index, np.uint8)
    count = len(boxes)
    detections = Detections(
        np.array(boxes, np.float32).reshape(count, 4),
        np.full(count, 0.99, np.float32),
        np.zeros((count, 5, 2), np.float32),
        np.arange(1, count + 1, dtype=np.int64),
    )
    faces = TrackedFaces(detections, np.ones(count, bool), np.ones(count, bool))
    return FrameResult(camera, Frame(index, index / 30, 0.0, image), faces, fresh=True)


def test_frames_are_encoded_once_per_version_and_form() -> None:
    frames = LiveFrames(["front"])
    assert frames.jpeg("front", annotated=True) is None
    frames.post("front", result_for(1, [[20, 20, 60, 70]]), result_for(1, []).frame.image)
    first = frames.jpeg("front", annotated=True)
    assert first is not None and frames.jpeg("front", annotated=True) is first  # cached, not re-encoded
    raw = frames.jpeg("front", annotated=False)
    assert raw is not None and raw[0] == first[0] and raw[1] != first[1]
    small = frames.jpeg("front", annotated=False, width=80)
    assert small is not None
    assert cv2.imdecode(np.frombuffer(small[1], np.uint8), cv2.IMREAD_COLOR).shape == (45, 80, 3)
    frames.post("front", result_for(2, []), result_for(2, []).frame.image)
    second = frames.jpeg("front", annotated=True)
    assert second is not None and second[0] > first[0]


def test_the_sink_stores_references_and_a_stream_down_clears_the_picture() -> None:
    frames, events = LiveFrames(["front"]), EventStore()
    sink = WebSink(frames, events, "front")
    assert sink.render is None  # asks the runtime for no rendering: nothing drawn per frame
    result = result_for(3, [[20, 20, 60, 70]])
    sink.write(result, None)
    picture = frames.latest("front")
    assert picture is not None and picture.image is result.frame.image  # not copied
    appeared = FaceAppeared(camera="front", source_time=0.1, wall_time=100.0, track_id=1,
                            box=(20.0, 20.0, 60.0, 70.0), confidence=0.99)  # fmt: skip
    sink.on_events([appeared])
    snapshot = events.snapshot(appeared.event_id)
    assert snapshot is not None and cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR).size
    sink.on_events([StreamDown(camera="front", source_time=0.2, wall_time=101.0, reason="stall", attempt=0)])
    assert frames.latest("front") is None
    with pytest.raises(KeyError, match="unknown camera"):
        WebSink(frames, events, "back")


def test_an_anonymized_view_keeps_no_face_crops() -> None:
    """With --anonymize the view gets masked frames and keeps its events without their crops."""
    frames, events = LiveFrames(["front"]), EventStore()
    sink = anonymized(WebSink(frames, events, "front", snapshots=False), MaskSettings("solid"), lag=False)
    result = result_for(3, [[20, 20, 60, 70]])
    sink.write(result, result.frame.image)
    appeared = FaceAppeared(camera="front", source_time=0.1, wall_time=100.0, track_id=1,
                            box=(20.0, 20.0, 60.0, 70.0), confidence=0.99)  # fmt: skip
    sink.on_events([appeared])
    [stored] = events.recent()
    assert stored.event == appeared and not stored.has_snapshot and events.snapshot(appeared.event_id) is None
    picture = frames.latest("front")
    assert picture is not None and picture.image[45, 40].max() == 0  # the face is under a solid mask
    assert result.frame.image[45, 40].max() > 0  # the raw frame is untouched


def test_the_event_store_filters_and_keeps_a_bounded_number() -> None:
    store = EventStore(events_kept=3, snapshots_kept=1)
    made = [
        StreamDown(camera=name, source_time=float(i), wall_time=1000.0 + i, reason="stall", attempt=i)
        for i, name in enumerate(["a", "b", "a", "b"])
    ]
    for event in made:
        store.add(event, np.zeros((8, 8, 3), np.uint8))
    assert [s.event for s in store.recent()] == made[:0:-1]  # the oldest fell out; newest first
    assert [s.event for s in store.recent(camera="a")] == [made[2]]
    assert [s.event for s in store.recent(since=1002.0)] == [made[3]]
    assert [s.event for s in store.recent(limit=1)] == [made[3]]
    assert store.snapshot(made[3].event_id) is not None and store.snapshot(made[2].event_id) is None


def test_tiles_are_mjpeg_up_to_a_browser_s_connection_budget() -> None:
    few, many = index(["a", "b"]), index([f"c{i}" for i in range(MJPEG_TILES + 2)])
    assert "mjpeg = true" in few and "mjpeg = false" in many
    assert "img-a" in few and "/cameras/c5" in many
    assert '"front"' in camera("front")
