"""Box maths as truth tables."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from livefaces import boxes as bx


def b(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (b((0, 0, 10, 10)), b((0, 0, 10, 10)), 1.0),
        (b((0, 0, 10, 10)), b((5, 0, 15, 10)), 50 / 150),
        (b((0, 0, 10, 10)), b((10, 10, 20, 20)), 0.0),
        (b((0, 0, 10, 10)), b((2, 2, 4, 4)), 4 / 100),
        (b((0, 0, 0, 0)), b((0, 0, 0, 0)), 0.0),
    ],
)
def test_iou(first: np.ndarray, second: np.ndarray, expected: float) -> None:
    assert bx.iou(first, second)[0, 0] == pytest.approx(expected)


NMS_BOXES = b((0, 0, 10, 10), (1, 0, 11, 10), (20, 20, 30, 30), (2, 2, 6, 6))
NMS_SCORES = np.array([0.9, 0.95, 0.5, 0.8])


@pytest.mark.parametrize(
    ("threshold", "mode", "kept"),
    [
        (0.5, "union", [1, 3, 2]),  # box 0 overlaps box 1 at IoU 0.82; box 3 is small inside
        (0.9, "union", [1, 0, 3, 2]),
        (0.5, "min", [1, 2]),  # box 3 lies inside box 1: intersection over the smaller area is 1
        (0.0, "union", [1, 2]),  # any overlap at all suppresses
    ],
)
def test_nms(threshold: float, mode: str, kept: list[int]) -> None:
    assert bx.nms(NMS_BOXES, NMS_SCORES, threshold, mode).tolist() == kept


def test_nms_of_nothing_and_bad_mode() -> None:
    assert bx.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="mode"):
        bx.nms(NMS_BOXES, NMS_SCORES, 0.5, "max")


def test_grouped_nms_never_suppresses_across_groups() -> None:
    same = b((0, 0, 10, 10), (0, 0, 10, 10))
    scores = np.array([0.9, 0.8])
    assert sorted(bx.grouped_nms(same, scores, np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert bx.grouped_nms(same, scores, np.array([3, 3]), 0.5).tolist() == [0]


@pytest.mark.parametrize(
    ("box", "offsets", "expected"),
    [
        ((10, 20, 30, 60), (0, 0, 0, 0), (10, 20, 30, 60)),
        ((10, 20, 30, 60), (0.5, 0.25, -0.5, -0.25), (20, 30, 20, 50)),
        ((0, 0, 100, 50), (-0.1, 0.1, 0.1, 0.2), (-10, 5, 110, 60)),
    ],
)
def test_apply_offsets(box: tuple, offsets: tuple, expected: tuple) -> None:
    result = bx.apply_offsets(b(box), np.array([offsets], dtype=np.float64))
    np.testing.assert_allclose(result, b(expected))


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10)),
        ((0, 0, 10, 20), (-5, 0, 15, 20)),
        ((10, 10, 50, 20), (10, -5, 50, 35)),
    ],
)
def test_to_square(box: tuple, expected: tuple) -> None:
    np.testing.assert_allclose(bx.to_square(b(box)), b(expected))


def test_clip_boxes_and_inputs_untouched() -> None:
    boxes = b((-5, -5, 50, 50), (10, 10, 200, 20))
    before = boxes.copy()
    np.testing.assert_allclose(bx.clip_boxes(boxes, 40, 100), b((0, 0, 50, 40), (10, 10, 100, 20)))
    np.testing.assert_array_equal(boxes, before)


def test_crop_coordinates_sample_the_box_exactly() -> None:
    """A crop of the box [8, 16) x [4, 12) at 8x8 reproduces those pixels one to one."""
    image = np.arange(20 * 30 * 3, dtype=np.float32).reshape(1, 20, 30, 3)
    box = b((8, 4, 16, 12))
    crops = bx.crop_coordinates(box, 20, 30, 8)
    sampled = tf.image.crop_and_resize(image, crops, [0], (8, 8)).numpy()[0]
    np.testing.assert_allclose(sampled, image[0, 4:12, 8:16], atol=1e-3)


def test_crop_coordinates_halve_a_box() -> None:
    """A 4x4 box sampled at 2x2 lands between pixels: the mean of each 2x2 cell."""
    image = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    crops = bx.crop_coordinates(b((0, 0, 4, 4)), 6, 6, 2)
    sampled = tf.image.crop_and_resize(image, crops, [0], (2, 2)).numpy()[0, :, :, 0]
    expected = image[0, :4, :4, 0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(sampled, expected, atol=1e-4)


def test_opencv_union_nms_equals_the_numpy_loop() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        count = int(rng.integers(1, 200))
        corners = rng.uniform(0, 300, (count, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(0, 60, (count, 2))], axis=1)
        scores = rng.uniform(0.5, 1.0, count).astype(np.float32)
        if trial % 3 == 0:
            scores = np.round(scores, 2)  # many ties
        for threshold in (0.3, 0.5, 0.7):
            expected = bx._nms_greedy(boxes, scores.astype(np.float64), threshold, "union")
            np.testing.assert_array_equal(bx._nms_union(boxes, scores, threshold), expected)
