"""Drawing faces on a BGR image: boxes, the five keypoints in distinct colours, labels.

Drawing is a list of annotators, each of which draws one thing on the array it is given and
returns it (as supervision's annotators do): no windows, no printing. A render profile names
the annotators an output wants ("annotated": all; "raw": none); `render` draws a profile on a
copy of the frame, so outputs with different profiles share one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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


class Annotator(Protocol):
    """Draws something about `faces` on `scene` (BGR uint8, in place) and returns it."""

    def annotate(self, scene: np.ndarray, faces: Detections) -> np.ndarray: ...


def _thickness(scene: np.ndarray, style: OverlayStyle) -> int:
    return style.thickness or max(1, round(min(scene.shape[:2]) / 360))


@dataclass(frozen=True)
class BoxAnnotator:
    """A rectangle around each face."""

    style: OverlayStyle = DEFAULT_STYLE

    def annotate(self, scene: np.ndarray, faces: Detections) -> np.ndarray:
        thickness = _thickness(scene, self.style)
        for box in faces.boxes:
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            cv2.rectangle(scene, (x1, y1), (x2, y2), self.style.box_color, thickness, cv2.LINE_AA)
        return scene


@dataclass(frozen=True)
class KeypointAnnotator:
    """The five landmarks as dots, one colour each."""

    style: OverlayStyle = DEFAULT_STYLE

    def annotate(self, scene: np.ndarray, faces: Detections) -> np.ndarray:
        radius = _thickness(scene, self.style) + 1
        for points in faces.landmarks:
            for (px, py), color in zip(points, self.style.keypoint_colors):
                if np.isfinite(px) and np.isfinite(py):
                    cv2.circle(scene, (round(float(px)), round(float(py))), radius, color, -1, cv2.LINE_AA)
        return scene


@dataclass(frozen=True)
class LabelAnnotator:
    """Track id and confidence above each box."""

    style: OverlayStyle = DEFAULT_STYLE

    def annotate(self, scene: np.ndarray, faces: Detections) -> np.ndarray:
        font_scale = 0.45 * _thickness(scene, self.style)
        for i in range(len(faces)):
            label = _label(faces, i, self.style)
            if not label:
                continue
            x1, y1 = round(float(faces.boxes[i, 0])), round(float(faces.boxes[i, 1]))
            (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            top = max(y1 - text_h - baseline - 2, 0)
            corner = (x1 + text_w + 4, top + text_h + baseline + 2)
            cv2.rectangle(scene, (x1, top), corner, self.style.box_color, -1)
            origin = (x1 + 2, top + text_h + 1)
            cv2.putText(
                scene,
                label,
                origin,
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                self.style.text_color,
                1,
                cv2.LINE_AA,
            )
        return scene


ANNOTATED, RAW = "annotated", "raw"
PROFILES: dict[str, tuple[Annotator, ...]] = {
    ANNOTATED: (BoxAnnotator(), KeypointAnnotator(), LabelAnnotator()),
    RAW: (),
}


def annotate(scene: np.ndarray, faces: Detections, annotators: Sequence[Annotator]) -> np.ndarray:
    """Apply `annotators` in order to `scene` (in place) and return it."""
    for annotator in annotators:
        scene = annotator.annotate(scene, faces)
    return scene


def render(image: np.ndarray, faces: Detections, profile: str) -> np.ndarray:
    """A copy of `image` drawn as the render `profile` asks ("annotated" or "raw")."""
    if profile not in PROFILES:
        raise ValueError(f"render profile must be one of {tuple(PROFILES)}, got {profile!r}")
    return annotate(image.copy(), faces, PROFILES[profile])


def draw(image: np.ndarray, detections: Detections, style: OverlayStyle = DEFAULT_STYLE) -> np.ndarray:
    """Draw every face of `detections` onto `image` (BGR uint8, modified in place) and return it."""
    annotators = (BoxAnnotator(style), KeypointAnnotator(style), LabelAnnotator(style))
    return annotate(image, detections, annotators)


def _label(detections: Detections, i: int, style: OverlayStyle) -> str:
    parts = []
    if style.show_track_ids and detections.track_ids[i] >= 0:
        parts.append(f"#{int(detections.track_ids[i])}")
    if style.show_confidence:
        parts.append(f"{float(detections.scores[i]):.2f}")
    return " ".join(parts)
