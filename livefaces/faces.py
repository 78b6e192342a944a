"""Face crops: boxes cut with a margin, or faces aligned to the ArcFace five-point template.

`crop_faces(image, detections, margin=..., size=..., align=...)` gives one crop per face;
`align_face(image, landmarks, size=112)` warps one face so that its eyes, nose and mouth corners
land on the 112x112 template of the ArcFace/insightface family (scaled for other sizes), with the
least-squares similarity transform (Umeyama) from the five landmarks: what face recognisers
trained on that template expect. Both work on any channel order (they only move pixels).

A margin is pixels (`20`) or a percentage (`"25%"`). Around a box, it is added on each side, a
percentage of the box's width (left, right) and height (top, bottom). Around the template, it
widens the view: the template's 112x112 square fills the output less the margin on each side
(pixels of the output, or a percentage of the template's square).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from livefaces.detections import KEYPOINT_NAMES, Detections

TEMPLATE_SIZE = 112
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # left eye (the eye on the image's left)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Margin:
    """Space around a face: `value` pixels, or `value` as a share of the face when `relative`."""

    value: float = 0.0
    relative: bool = False

    @classmethod
    def parse(cls, margin: float | str | Margin) -> Margin:
        """`20`, `"20"` (pixels) or `"25%"` (a share); raises ValueError naming the bad value."""
        if isinstance(margin, Margin):
            return margin
        text = str(margin).strip()
        relative = text.endswith("%")
        try:
            value = float(text[:-1] if relative else text)
        except ValueError:
            raise ValueError(
                f"margin must be pixels such as 20 or a percentage such as '25%', got {margin!r}"
            ) from None
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        return cls(value / 100 if relative else value, relative)


def template_points(size: int = TEMPLATE_SIZE, margin: float | str | Margin = 0) -> np.ndarray:
    """Where the five landmarks go in a `size` x `size` aligned crop, (5, 2) float64."""
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    given = Margin.parse(margin)
    inner = size / (1 + 2 * given.value) if given.relative else size - 2 * given.value
    if inner <= 0:
        raise ValueError(f"margin {margin!r} leaves no room for the face in {size} px")
    return ARCFACE_TEMPLATE * (inner / TEMPLATE_SIZE) + (size - inner) / 2


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that maps `source` points onto `target` points
    with the least squared error (Umeyama 1991), as insightface's alignment computes it."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(
    image: np.ndarray, landmarks: Any, size: int = TEMPLATE_SIZE, margin: float | str | Margin = 0
) -> np.ndarray:
    """The face whose five `landmarks` ((5, 2) x, y in `KEYPOINT_NAMES` order, or the `mtcnn`
    keypoints dict) are given, warped onto the template in a `size` x `size` crop."""
    points = _points(landmarks)
    matrix = similarity_transform(points, template_points(size, margin))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def crop_faces(
    image: np.ndarray,
    detections: Detections | Sequence[dict[str, Any]],
    margin: float | str | Margin = 0,
    size: int | None = None,
    align: bool = False,
) -> list[np.ndarray]:
    """One crop per face of `detections` (a `Detections` or `detect_faces`' list of dicts).

    Without `align`: the box grown by `margin`; with `size`, first made square around its centre
    (so faces are not stretched), then resized to `size` x `size`. Parts beyond the image are
    black. With `align`: `align_face` to `size` (default 112), the margin around the template.
    """
    boxes, landmarks = _boxes_and_landmarks(detections)
    given = Margin.parse(margin)
    if size is not None and size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    if align:
        if landmarks is None:
            raise ValueError("align needs the five landmarks of each face (keypoints)")
        return [align_face(image, points, size or TEMPLATE_SIZE, given) for points in landmarks]
    return [_crop_box(image, box, given, size) for box in boxes]


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's grey levels: higher is sharper (blur flattens it)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _crop_box(image: np.ndarray, box: np.ndarray, margin: Margin, size: int | None) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x = margin.value * (x2 - x1) if margin.relative else margin.value
    grow_y = margin.value * (y2 - y1) if margin.relative else margin.value
    x1, y1, x2, y2 = x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y
    if size is not None:
        side = max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    crop = _cut(image, round(x1), round(y1), max(round(x2), round(x1) + 1), max(round(y2), round(y1) + 1))
    if size is None:
        return crop
    shrinking = crop.shape[0] > size
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _cut(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """image[y1:y2, x1:x2], black where the rectangle leaves the image."""
    height, width = image.shape[:2]
    out = np.zeros((y2 - y1, x2 - x1, *image.shape[2:]), image.dtype)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx1 < sx2 and sy1 < sy2:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out


def _points(landmarks: Any) -> np.ndarray:
    if isinstance(landmarks, dict):
        landmarks = [landmarks[name] for name in KEYPOINT_NAMES]
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"landmarks must be five (x, y) points, got shape {points.shape}")
    return points


def _boxes_and_landmarks(
    detections: Detections | Sequence[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes (N, 4) x1, y1, x2, y2 and landmarks (N, 5, 2) (None when a face has none)."""
    if isinstance(detections, Detections):
        return detections.boxes.astype(np.float64), detections.landmarks.astype(np.float64)
    boxes = np.array(
        [[x, y, x + w, y + h] for x, y, w, h in (face["box"] for face in detections)], np.float64
    )
    if not all("keypoints" in face for face in detections):
        return boxes.reshape(-1, 4), None
    landmarks = np.array([_points(face["keypoints"]) for face in detections], np.float64)
    return boxes.reshape(-1, 4), landmarks.reshape(-1, 5, 2)
