"""`from livefaces import MTCNN` as a drop-in for the `mtcnn` package (1.0 API, 0.1 constructor).

Written from `mtcnn` 1.0's documented behaviour: inputs (arrays, paths, bytes, batches), keyword
arguments, both output types; plus livefaces' chosen differences (bad bytes and missing files
raise; float images are converted by a documented rule).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces import KEYPOINT_NAMES, MTCNN
from livefaces.detector import Settings, resolve_device
from livefaces.images import as_rgb, load_rgb, to_uint8

ASTRONAUT = Path(__file__).resolve().parent.parent / "livefaces" / "assets" / "astronaut.jpg"


def boxes_of(faces: list[dict]) -> list[list[int]]:
    return [face["box"] for face in faces]


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", rgb[:, :, ::-1] if rgb.ndim == 3 else rgb)
    assert ok
    return encoded.tobytes()


def rounded(faces: list[dict]) -> list[dict]:
    """Faces with confidences rounded to 5 places: a batched P-Net call may differ in the last float bits."""
    return [{**face, "confidence": round(face["confidence"], 5)} for face in faces]


def tracing_count(detector: MTCNN) -> int:
    graphs = [*detector._pyramids.values(), detector._rnet, detector._onet]
    return sum(graph.experimental_get_tracing_count() for graph in graphs)


@pytest.fixture(scope="module")
def expected(detector: MTCNN, astronaut: np.ndarray) -> list[dict]:
    faces = detector.detect_faces(astronaut)
    assert faces and faces[0]["confidence"] > 0.99
    return faces


# Inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: str(ASTRONAUT), id="str-path"),
        pytest.param(lambda: ASTRONAUT, id="pathlib-path"),
        pytest.param(lambda: ASTRONAUT.read_bytes(), id="jpeg-bytes"),
        pytest.param(lambda: bytearray(ASTRONAUT.read_bytes()), id="bytearray"),
        pytest.param(lambda: memoryview(ASTRONAUT.read_bytes()), id="memoryview"),
    ],
)
def test_paths_and_encoded_bytes_give_the_same_faces_as_the_rgb_array(
    detector: MTCNN, expected: list[dict], make
) -> None:
    assert detector.detect_faces(make()) == expected


def test_png_bytes_and_png_file_are_decoded_to_rgb(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict], tmp_path: Path
) -> None:
    encoded = png_bytes(astronaut)  # lossless: exactly the fixture's pixels
    np.testing.assert_array_equal(load_rgb(encoded), astronaut)
    assert detector.detect_faces(encoded) == expected
    (tmp_path / "a.png").write_bytes(encoded)
    assert detector.detect_faces(tmp_path / "a.png") == expected


def test_a_list_mixing_every_kind_is_a_batch_with_one_list_per_image(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    small = cv2.resize(astronaut, (300, 300))
    blank = np.zeros((120, 160, 3), np.uint8)
    batch = [astronaut, str(ASTRONAUT), ASTRONAUT, ASTRONAUT.read_bytes(), png_bytes(small), blank]
    results = detector.detect_faces(batch)
    assert isinstance(results, list) and len(results) == 6
    assert [rounded(faces) for faces in results[:4]] == [rounded(expected)] * 4
    assert rounded(results[4]) == rounded(detector.detect_faces(small)) and results[4]
    assert results[5] == []
    assert [rounded(f) for f in detector.detect_faces(tuple(batch[:2]))] == [rounded(expected)] * 2
    assert detector.detect_faces([astronaut]) == [expected]
    assert detector.detect_faces([]) == []


def test_a_tensorflow_tensor_is_accepted(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    import tensorflow as tf

    assert detector.detect_faces(tf.constant(astronaut)) == expected


def test_grey_and_rgba_arrays_and_files(detector: MTCNN, astronaut: np.ndarray, tmp_path: Path) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 128, np.uint8)])
    as_grey = detector.detect_faces(grey)
    assert as_grey and as_grey[0]["confidence"] > 0.99
    assert detector.detect_faces(grey[:, :, None]) == as_grey
    assert detector.detect_faces(png_bytes(grey)) == as_grey  # decoded to three equal channels
    assert detector.detect_faces(rgba) == detector.detect_faces(astronaut)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert load_rgb(tmp_path / "rgba.png").shape == astronaut.shape
    assert detector.detect_faces(tmp_path / "rgba.png") == detector.detect_faces(astronaut)


def test_matplotlib_style_float_images_are_converted(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    """plt.imread gives float32 in [0, 1] for PNG (often RGBA); mtcnn's loader gives 0-255 floats."""
    unit = astronaut.astype(np.float32) / 255
    rgba = np.dstack([unit, np.ones(unit.shape[:2], np.float32)])
    before = rgba.copy()
    np.testing.assert_array_equal(as_rgb(unit), astronaut)  # round(x * 255) restores the pixels
    assert detector.detect_faces(unit) == expected
    assert detector.detect_faces(rgba) == expected
    np.testing.assert_array_equal(rgba, before)  # the caller's array is untouched
    assert detector.detect_faces(astronaut.astype(np.float64)) == expected
    assert detector.detect_faces(astronaut.astype(np.int64)) == expected


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            np.full((40, 40, 3), 256.0, np.float32),
            r"must lie in \[0, 1\] \(scaled by 255\) or \[0, 255\], got",
        ),
        (np.full((40, 40, 3), -0.5, np.float32), r"\[-0.5, -0.5\]"),
        (np.full((40, 40, 3), np.nan, np.float32), "NaN or infinity"),
        (
            np.full((40, 40, 3), 300, np.int32),
            r"integer image values must lie in \[0, 255\], got \[300, 300\]",
        ),
        (np.zeros((40, 40, 3), bool), "dtype"),
        (np.zeros((40, 40, 2), np.uint8), "shape"),
        (b"not-a-path-or-image", "could not decode an image from 19 bytes"),
        (b"", "could not decode"),
        (12345, "numpy array"),
    ],
)
def test_bad_images_raise_a_clear_value_error(detector: MTCNN, image: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detector.detect_faces(image)


def test_bad_bytes_and_missing_files_raise_instead_of_returning_no_faces(
    detector: MTCNN, tmp_path: Path
) -> None:
    """mtcnn returns [] for both; livefaces raises, so a typo is not mistaken for "no faces"."""
    with pytest.raises(ValueError, match="not_an_image"):
        detector.detect_faces(b"not_an_image")
    with pytest.raises(ValueError, match="could not decode"):
        detector.detect_faces([str(ASTRONAUT), b"not_an_image"])
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*missing\.jpg"):
        detector.detect_faces(tmp_path / "missing.jpg")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"could not decode an image from .*notes\.txt"):
        detector.detect_faces(str(tmp_path / "notes.txt"))


