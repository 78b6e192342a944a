"""The MTCNN detector on real images: geometry, formats, batching, validation, weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces import KEYPOINT_NAMES, MTCNN, Detections, WeightsError
from livefaces.boxes import iou
from livefaces.detector import as_rgb, pyramid_scales
from livefaces.networks import SHIPPED_SHA256, load_npz, shipped_weights_dir
from tests.conftest import shared_data


@pytest.mark.parametrize(
    ("height", "width", "min_face", "levels"),
    [(480, 640, 20, 10), (720, 1280, 20, 11), (480, 640, 40, 8), (480, 640, 12, 11), (30, 30, 20, 2)],
)
def test_pyramid_scales(height: int, width: int, min_face: int, levels: int) -> None:
    scales = pyramid_scales(height, width, min_face, 0.709)
    assert len(scales) == levels
    assert scales[0] == pytest.approx(12 / min_face)
    np.testing.assert_allclose(np.diff(np.log(scales)), np.log(0.709))
    assert min(height, width) * scales[-1] >= 12 > min(height, width) * scales[-1] * 0.709


def test_pyramid_empty_when_image_smaller_than_window() -> None:
    assert pyramid_scales(11, 400, 12, 0.709) == []
    assert pyramid_scales(100, 100, 200, 0.709) == []


def test_astronaut_face_and_landmarks(detector: MTCNN, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    strong = found.select(found.scores >= 0.95)
    assert len(strong) == 1
    x1, y1, x2, y2 = strong.boxes[0]
    assert 150 < x1 < 210 and 30 < y1 < 90 and 250 < x2 < 300 and 150 < y2 < 200
    points = dict(zip(KEYPOINT_NAMES, strong.landmarks[0]))
    assert all(x1 <= p[0] <= x2 and y1 <= p[1] <= y2 for p in points.values())
    assert points["left_eye"][0] < points["nose"][0] < points["right_eye"][0]
    assert points["mouth_left"][0] < points["mouth_right"][0]
    eyes_y = max(points["left_eye"][1], points["right_eye"][1])
    assert eyes_y < points["nose"][1] < min(points["mouth_left"][1], points["mouth_right"][1])


def test_result_arrays_have_fixed_shapes(detector: MTCNN, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    n = len(found)
    assert found.boxes.shape == (n, 4) and found.boxes.dtype == np.float32
    assert found.scores.shape == (n,) and found.landmarks.shape == (n, 5, 2)
    assert list(found.scores) == sorted(found.scores, reverse=True)
    empty = Detections.empty()
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.landmarks.shape == (0, 5, 2)


def test_detect_faces_is_mtcnn_format_and_json_round_trips(detector: MTCNN, astronaut: np.ndarray) -> None:
    faces = detector.detect_faces(astronaut)
    assert faces
    for face in faces:
        assert set(face) == {"box", "confidence", "keypoints"}
        assert all(type(v) is int for v in face["box"]) and type(face["confidence"]) is float
        assert set(face["keypoints"]) == set(KEYPOINT_NAMES)
        x, y, w, h = face["box"]
        assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    restored = json.loads(json.dumps(faces))
    assert [f["box"] for f in restored] == [f["box"] for f in faces]
    assert restored[0]["keypoints"]["nose"] == list(faces[0]["keypoints"]["nose"])


def test_batch_equals_single_calls_with_mixed_sizes(detector: MTCNN, astronaut: np.ndarray) -> None:
    images = [astronaut, cv2.resize(astronaut, (384, 300)), np.ascontiguousarray(astronaut[:, ::-1])]
    images.append(astronaut)
    batch = detector.detect_batch(images)
    assert len(batch) == 4
    for image, found in zip(images, batch):
        single = detector.detect(image)
        assert len(single) == len(found) > 0
        np.testing.assert_allclose(found.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(found.scores, single.scores, atol=1e-5)
        np.testing.assert_allclose(found.landmarks, single.landmarks, atol=1e-3)
    assert detector.detect_batch([]) == []


def test_caller_array_is_not_modified(detector: MTCNN, astronaut: np.ndarray) -> None:
    image = astronaut.copy()
    detector.detect(image)
    detector.detect_faces(image)
    detector.detect_batch([image, image])
    np.testing.assert_array_equal(image, astronaut)


def test_grey_and_rgba_inputs(detector: MTCNN, astronaut: np.ndarray) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 7, np.uint8)])
    rgb_result = detector.detect(astronaut)
    np.testing.assert_allclose(detector.detect(rgba).boxes, rgb_result.boxes, atol=1e-3)
    for image in (grey, grey[:, :, None]):
        strong = detector.detect(image)
        assert np.sum(strong.scores >= 0.95) == 1


def test_tiny_images_give_empty_results(detector: MTCNN) -> None:
    for shape in [(11, 11, 3), (5, 300, 3), (1, 1, 3)]:
        assert len(detector.detect(np.zeros(shape, np.uint8))) == 0
    assert detector.detect_faces(np.zeros((8, 8, 3), np.uint8)) == []


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((50, 50, 3), 300.0, np.float32), r"must lie in \[0, 1\] \(scaled by 255\) or \[0, 255\]"),
        (np.zeros((50, 50, 2), np.uint8), "shape"),
        (np.zeros((2, 50, 50, 3), np.uint8), "shape"),
        (np.zeros(50, np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_inputs_are_refused(detector: MTCNN, image: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detector.detect(image)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        as_rgb(image)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_face_size": 11}, "min_face_size must be an integer >= 12, got 11"),
        ({"min_face_size": 20.5}, "min_face_size"),
        ({"scale_factor": 1.0}, r"scale_factor must be in \(0.0, 0.99\], got 1.0"),
        ({"scale_factor": 0}, "scale_factor"),
        ({"thresholds": (0.6, 1.2, 0.7)}, r"thresholds\[1\] must be in \[0.0, 1.0\], got 1.2"),
        ({"thresholds": (0.6, 0.7)}, "3 values"),
        ({"nms_thresholds": (0.5, 0.7, 0.7, -0.1)}, r"nms_thresholds\[3\]"),
        ({"device": "tpu"}, "device must be one of"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MTCNN(**kwargs)


@pytest.mark.parametrize("min_face_size", [12, 40, 80])
def test_large_and_small_minimum_face_sizes_work(min_face_size: int, astronaut: np.ndarray) -> None:
    found = MTCNN(min_face_size=min_face_size).detect(astronaut)
    assert np.sum(found.scores >= 0.95) == 1


def test_tracing_leaves_no_files_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray
) -> None:
    """Graphs are traced without AutoGraph, which writes a source file per trace (a service
    restarted for weeks, or a test suite, would litter /tmp with them)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fresh = MTCNN(min_face_size=37)  # its own graphs, traced here
    assert len(fresh.detect(astronaut)) >= 1
    assert len(fresh.refine(astronaut, fresh.detect(astronaut).boxes)) >= 1
    assert list(tmp_path.iterdir()) == []


