"""`MTCNN.detect_faces` output in the `mtcnn` package's (1.0) formats, from livefaces' `Detections`.

Two output types, as in `mtcnn` 1.0:

- "json": per image, a list of `{"box": [x, y, w, h], "confidence": c, "keypoints": {"left_eye":
  [x, y], ...}}` with plain Python ints and floats (no NumPy scalars), best face first. `"keypoints"`
  is absent when the detector stops before O-Net (`stages="face_detection_only"`).
- "numpy": one float64 array for all images, one row per face, in `mtcnn`'s column order
  `[image_index, x1, y1, x2|w, y2|h, confidence, x of the 5 landmarks, y of the 5 landmarks]`
  (16 columns; 6 without landmarks), rows grouped by image, best face first; not rounded.

Landmarks are in `KEYPOINT_NAMES` order: left_eye, right_eye, nose, mouth_left, mouth_right.
With `postprocess` (the default) and `fit_to_image` (the default), boxes are clipped to the image
[0, width] x [0, height]; with `limit_landmarks`, landmarks to the pixel grid [0, width - 1] x
[0, height - 1]. Without `postprocess` nothing is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from livefaces.boxes import clip_boxes
from livefaces.detections import KEYPOINT_NAMES, Detections

BOX_FORMATS = ("xywh", "xyxy")
OUTPUT_TYPES = ("json", "numpy")
SIDES = ("top", "bottom", "left", "right", "topleft", "topright", "bottomleft", "bottomright")
JUSTIFICATIONS = ("center", *SIDES)


@dataclass(frozen=True)
class OutputFormat:
    """How `detect_faces` presents its faces; every field is checked when it is made."""

    box_format: str = "xywh"
    output_type: str = "json"
    fit_to_image: bool = True
    limit_landmarks: bool = False
    postprocess: bool = True
    landmarks: bool = True

    def __post_init__(self) -> None:
        if self.box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {self.box_format!r}")
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {self.output_type!r}")
        for name in ("fit_to_image", "limit_landmarks", "postprocess", "landmarks"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                shown = "limit_boundaries_landmarks" if name == "limit_landmarks" else name
                raise ValueError(f"{shown} must be True or False, got {value!r}")


def check_justification(value: str) -> None:
    """`batch_stack_justification` is accepted for `mtcnn` compatibility; livefaces never pads a
    batch (each image keeps its own size), so it has no effect, but a bad value is still an error."""
    if value not in JUSTIFICATIONS:
        raise ValueError(f"batch_stack_justification must be one of {JUSTIFICATIONS}, got {value!r}")


def fitted(found: Detections, height: int, width: int, output: OutputFormat) -> Detections:
    """The faces with boxes (and optionally landmarks) clipped to the image, as `output` asks."""
    if not output.postprocess or len(found) == 0:
        return found
    boxes = clip_boxes(found.boxes, height, width) if output.fit_to_image else found.boxes
    landmarks = found.landmarks
    if output.limit_landmarks:
        limits = np.array([max(width - 1, 0), max(height - 1, 0)], dtype=landmarks.dtype)
        landmarks = np.clip(landmarks, 0, limits)
    return Detections(boxes, found.scores, landmarks, found.track_ids)


def to_json(found: Detections, output: OutputFormat) -> list[dict[str, Any]]:
    """One image's faces as `mtcnn` dicts, with plain Python numbers."""
    boxes = np.round(found.boxes.astype(np.float64)).astype(int)
    if output.box_format == "xywh":
        boxes[:, 2:4] -= boxes[:, 0:2]
    points = np.round(found.landmarks.astype(np.float64)).astype(int) if output.landmarks else None
    faces = []
    for i in range(len(found)):
        face: dict[str, Any] = {"box": [int(v) for v in boxes[i]], "confidence": float(found.scores[i])}
        if points is not None:
            face["keypoints"] = {
                name: [int(points[i, k, 0]), int(points[i, k, 1])] for k, name in enumerate(KEYPOINT_NAMES)
            }
        faces.append(face)
    return faces


def to_rows(found: Detections, image_index: int, output: OutputFormat) -> np.ndarray:
    """One image's faces as rows of `mtcnn`'s numpy output (see the module docstring)."""
    boxes = found.boxes.astype(np.float64)
    if output.box_format == "xywh":
        boxes = np.concatenate([boxes[:, 0:2], boxes[:, 2:4] - boxes[:, 0:2]], axis=1)
    columns = [np.full((len(found), 1), float(image_index)), boxes, found.scores.astype(np.float64)[:, None]]
    if output.landmarks:
        points = found.landmarks.astype(np.float64)
        columns += [points[:, :, 0], points[:, :, 1]]
    return np.concatenate(columns, axis=1)


def format_faces(
    results: list[Detections], shapes: list[tuple[int, int]], output: OutputFormat, batch: bool
) -> list[dict[str, Any]] | list[list[dict[str, Any]]] | np.ndarray:
    """All images' faces in `output`'s form: a list per image (or one list when not `batch`), or
    one array. `shapes` are the images' (height, width), for clipping."""
    fitted_results = [fitted(found, h, w, output) for found, (h, w) in zip(results, shapes)]
    if output.output_type == "numpy":
        width = 16 if output.landmarks else 6
        rows = [to_rows(found, i, output) for i, found in enumerate(fitted_results)]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, width))
    faces = [to_json(found, output) for found in fitted_results]
    return faces if batch else faces[0]
