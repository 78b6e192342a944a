"""Drawing faces on a BGR image: boxes, the five keypoints in distinct colours, confidences.

Only draws, on the array it is given, and returns it: no windows, no printing. Callers that
must keep the original frame draw on a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livefaces.detections import Detections

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class OverlayStyle:
    """Colours are BGR. Sizes of None scale with the image (thicker lines on larger frames)."""

    box_color: BGR = (80, 220, 60)
    keypoint_colors: tuple[BGR, BGR, BGR, BGR, BGR] = (
        (255, 160, 0),  # left eye: blue
        (0, 200, 255),  # right eye: amber
        (60, 60, 255),  # nose: red
        (255, 0, 200),  # mouth left: magenta
        (200, 255, 0),  # mouth right: cyan
    )
    text_color: BGR = (20, 20, 20)
    thickness: int | None = None
    show_confidence: bool = True
    show_track_ids: bool = True


DEFAULT_STYLE = OverlayStyle()


def draw(image: np.ndarray, detections: Detections, style: OverlayStyle = DEFAULT_STYLE) -> np.ndarray:
    """Draw every face of `detections` onto `image` (BGR uint8, modified in place) and return it."""
    thickness = style.thickness or max(1, round(min(image.shape[:2]) / 360))
    font_scale = 0.45 * thickness
    for i in range(len(detections)):
        x1, y1, x2, y2 = (round(float(v)) for v in detections.boxes[i])
        cv2.rectangle(image, (x1, y1), (x2, y2), style.box_color, thickness, cv2.LINE_AA)
        for (px, py), color in zip(detections.landmarks[i], style.keypoint_colors):
            cv2.circle(image, (round(float(px)), round(float(py))), thickness + 1, color, -1, cv2.LINE_AA)
        label = _label(detections, i, style)
        if label:
            (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            top = max(y1 - text_h - baseline - 2, 0)
            cv2.rectangle(
                image, (x1, top), (x1 + text_w + 4, top + text_h + baseline + 2), style.box_color, -1
            )
            origin = (x1 + 2, top + text_h + 1)
            cv2.putText(
                image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, style.text_color, 1, cv2.LINE_AA
            )
    return image


def _label(detections: Detections, i: int, style: OverlayStyle) -> str:
    parts = []
    if style.show_track_ids and detections.track_ids[i] >= 0:
        parts.append(f"#{int(detections.track_ids[i])}")
    if style.show_confidence:
        parts.append(f"{float(detections.scores[i]):.2f}")
    return " ".join(parts)
