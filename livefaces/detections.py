"""The detector's result: fixed-shape arrays, plus the `mtcnn` package's list-of-dicts view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from livefaces.boxes import clip_boxes

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in that image's pixel coordinates, best score first.

    boxes: (N, 4) float32 x1, y1, x2, y2 (not clipped: a face may reach past the border);
    scores: (N,) float32 in [0, 1]; landmarks: (N, 5, 2) float32 x, y in `KEYPOINT_NAMES` order;
    track_ids: (N,) int64, -1 where a face belongs to no track.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.boxes.shape[0] if self.boxes.ndim == 2 else -1
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape (N, 4), got {self.boxes.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must have shape ({n}, 5, 2), got {self.landmarks.shape}")
        if self.track_ids is None:
            object.__setattr__(self, "track_ids", np.full(n, -1, dtype=np.int64))
        elif self.track_ids.shape != (n,):
            raise ValueError(f"track_ids must have shape ({n},), got {self.track_ids.shape}")

    @classmethod
    def empty(cls) -> Detections:
        """No faces."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, mask_or_indices: np.ndarray) -> Detections:
        """The faces picked by a boolean mask or an index array."""
        return Detections(
            self.boxes[mask_or_indices],
            self.scores[mask_or_indices],
            self.landmarks[mask_or_indices],
            self.track_ids[mask_or_indices],
        )

    def confident(self, min_score: float) -> Detections:
        """The faces scoring at least `min_score` (all of them when it is 0)."""
        return self.select(self.scores >= min_score) if min_score > 0 else self

    def scaled(self, factor_x: float, factor_y: float) -> Detections:
        """The same faces with every coordinate multiplied (to map a downscaled frame back)."""
        box_factor = np.array([factor_x, factor_y, factor_x, factor_y], np.float32)
        point_factor = np.array([factor_x, factor_y], np.float32)
        return Detections(self.boxes * box_factor, self.scores, self.landmarks * point_factor, self.track_ids)

    def to_dicts(self, height: int, width: int) -> list[dict[str, Any]]:
        """The `mtcnn` package's format, boxes clipped to the image, plain Python numbers.

        `{"box": [x, y, w, h], "confidence": c, "keypoints": {"left_eye": (x, y), ...}}`;
        with a `"track_id"` key only for faces that belong to a track.
        """
        clipped = np.round(clip_boxes(self.boxes.astype(np.float64), height, width)).astype(int)
        points = np.round(self.landmarks.astype(np.float64)).astype(int)
        faces = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (int(v) for v in clipped[i])
            face: dict[str, Any] = {
                "box": [x1, y1, x2 - x1, y2 - y1],
                "confidence": float(self.scores[i]),
                "keypoints": {
                    name: (int(points[i, k, 0]), int(points[i, k, 1]))
                    for k, name in enumerate(KEYPOINT_NAMES)
                },
            }
            if self.track_ids[i] >= 0:
                face["track_id"] = int(self.track_ids[i])
            faces.append(face)
        return faces
