"""The built-in `demo` source: faces cut from the bundled public-domain image, moving on a canvas.

Needs no camera and no data files. One face crosses the frame and leaves it, one grows and
shrinks in place, one small face bounces around. Positions are a pure function of the frame
index, so the true face boxes are known (`DemoScene.truth`) for tests of detection and tracking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import cv2
import numpy as np

# Where the face sits inside the bundled astronaut portrait (x1, y1, x2, y2), with margin around.
PORTRAIT_CROP = (150, 30, 310, 210)
PORTRAIT_FACE = (179, 57, 269, 174)


def load_portrait() -> np.ndarray:
    """The bundled NASA astronaut portrait (public domain, via scikit-image), BGR."""
    path = resources.files("livefaces") / "assets" / "astronaut.jpg"
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"the bundled image {path} cannot be decoded")
    return image


@dataclass(frozen=True)
class DemoScene:
    """A synthetic clip of `width` x `height` at `fps` frames per second."""

    width: int = 640
    height: int = 480
    fps: float = 30.0

    @cached_property
    def _patch(self) -> tuple[np.ndarray, np.ndarray]:
        x1, y1, x2, y2 = PORTRAIT_CROP
        patch = load_portrait()[y1:y2, x1:x2]
        mask = np.zeros(patch.shape[:2], np.float32)
        centre = (patch.shape[1] // 2, patch.shape[0] // 2)
        cv2.ellipse(mask, centre, (patch.shape[1] // 2 - 4, patch.shape[0] // 2 - 4), 0, 0, 360, 1.0, -1)
        return patch, cv2.GaussianBlur(mask, (0, 0), 5)[:, :, None]

    @cached_property
    def _background(self) -> np.ndarray:
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        blue = 90 + 60 * np.sin(xs / 97.0)
        green = 110 + 50 * np.cos(ys / 71.0)
        red = 70 + 40 * np.sin((xs + ys) / 133.0)
        return np.dstack([blue, green, red]).clip(0, 255).astype(np.uint8)

    def _placements(self, index: int) -> list[tuple[float, float, float]]:
        """Centre x, centre y and height of each face's patch at this frame."""
        t = index / self.fps
        w, h = self.width, self.height
        short = min(w, h)
        crossing_x = -0.3 * w + ((t / 8.0) % 1.0) * 1.6 * w
        return [
            (crossing_x, 0.32 * h, 0.40 * short),
            (0.72 * w, 0.62 * h, short * (0.42 + 0.16 * math.sin(2 * math.pi * t / 6.0))),
            (
                0.2 * w + 0.15 * w * math.sin(2 * math.pi * t / 5.0),
                0.72 * h + 0.1 * h * math.cos(2 * math.pi * t / 4.0),
                0.26 * short,
            ),
        ]

    def truth(self, index: int) -> np.ndarray:
        """True face boxes (N, 4) x1, y1, x2, y2 at this frame, for faces at least half in view."""
        return self.truth_by_face(index)[1]

    def truth_by_face(self, index: int, min_inside: float = 0.5) -> tuple[list[int], np.ndarray]:
        """Which faces (0, 1, 2: crossing, zooming, circling) have at least `min_inside` of their
        width in view, and their boxes."""
        px1, py1, px2, py2 = PORTRAIT_CROP
        fx1, fy1, fx2, fy2 = PORTRAIT_FACE
        faces, boxes = [], []
        for face, (cx, cy, patch_h) in enumerate(self._placements(index)):
            scale = patch_h / (py2 - py1)
            left, top = cx - (px2 - px1) * scale / 2, cy - patch_h / 2
            box = [left + (fx1 - px1) * scale, top + (fy1 - py1) * scale]
            box += [left + (fx2 - px1) * scale, top + (fy2 - py1) * scale]
            inside = (min(box[2], self.width) - max(box[0], 0)) / (box[2] - box[0])
            if inside >= min_inside:
                faces.append(face)
                boxes.append(box)
        return faces, np.array(boxes, np.float32).reshape(-1, 4)

    def render(self, index: int) -> np.ndarray:
        """The BGR frame at this index."""
        canvas = self._background.copy()
        patch, mask = self._patch
        for cx, cy, patch_h in self._placements(index):
            scale = patch_h / patch.shape[0]
            size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
            scaled = cv2.resize(patch, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            alpha = cv2.resize(mask, size)[:, :, None] if size[0] > 1 else mask[:1, :1]
            left, top = round(cx - size[0] / 2), round(cy - size[1] / 2)
            x1, y1 = max(left, 0), max(top, 0)
            x2, y2 = min(left + size[0], self.width), min(top + size[1], self.height)
            if x2 <= x1 or y2 <= y1:
                continue
            src = np.s_[y1 - top : y2 - top, x1 - left : x2 - left]
            a = alpha[src]
            blended = canvas[y1:y2, x1:x2] * (1 - a) + scaled[src] * a
            canvas[y1:y2, x1:x2] = blended.astype(np.uint8)
        return canvas
