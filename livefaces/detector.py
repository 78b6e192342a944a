"""MTCNN face detection (Zhang et al., 2016) in TensorFlow: P-Net, R-Net, O-Net and five landmarks.

`MTCNN.detect` is pure computation on one RGB image; threads and I/O live elsewhere. The three
stages are written as the paper's steps. TensorFlow runs the networks (and the image pyramid's
resizing) in graphs traced once per pyramid depth, with dynamic image sizes, so alternating
frame sizes never retrace; NumPy does the box bookkeeping in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from livefaces import boxes as bx
from livefaces import networks
from livefaces.detections import Detections

PNET_CELL = 12
PNET_STRIDE = 2
DEVICES = ("auto", "cpu", "gpu")


def pyramid_scales(height: int, width: int, min_face_size: int, scale_factor: float) -> list[float]:
    """Scales of the image pyramid: the first maps `min_face_size` to P-Net's 12 px window,
    each next one shrinks by `scale_factor`, down to the level whose shorter side is 12 px."""
    scale = PNET_CELL / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= scale_factor
        side *= scale_factor
    return scales


def resolve_device(device: str) -> str:
    """Map "auto" | "cpu" | "gpu" to a TensorFlow device name; GPUs get memory growth."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ValueError("device='gpu' was asked for, but TensorFlow sees no GPU")
    if device == "cpu" or not gpus:
        return "/CPU:0"
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: the setting stays as it was
            tf.config.experimental.set_memory_growth(gpu, True)
    return "/GPU:0"