def test_minimum_face_size_excludes_smaller_faces(astronaut: np.ndarray) -> None:
    assert len(MTCNN(min_face_size=300).detect(astronaut)) == 0


def test_device_choice(detector: MTCNN) -> None:
    import tensorflow as tf

    assert detector.device in ("/CPU:0", "/GPU:0")
    assert MTCNN(device="cpu").device == "/CPU:0"
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(ValueError, match="no GPU"):
            MTCNN(device="gpu")


def test_shipped_weights_match_their_checksums() -> None:
    for net, digest in SHIPPED_SHA256.items():
        arrays = load_npz(shipped_weights_dir() / f"{net}.npz", net, digest)
        assert all(a.dtype == np.float32 for a in arrays.values())


def test_custom_weights_folder_is_used(tmp_path: Path, astronaut: np.ndarray) -> None:
    for net in SHIPPED_SHA256:
        shutil.copy(shipped_weights_dir() / f"{net}.npz", tmp_path)
    assert np.sum(MTCNN(weights=tmp_path).detect(astronaut).scores >= 0.95) == 1


def test_corrupt_and_missing_weights_name_the_file(tmp_path: Path) -> None:
    for net in SHIPPED_SHA256:
        shutil.copy(shipped_weights_dir() / f"{net}.npz", tmp_path)
    truncated = tmp_path / "rnet.npz"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(WeightsError, match=r"rnet\.npz"):
        MTCNN(weights=tmp_path)
    with pytest.raises(WeightsError, match="does not match its SHA-256"):
        load_npz(truncated, "rnet", SHIPPED_SHA256["rnet"])
    np.savez(truncated, **{"conv1/kernel": np.zeros((3, 3))})
    with pytest.raises(WeightsError, match=r"rnet\.npz"):
        MTCNN(weights=tmp_path)
    (tmp_path / "onet.npz").unlink()
    with pytest.raises(WeightsError, match=r"weights file not found: .*onet\.npz"):
        load_npz(tmp_path / "onet.npz", "onet", None)


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pnet.npz"
    np.savez(path, **{"conv1/kernel": np.array([object()], dtype=object)})
    with pytest.raises(WeightsError, match=r"pnet\.npz"):
        load_npz(path, "pnet", None)