def test_exif_orientation_is_not_applied_as_in_mtcnn(astronaut: np.ndarray, tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    wide = np.ascontiguousarray(astronaut[:200])  # 512 wide, 200 high as stored
    exif = image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.fromarray(wide).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "rotated.jpg").shape == (200, 512, 3)


# Output -----------------------------------------------------------------------------------------


def test_json_output_holds_plain_python_numbers_and_round_trips(expected: list[dict]) -> None:
    for face in expected:
        assert set(face) == {"box", "confidence", "keypoints"}
        assert all(type(v) is int for v in face["box"])
        assert type(face["confidence"]) is float
        assert list(face["keypoints"]) == list(KEYPOINT_NAMES)
        for point in face["keypoints"].values():
            assert type(point) is list and len(point) == 2 and all(type(v) is int for v in point)
    assert json.loads(json.dumps(expected)) == expected


def test_box_formats_and_numpy_rows_agree(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    xyxy = detector.detect_faces(astronaut, box_format="xyxy")
    for a, b in zip(expected, xyxy):
        x, y, w, h = a["box"]
        assert b["box"] == [x, y, x + w, y + h] and b["keypoints"] == a["keypoints"]
    for box_format in ("xywh", "xyxy"):
        rows = detector.detect_faces(astronaut, output_type="numpy", box_format=box_format)
        assert rows.shape == (len(expected), 16) and rows.dtype == np.float64
        assert np.all(rows[:, 0] == 0)
        json_faces = expected if box_format == "xywh" else xyxy
        for row, face in zip(rows, json_faces):
            np.testing.assert_allclose(row[1:5], face["box"], atol=1.01)  # rows are not rounded
            assert row[5] == pytest.approx(face["confidence"])
            points = np.array(list(face["keypoints"].values()))
            np.testing.assert_allclose(row[6:11], points[:, 0], atol=0.51)  # the five x, then the five y
            np.testing.assert_allclose(row[11:16], points[:, 1], atol=0.51)
    rows = detector.detect_faces(astronaut, output_type="numpy")
    np.testing.assert_allclose(rows[:, 3:5], rows[:, 3:5].round(), atol=0.5)  # w, h in xywh
    assert np.all(rows[:, 3:5] > 0)


def test_numpy_output_of_a_batch_is_one_array_indexed_by_image(
    detector: MTCNN, astronaut: np.ndarray
) -> None:
    blank = np.zeros((100, 100, 3), np.uint8)
    rows = detector.detect_faces([blank, astronaut, blank, astronaut], output_type="numpy")
    single = detector.detect_faces(astronaut, output_type="numpy")
    assert sorted(set(rows[:, 0])) == [1.0, 3.0]
    np.testing.assert_allclose(rows[rows[:, 0] == 3][:, 1:], single[:, 1:], atol=1e-3)
    assert list(rows[:, 0]) == sorted(rows[:, 0])
    empty = detector.detect_faces(blank, output_type="numpy")
    assert empty.shape == (0, 16)
    assert detector.detect_faces([], output_type="numpy").shape == (0, 16)


def test_fit_to_image_limit_landmarks_and_postprocess(detector: MTCNN, astronaut: np.ndarray) -> None:
    cut = np.ascontiguousarray(astronaut[40:, 215:])  # the face's left side is outside the image
    height, width = cut.shape[:2]
    raw = detector.detect_faces(cut, output_type="numpy", box_format="xyxy", postprocess=False)
    assert len(raw) == 1 and raw[0, 1] < 0 and raw[0, 6:11].min() < 0
    unfitted = detector.detect_faces(cut, output_type="numpy", box_format="xyxy", fit_to_image=False)
    np.testing.assert_allclose(unfitted, raw)
    default = detector.detect_faces(cut, output_type="numpy", box_format="xyxy")
    assert default[0, 1] == 0 and np.all(default[:, 1:5] >= 0)
    assert np.all(default[:, [1, 3]] <= width) and np.all(default[:, [2, 4]] <= height)
    np.testing.assert_allclose(default[:, 6:], raw[:, 6:])  # landmarks untouched by default
    limited = detector.detect_faces(cut, output_type="numpy", limit_boundaries_landmarks=True)
    assert limited[:, 6:16].min() == 0
    assert np.all(limited[:, 6:11] <= width - 1) and np.all(limited[:, 11:16] <= height - 1)
    assert detector.detect_faces(cut, False, False, "xyxy", "json", True)[0]["box"][0] < 0  # positional


def test_predict_is_an_alias(detector: MTCNN, expected: list[dict]) -> None:
    assert detector.predict(str(ASTRONAUT)) == expected


# Per-call settings --------------------------------------------------------------------------------


def test_per_call_settings_apply_to_that_call_only(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    assert len(expected) >= 2 and expected[1]["confidence"] < 0.9
    strict = detector.detect_faces(astronaut, threshold_onet=0.9)
    assert [f["confidence"] for f in strict] == [f["confidence"] for f in expected if f["confidence"] > 0.9]
    assert detector.detect_faces(astronaut, min_face_size=300) == []
    large = detector.detect_faces(astronaut, min_face_size=60, scale_factor=0.6)
    assert len(large) == 1 and large[0]["confidence"] > 0.99
    everything = detector.detect_faces(
        astronaut, threshold_pnet=0.6, threshold_rnet=0.7, threshold_onet=0.7, nms_pnet1=0.5, nms_pnet2=0.7
    )
    assert everything == expected
    assert detector.detect_faces(astronaut, nms_rnet=0.7, nms_onet=0.7) == expected
    assert detector.settings == Settings() and detector.thresholds == (0.6, 0.7, 0.7)
    assert detector.detect_faces(astronaut) == expected


def test_per_call_settings_reuse_the_traced_graphs(detector: MTCNN, astronaut: np.ndarray) -> None:
    """Thresholds never reach a graph; min_face_size / scale_factor only choose the pyramid depth,
    and each depth's graph is traced once, whatever the image size or the call's settings."""
    calls = [
        {},
        {"threshold_pnet": 0.5, "threshold_rnet": 0.8, "threshold_onet": 0.95, "nms_pnet1": 0.4},
        {"min_face_size": 40},
        {"min_face_size": 33, "scale_factor": 0.75},
        {"scale_factor": 0.5},
    ]
    small = cv2.resize(astronaut, (320, 240))
    for kwargs in calls:  # warm up: at most one trace per new pyramid depth
        detector.detect_faces([astronaut, small], **kwargs)
    depths, traced = set(detector._pyramids), tracing_count(detector)
    for kwargs in calls * 2:
        detector.detect_faces(astronaut, **kwargs)
        detector.detect_faces([small, astronaut, small], output_type="numpy", **kwargs)
    detector.detect(astronaut)
    assert tracing_count(detector) == traced
    assert set(detector._pyramids) == depths
    before = tracing_count(detector)
    detector.detect_faces(astronaut, threshold_onet=0.99, nms_onet=0.3)
    assert tracing_count(detector) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold_pnet": 1.5}, r"threshold_pnet must be in \[0.0, 1.0\], got 1.5"),
        ({"threshold_onet": "high"}, "threshold_onet must be a number, got 'high'"),
        ({"nms_rnet": -0.1}, "nms_rnet must be in"),
        ({"min_face_size": 5}, "min_face_size must be an integer >= 12, got 5"),
        ({"scale_factor": 1.2}, r"scale_factor must be in \(0.0, 0.99\], got 1.2"),
        ({"box_format": "xyhw"}, r"box_format must be one of \('xywh', 'xyxy'\), got 'xyhw'"),
        ({"output_type": "dict"}, r"output_type must be one of \('json', 'numpy'\), got 'dict'"),
        ({"fit_to_image": "yes"}, "fit_to_image must be True or False, got 'yes'"),
        ({"limit_boundaries_landmarks": 1}, "limit_boundaries_landmarks must be True or False"),
        ({"batch_stack_justification": "middle"}, "batch_stack_justification must be one of"),
    ],
)
def test_bad_keyword_values_name_themselves(
    detector: MTCNN, astronaut: np.ndarray, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        detector.detect_faces(astronaut, **kwargs)


def test_unknown_keywords_are_refused(detector: MTCNN, astronaut: np.ndarray) -> None:
    """mtcnn swallows any keyword, so a typo silently uses the default; here it is a TypeError."""
    with pytest.raises(TypeError, match="treshold_onet"):
        detector.detect_faces(astronaut, treshold_onet=0.9)


def test_batch_stack_justification_is_accepted_and_has_no_effect(
    detector: MTCNN, astronaut: np.ndarray, expected: list[dict]
) -> None:
    small = cv2.resize(astronaut, (256, 256))
    plain = detector.detect_faces([astronaut, small])
    assert detector.detect_faces([astronaut, small], batch_stack_justification="topleft") == plain
    assert plain[0] == expected


# Constructor --------------------------------------------------------------------------------------


def test_mtcnn_0_1_style_constructor(astronaut: np.ndarray) -> None:
    old = MTCNN(min_face_size=30, scale_factor=0.8, steps_threshold=[0.6, 0.7, 0.9])
    assert old.thresholds == (0.6, 0.7, 0.9) and old.min_face_size == 30 and old.scale_factor == 0.8
    faces = old.detect_faces(astronaut)
    assert len(faces) == 1 and faces[0]["confidence"] > 0.99
    assert MTCNN(thresholds=(0.5, 0.6, 0.7)).thresholds == (0.5, 0.6, 0.7)
    with pytest.raises(ValueError, match="not both"):
        MTCNN(thresholds=(0.6, 0.7, 0.7), steps_threshold=[0.6, 0.7, 0.7])
    with pytest.raises(ValueError, match=r"thresholds\[2\] must be in \[0.0, 1.0\], got 7"):
        MTCNN(steps_threshold=[0.6, 0.7, 7])
    with pytest.raises(ValueError, match=r"thresholds must hold 3 values \(P-Net, R-Net, O-Net\)"):
        MTCNN(steps_threshold=0.7)


def test_mtcnn_1_0_style_constructor_and_device_spellings(astronaut: np.ndarray) -> None:
    import tensorflow as tf

    detector = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    assert detector.device == "/CPU:0" and detector.stages == "face_and_landmarks_detection"
    for spelling in ("cpu", "CPU:0", "cpu:0", "/CPU:0", "/device:CPU:0"):
        assert resolve_device(spelling) == "/CPU:0"
    if not tf.config.list_physical_devices("GPU"):
        for spelling in ("gpu", "GPU:0", "/device:GPU:0"):
            with pytest.raises(ValueError, match="TensorFlow sees no GPU"):
                resolve_device(spelling)
    with pytest.raises(ValueError, match="CPU:0"):
        resolve_device("CPU:1")
    with pytest.raises(ValueError, match=r"device must be one of \('auto', 'cpu', 'gpu'\) or .*got 'TPU:0'"):
        MTCNN(device="TPU:0")
    with pytest.raises(ValueError, match=r"stages must be one of .*got 'landmarks_only'"):
        MTCNN(stages="landmarks_only")


def test_face_detection_only_stops_after_rnet(astronaut: np.ndarray) -> None:
    """As in mtcnn 1.0: P-Net and R-Net only; R-Net's square boxes and scores, no keypoints."""
    fast = MTCNN(stages="face_detection_only")
    faces = fast.detect_faces(astronaut)
    assert faces and all(set(face) == {"box", "confidence"} for face in faces)
    assert [f["confidence"] for f in faces] == sorted((f["confidence"] for f in faces), reverse=True)
    assert all(abs(f["box"][2] - f["box"][3]) <= 1 for f in faces)  # square, up to rounding
    x, y, w, h = faces[0]["box"]
    assert 150 < x + w / 2 < 290 and 60 < y + h / 2 < 180  # on the astronaut's face
    rows = fast.detect_faces([astronaut, astronaut], output_type="numpy")
    assert rows.shape == (2 * len(faces), 6)
    found = fast.detect(astronaut)
    assert len(found) == len(faces) and np.isnan(found.landmarks).all()


# The dtype rule on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype", "pixels"),
    [
        ([0.0, 0.5, 1.0], np.float32, [0, 128, 255]),
        ([0.0, 0.2, 1.0], np.float16, [0, 51, 255]),
        ([0.0, 127.6, 255.0], np.float64, [0, 128, 255]),
        ([0.0, 1.0, 1.5], np.float32, [0, 1, 2]),  # brighter than 1: taken as 0-255
        ([0, 7, 255], np.int64, [0, 7, 255]),
        ([0, 7, 255], np.uint16, [0, 7, 255]),
    ],
)
def test_dtype_rule(values: list, dtype: type, pixels: list[int]) -> None:
    converted = to_uint8(np.array(values, dtype))
    assert converted.dtype == np.uint8 and converted.tolist() == pixels