def as_rgb(image: Any) -> np.ndarray:
    """Validate an input image and view it as uint8 HxWx3 RGB (grey is repeated, alpha dropped).

    Never modifies the caller's array.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8 (RGB 0-255), got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxWx3 RGB, HxWx4 RGBA, HxWx1 or HxW grey; got shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


class MTCNN:
    """The MTCNN face detector.

    min_face_size: smallest face to find, in pixels (>= 12).
    scale_factor: shrink between pyramid levels, in (0, 1); larger is slower and finer.
    thresholds: face probability each of P-Net, R-Net, O-Net must exceed, each in [0, 1].
    nms_thresholds: overlap above which a weaker box is dropped: P-Net within a scale,
        P-Net across scales, R-Net, O-Net (the last by intersection over the smaller box).
    device: "auto" (GPU when TensorFlow sees one, else CPU), "cpu" or "gpu".
    weights: a folder with pnet.npz, rnet.npz and onet.npz to use instead of the shipped ones.

    Images are RGB. OpenCV gives BGR: convert with `frame[:, :, ::-1]` first.
    """

    def __init__(
        self,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        nms_thresholds: Sequence[float] = (0.5, 0.7, 0.7, 0.7),
        device: str = "auto",
        weights: str | Path | None = None,
    ) -> None:
        if isinstance(min_face_size, bool) or not isinstance(min_face_size, (int, np.integer)):
            raise ValueError(f"min_face_size must be an integer >= 12, got {min_face_size!r}")
        if min_face_size < PNET_CELL:
            raise ValueError(f"min_face_size must be an integer >= 12, got {min_face_size!r}")
        _check_range("scale_factor", scale_factor, 0.0, 0.99, low_open=True)
        thresholds = tuple(float(t) for t in thresholds)
        nms_thresholds = tuple(float(t) for t in nms_thresholds)
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must hold 3 values (P-Net, R-Net, O-Net), got {thresholds}")
        if len(nms_thresholds) != 4:
            raise ValueError(f"nms_thresholds must hold 4 values, got {nms_thresholds}")
        for i, t in enumerate(thresholds):
            _check_range(f"thresholds[{i}]", t, 0.0, 1.0)
        for i, t in enumerate(nms_thresholds):
            _check_range(f"nms_thresholds[{i}]", t, 0.0, 1.0)
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.thresholds = thresholds
        self.nms_thresholds = nms_thresholds
        self.device = resolve_device(device)
        self._weights = networks.load_weights(weights)
        self._pyramids: dict[int, Any] = {}
        self._rnet = self._crop_graph(24, networks.rnet, self._weights.rnet)
        self._onet = self._crop_graph(48, networks.onet, self._weights.onet)

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in one RGB image (uint8 HxWx3, or grey, or RGBA)."""
        return self._detect_same_size(as_rgb(image)[None])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in many images at once; images of equal size share each network call."""
        rgb = [as_rgb(image) for image in images]
        results: list[Detections | None] = [None] * len(rgb)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(rgb):
            by_shape.setdefault(image.shape, []).append(i)
        for members in by_shape.values():
            stacked = np.stack([rgb[i] for i in members])
            for i, found in zip(members, self._detect_same_size(stacked)):
                results[i] = found
        return [r if r is not None else Detections.empty() for r in results]

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections:
        """Faces measured around known boxes by O-Net alone: no pyramid, no P-Net, no R-Net.

        `boxes` (N, 4) x1, y1, x2, y2 are where faces are expected, e.g. a tracker's predictions;
        each is squared and given to O-Net, which confirms or rejects it and regresses the box and
        landmarks. A handful of 48x48 crops costs a fraction of a full `detect`, so a tracker
        can measure every frame and run the full cascade only now and then to find new faces.
        """
        rgb = as_rgb(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0 or min(rgb.shape[:2]) < PNET_CELL:
            return Detections.empty()
        with tf.device(self.device):
            owners = np.zeros(len(boxes), np.int64)
            return self._output(tf.constant(rgb[None]), bx.to_square(boxes), owners, 1)[0]

    def detect_faces(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Faces in the `mtcnn` package's format: box [x, y, w, h], confidence, keypoints."""
        rgb = as_rgb(image)
        return self.detect(rgb).to_dicts(rgb.shape[0], rgb.shape[1])

    def _detect_same_size(self, images: np.ndarray) -> list[Detections]:
        count, height, width = images.shape[:3]
        scales = pyramid_scales(height, width, self.min_face_size, self.scale_factor)
        if not scales:
            return [Detections.empty() for _ in range(count)]
        with tf.device(self.device):
            tensor = tf.constant(images)
            candidates, owners = self._propose(tensor, scales)
            if len(candidates):
                candidates, owners = self._refine(tensor, candidates, owners)
            if len(candidates):
                return self._output(tensor, candidates, owners, count)
        return [Detections.empty() for _ in range(count)]

    def _propose(self, images: tf.Tensor, scales: list[float]) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1, P-Net: candidate windows over the pyramid; (boxes, image index)."""
        height, width = images.shape[1:3]
        sizes = np.array([[np.ceil(height * s), np.ceil(width * s)] for s in scales], np.int32)
        outputs = self._pyramid(len(scales))(images, sizes)
        found: list[tuple[np.ndarray, ...]] = []
        for scale, (offsets, probability) in zip(scales, outputs):
            probability = probability.numpy()
            # 1. Keep the windows whose face probability passes the first threshold.
            owner, y, x = np.nonzero(probability > self.thresholds[0])
            if owner.size == 0:
                continue
            # 2. Map each 12x12 window back to the original image.
            corner = np.stack([x, y], axis=1) * PNET_STRIDE
            windows = np.concatenate([corner, corner + PNET_CELL], axis=1) / scale
            scores = probability[owner, y, x]
            # 3. Suppress overlapping windows within this scale.
            keep = bx.grouped_nms(windows, scores, owner, self.nms_thresholds[0])
            regression = offsets.numpy()[owner[keep], y[keep], x[keep]]
            found.append((windows[keep], scores[keep], owner[keep], regression))
        if not found:
            return np.zeros((0, 4)), np.zeros(0, np.int64)
        windows, scores, owners, regression = (np.concatenate(column) for column in zip(*found))
        # 4. Suppress across scales, apply P-Net's regression and square the boxes for R-Net.
        keep = bx.grouped_nms(windows, scores, owners, self.nms_thresholds[1])
        return bx.to_square(bx.apply_offsets(windows[keep], regression[keep])), owners[keep]

    def _refine(
        self, images: tf.Tensor, boxes: np.ndarray, owners: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2, R-Net: rescore and regress each candidate on a 24x24 crop."""
        offsets, scores = self._run_crops(self._rnet, images, boxes, owners, 24)
        # 1. Keep the candidates R-Net believes in.
        passed = scores > self.thresholds[1]
        boxes, owners, offsets, scores = boxes[passed], owners[passed], offsets[passed], scores[passed]
        # 2. Suppress overlaps, apply R-Net's regression and square again for O-Net.
        keep = bx.grouped_nms(boxes, scores, owners, self.nms_thresholds[2])
        return bx.to_square(bx.apply_offsets(boxes[keep], offsets[keep])), owners[keep]

    def _output(
        self, images: tf.Tensor, boxes: np.ndarray, owners: np.ndarray, count: int
    ) -> list[Detections]:
        """Stage 3, O-Net: final score, box and five landmarks on a 48x48 crop."""
        offsets, points, scores = self._run_crops(self._onet, images, boxes, owners, 48)
        # 1. Keep the faces O-Net confirms.
        passed = scores > self.thresholds[2]
        boxes, owners, offsets, points, scores = (
            boxes[passed],
            owners[passed],
            offsets[passed],
            points[passed],
            scores[passed],
        )
        # 2. Landmarks are fractions of the crop; place them in the image.
        sizes = (boxes[:, 2:4] - boxes[:, 0:2])[:, None, :]
        landmarks = boxes[:, None, 0:2] + np.stack([points[:, 0:5], points[:, 5:10]], axis=2) * sizes
        # 3. Regress the boxes and drop boxes lying mostly inside a better one.
        boxes = bx.apply_offsets(boxes, offsets)
        keep = bx.grouped_nms(boxes, scores, owners, self.nms_thresholds[3], mode="min")
        return [
            Detections(
                boxes[keep][owners[keep] == i].astype(np.float32),
                scores[keep][owners[keep] == i].astype(np.float32),
                landmarks[keep][owners[keep] == i].astype(np.float32),
            )
            for i in range(count)
        ]

    def _run_crops(
        self, graph: Any, images: tf.Tensor, boxes: np.ndarray, owners: np.ndarray, size: int
    ) -> list[np.ndarray]:
        height, width = images.shape[1:3]
        crops = bx.crop_coordinates(boxes, height, width, size)
        outputs = graph(images, crops, owners.astype(np.int32))
        return [o.numpy().astype(np.float64) for o in outputs]

    def _pyramid(self, depth: int) -> Any:
        """The P-Net graph for a pyramid of `depth` levels, traced on first use."""
        if depth not in self._pyramids:
            weights = self._weights.pnet

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None, None, None, 3], tf.uint8),
                    tf.TensorSpec([depth, 2], tf.int32),
                ]
            )
            def pyramid(images: tf.Tensor, sizes: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
                pixels = tf.cast(images, tf.float32)
                levels = []
                for k in range(depth):
                    level = tf.image.resize(pixels, sizes[k], method="bilinear")
                    levels.append(networks.pnet(level, weights))
                return levels

            self._pyramids[depth] = pyramid
        return self._pyramids[depth]

    @staticmethod
    def _crop_graph(size: int, network: Any, weights: networks.Weights) -> Any:
        """A graph that samples size x size crops from the images and runs `network` on them."""

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8),
                tf.TensorSpec([None, 4], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def run(images: tf.Tensor, crops: tf.Tensor, owners: tf.Tensor) -> Any:
            patches = tf.image.crop_and_resize(images, crops, owners, (size, size))
            return network(patches, weights)

        return run
