"""Face crops and alignment (`livefaces.crop_faces`, `livefaces.align_face`) on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import livefaces
from livefaces import MTCNN, Detections
from livefaces.faces import ARCFACE_TEMPLATE, Margin, sharpness, similarity_transform, template_points
from tests.conftest import SHARED_DATA, shared_data

PORTRAITS = (
    "face_recognition__biden.jpg",
    "facenet-pytorch__paul_rudd_1.jpg",
    "facenet-pytorch__shea_whigham_1.jpg",
    "facenet-pytorch__kate_siegel_1.jpg",
)


def aligned_eyes(detector: MTCNN, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eyes the detector finds in the aligned crop of the image's best face, and where the
    alignment's fit puts that face's eyes. The crop is 224 px with a 50% margin: the template's
    112 px square sits in its middle at scale 1 (the detector needs the context around a face)."""
    found = detector.detect(np.ascontiguousarray(bgr[..., ::-1]))
    assert len(found) >= 1
    aligned = livefaces.align_face(bgr, found.landmarks[0], size=224, margin="50%")
    again = detector.detect(np.ascontiguousarray(aligned[..., ::-1]))
    assert len(again) >= 1 and again.scores[0] > 0.99
    target = template_points(224, "50%")
    np.testing.assert_allclose(target, ARCFACE_TEMPLATE + 56)
    fit = similarity_transform(found.landmarks[0], target)
    placed = found.landmarks[0].astype(np.float64) @ fit[:, :2].T + fit[:, 2]
    return again.landmarks[0][:2], placed[:2]


def check_eyes(detector: MTCNN, bgr: np.ndarray) -> None:
    """The eyes are found within 2 px of where the fit puts them, and no further from the
    template's eye positions than the five-point fit itself allows (a face whose mouth sits lower
    than the template's cannot have both on the template) plus those 2 px."""
    found, placed = aligned_eyes(detector, bgr)
    assert np.linalg.norm(found - placed, axis=1).max() <= 2.0, (found, placed)
    template = ARCFACE_TEMPLATE[:2] + 56
    residual = np.linalg.norm(placed - template, axis=1)
    assert (np.linalg.norm(found - template, axis=1) <= residual + 2.0).all()


def test_aligned_eyes_land_where_the_fit_puts_them_on_the_astronaut(
    detector: MTCNN, astronaut: np.ndarray
) -> None:
    check_eyes(detector, np.ascontiguousarray(astronaut[..., ::-1]))


@pytest.mark.parametrize("name", PORTRAITS)
def test_aligned_eyes_land_on_the_template_on_real_portraits(detector: MTCNN, name: str) -> None:
    check_eyes(detector, cv2.imread(str(shared_data(f"images/{name}"))))