@pytest.mark.parametrize(
    ("name", "faces"),
    [("mtcnn__no-faces.jpg", 0), ("dlib__dogs.jpg", 0), ("face_recognition__two_people.jpg", 2)],
)
def test_real_images(detector: MTCNN, name: str, faces: int) -> None:
    image = cv2.imread(str(shared_data(f"images/{name}")))[:, :, ::-1]
    assert np.sum(detector.detect(image).scores >= 0.9) == faces


def test_rgba_png_from_real_data(detector: MTCNN) -> None:
    image = cv2.imread(str(shared_data("images/face_recognition__test_32bit.png")), cv2.IMREAD_UNCHANGED)
    assert image.shape[2] == 4
    rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    assert len(detector.detect(rgba)) >= 1


def test_colour_order_matters(detector: MTCNN) -> None:
    """Feeding BGR instead of RGB lowers confidence on real faces: the app must convert once."""
    image = cv2.imread(str(shared_data("images/facenet-pytorch__multiface.jpg")))
    rgb_scores = detector.detect(image[:, :, ::-1]).scores
    bgr_scores = detector.detect(image).scores
    assert len(rgb_scores) >= 1
    assert np.sum(rgb_scores >= 0.9) >= np.sum(bgr_scores >= 0.9)


def test_installed_package_finds_its_weights_from_any_folder(tmp_path: Path) -> None:
    """What `pip install .` put in site-packages carries the weights and the bundled image."""
    script = (
        "import json, livefaces, livefaces.networks as n, livefaces.demo as d;"
        "folder = n.shipped_weights_dir();"
        "n.load_weights();"
        "print(json.dumps([livefaces.__file__, sorted(p.name for p in folder.iterdir())]))"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 and "No module named 'livefaces'" in done.stderr:
        pytest.skip("livefaces is not installed in this interpreter (scripts/test installs it)")
    assert done.returncode == 0, done.stderr
    location, files = json.loads(done.stdout.splitlines()[-1])
    assert not Path(location).is_relative_to(tmp_path)
    assert {"pnet.npz", "rnet.npz", "onet.npz", "LICENSE-mtcnn.txt", "README.md"} <= set(files)


def test_a_coarse_scan_finds_large_faces_only(detector: MTCNN, astronaut: np.ndarray) -> None:
    full = detector.detect(astronaut)
    large = full.select(full.boxes[:, 2] - full.boxes[:, 0] >= 60)  # the astronaut's face, ~90 px
    assert len(large) == 1 and len(full) > len(large)  # and a small face-like patch on the badge
    coarse = detector.detect_batch([astronaut], min_face_size=60)[0]
    assert len(coarse) == 1
    assert iou(coarse.boxes, large.boxes)[0, 0] > 0.8
    assert len(detector.detect_batch([astronaut], min_face_size=200)[0]) == 0


def test_known_faces_are_measured_once_along_with_new_ones(detector: MTCNN, astronaut: np.ndarray) -> None:
    full = detector.detect(astronaut)
    face = full.boxes[int(np.argmax(full.scores))]
    moved = face + np.array([6, -4, 6, -4], np.float32)
    background = np.array([400, 400, 480, 480], np.float32)
    known = np.stack([moved, background])
    found = detector.detect_batch([astronaut], min_face_size=60, known=[known])[0]
    assert len(found) == 1  # the face, known and found again, given once; the background rejected
    assert iou(found.boxes, face[None])[0, 0] > 0.8
    # Above every face size the pyramid has no level: the known face is still measured, as refine
    only_known = detector.detect_batch([astronaut], min_face_size=1000, known=[known])[0]
    refined = detector.refine(astronaut, known)
    assert len(only_known) == len(refined) == 1
    np.testing.assert_allclose(only_known.boxes, refined.boxes, atol=1e-3)
    with pytest.raises(ValueError, match="one known array per image"):
        detector.detect_batch([astronaut, astronaut], known=[known])


def test_scans_with_known_faces_send_r_net_the_best_new_candidates_of_each_image() -> None:
    from livefaces.detector import NEW_CANDIDATES, _best_new

    owners = np.array([0] * 20 + [1] * 3 + [0] * 2)  # best first within each image
    candidates = np.arange(len(owners), dtype=np.float64)[:, None].repeat(4, axis=1)
    kept, kept_owners = _best_new(candidates, owners)
    assert kept[:, 0].tolist() == [*range(NEW_CANDIDATES), 20, 21, 22]
    assert kept_owners.tolist() == [0] * NEW_CANDIDATES + [1] * 3