def test_alignment_undoes_a_known_similarity_exactly() -> None:
    """Five coloured dots put where a rotated, scaled, shifted template would be come back to the
    template's positions in the 112 px crop (the dots' centroids, to within half a pixel)."""
    angle, scale, shift = np.deg2rad(25), 2.6, np.array([140.0, 90.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE @ (scale * rotation).T + shift
    image = np.zeros((480, 520, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(points, colours):
        cv2.circle(image, (round(x * 16), round(y * 16)), 13 * 16, colour, -1, cv2.LINE_AA, shift=4)
    aligned = livefaces.align_face(image, points)
    assert aligned.shape == (112, 112, 3)
    for colour, expected in zip(colours, ARCFACE_TEMPLATE):
        mask = np.all(np.abs(aligned.astype(int) - colour) < 60, axis=2)
        ys, xs = np.nonzero(mask)
        assert len(xs) > 40
        assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 0.5


def test_similarity_transform_is_the_least_squares_fit() -> None:
    matrix = similarity_transform(ARCFACE_TEMPLATE * 3 + 7, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix, [[1 / 3, 0, -7 / 3], [0, 1 / 3, -7 / 3]], atol=1e-9)


def test_template_points_scale_with_the_size_and_the_margin() -> None:
    np.testing.assert_allclose(template_points(224), ARCFACE_TEMPLATE * 2)
    np.testing.assert_allclose(template_points(132, 10), ARCFACE_TEMPLATE + 10)
    np.testing.assert_allclose(template_points(168, "25%"), ARCFACE_TEMPLATE + 28)


def box_image() -> tuple[np.ndarray, Detections]:
    """A 200x100 grey image with a 40x60 white box at x 50-90, y 20-80."""
    image = np.full((100, 200, 3), 60, np.uint8)
    image[20:80, 50:90] = 255
    landmarks = np.tile(np.array([[60, 40], [80, 40], [70, 50], [62, 65], [78, 65]], np.float32), (1, 1, 1))
    found = Detections(np.array([[50, 20, 90, 80]], np.float32), np.array([0.99], np.float32), landmarks)
    return image, found


@pytest.mark.parametrize(
    ("margin", "size", "shape"),
    [
        (0, None, (60, 40, 3)),
        (10, None, (80, 60, 3)),
        ("10", None, (80, 60, 3)),
        ("25%", None, (90, 60, 3)),
        (0, 160, (160, 160, 3)),
        ("50%", 32, (32, 32, 3)),
    ],
)
def test_crop_margins_and_sizes(margin: float | str, size: int | None, shape: tuple[int, ...]) -> None:
    image, found = box_image()
    (crop,) = livefaces.crop_faces(image, found, margin=margin, size=size)
    assert crop.shape == shape


def test_a_margin_in_pixels_surrounds_the_box_and_a_square_crop_keeps_it_centred() -> None:
    image, found = box_image()
    (crop,) = livefaces.crop_faces(image, found, margin=10)
    assert (crop[10:70, 10:50] == 255).all() and (crop[:10] == 60).all() and (crop[:, :10] == 60).all()
    (square,) = livefaces.crop_faces(image, found, size=60)  # 60x60 around the 40x60 box: no stretching
    assert (square[:, 10:50] == 255).all() and (square[:, :10] == 60).all() and (square[:, 50:] == 60).all()


def test_beyond_the_border_is_black() -> None:
    image, _ = box_image()
    edge = Detections(
        np.array([[-20, -10, 20, 30]], np.float32), np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32)
    )
    (crop,) = livefaces.crop_faces(image, edge)
    assert crop.shape == (40, 40, 3)
    assert (crop[:10] == 0).all() and (crop[:, :20] == 0).all() and (crop[10:, 20:] == 60).all()


def test_detect_faces_dicts_give_the_same_crops(detector: MTCNN, astronaut: np.ndarray) -> None:
    found = detector.detect(astronaut)
    dicts = detector.detect_faces(astronaut)
    for align in (False, True):
        from_arrays = livefaces.crop_faces(astronaut, found, margin="20%", size=112, align=align)
        from_dicts = livefaces.crop_faces(astronaut, dicts, margin="20%", size=112, align=align)
        assert len(from_arrays) == len(from_dicts) == len(found)
        for a, b in zip(from_arrays, from_dicts):  # dicts round to whole pixels
            assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 12


@pytest.mark.parametrize(
    ("margin", "message"),
    [("-5", "margin must be >= 0"), ("ten", "pixels such as 20 or a percentage"), ("x%", "percentage")],
)
def test_bad_margins_are_named(margin: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Margin.parse(margin)


def test_aligning_without_landmarks_is_refused(astronaut: np.ndarray) -> None:
    faces = [{"box": [10, 10, 50, 50], "confidence": 0.9}]
    with pytest.raises(ValueError, match="landmarks"):
        livefaces.crop_faces(astronaut, faces, align=True)
    assert livefaces.crop_faces(astronaut, faces)[0].shape == (50, 50, 3)


def test_blur_lowers_sharpness(astronaut: np.ndarray) -> None:
    assert sharpness(cv2.GaussianBlur(astronaut, (9, 9), 3)) < sharpness(astronaut) / 4


def test_shared_data_is_found_where_the_tests_look() -> None:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not present: {SHARED_DATA}")
    assert all((SHARED_DATA / "images" / name).exists() for name in PORTRAITS)
