"""MTCNN face detection (Zhang et al., 2016) in TensorFlow: P-Net, R-Net, O-Net and five landmarks.

`MTCNN.detect` is pure computation on one RGB image; threads and I/O live elsewhere. The three
stages are written as the paper's steps. TensorFlow runs the networks (and the image pyramid's
resizing) in graphs traced once per pyramid depth, with dynamic image sizes, so alternating
frame sizes never retrace; NumPy does the box bookkeeping in between. The graphs have no
tensor-dependent control flow, so they are traced without AutoGraph (which would write a
generated source file to the temporary folder for every trace).

`MTCNN.detect_faces` is the `mtcnn` package's API (1.0, and 0.1's constructor) over the same
cascade: `livefaces.images` turns paths, bytes and arrays into RGB, `livefaces.compat` formats
the result. Its per-call settings only pick among the same graphs: thresholds never reach a
graph, and `min_face_size` / `scale_factor` only change the pyramid's depth, one graph per depth.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livefaces import boxes as bx
from livefaces import compat, networks
from livefaces.cascade import PNET_CELL, Settings
from livefaces.detections import Detections
from livefaces.images import ImageInput, as_rgb, load_rgb
from livefaces.quiet_tensorflow import tf

__all__ = ["DEVICES", "MTCNN", "STAGES", "Settings", "as_rgb", "pyramid_scales", "resolve_device"]

PNET_STRIDE = 2
KNOWN_OVERLAP = 0.5  # a candidate overlapping a known face this much is that face
NEW_CANDIDATES = 16  # with known faces: P-Net's best new candidates per image that R-Net sees
DEVICES = ("auto", "cpu", "gpu")
STAGES = ("face_and_landmarks_detection", "face_detection_only")
_TF_DEVICE = re.compile(r"/?(?:device:)?(cpu|gpu):(\d+)", re.IGNORECASE)


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
    """Map "auto" | "cpu" | "gpu", or a TensorFlow device name as the `mtcnn` package spells it
    ("CPU:0", "GPU:1", also "/GPU:0", "/device:GPU:0"), to a TensorFlow device name.

    GPUs get memory growth. A GPU that TensorFlow does not see is an error, not a silent CPU run.
    """
    named = _TF_DEVICE.fullmatch(device) if isinstance(device, str) else None
    if named is None and (not isinstance(device, str) or device not in DEVICES):
        raise ValueError(
            f"device must be one of {DEVICES} or a TensorFlow device name such as 'CPU:0' or 'GPU:0', "
            f"got {device!r}"
        )
    kind, index = (named.group(1).lower(), int(named.group(2))) if named else (device, 0)
    if kind == "cpu" and index != 0:
        raise ValueError(f"device must name CPU:0 (TensorFlow's one CPU device), got {device!r}")
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "gpu" and index >= len(gpus):
        seen = f"GPU:0 to GPU:{len(gpus) - 1}" if gpus else "no GPU"
        raise ValueError(f"device={device!r} was asked for, but TensorFlow sees {seen}")
    if kind == "cpu" or not gpus:
        return "/CPU:0"
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: the setting stays as it was
            tf.config.experimental.set_memory_growth(gpu, True)
    return f"/GPU:{index}"


class MTCNN:
    """The MTCNN face detector.

    min_face_size: smallest face to find, in pixels (>= 12).
    scale_factor: shrink between pyramid levels, in (0, 1); larger is slower and finer.
    thresholds: face probability each of P-Net, R-Net, O-Net must exceed, each in [0, 1];
        default (0.6, 0.7, 0.7), the paper's. `steps_threshold` is the `mtcnn` 0.1 name for it.
    nms_thresholds: overlap above which a weaker box is dropped: P-Net within a scale,
        P-Net across scales, R-Net, O-Net (the last by intersection over the smaller box).
    device: "auto" (GPU when TensorFlow sees one, else CPU), "cpu", "gpu", or a TensorFlow device
        name as the `mtcnn` package takes it: "CPU:0", "GPU:0", "GPU:1".
    weights: a folder with pnet.npz, rnet.npz and onet.npz to use instead of the shipped ones.
    stages: as in `mtcnn` 1.0: "face_and_landmarks_detection" (all three networks, the default)
        or "face_detection_only" (P-Net and R-Net: faster, coarser square boxes, no landmarks;
        `detect` then returns NaN landmarks and `detect_faces` no "keypoints").

    Arrays are RGB. OpenCV gives BGR: convert with `frame[:, :, ::-1]` first (`detect_faces` also
    takes file paths and encoded bytes, and decodes them to RGB itself).
    """

    def __init__(
        self,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: Sequence[float] | None = None,
        nms_thresholds: Sequence[float] = (0.5, 0.7, 0.7, 0.7),
        device: str = "auto",
        weights: str | Path | None = None,
        *,
        stages: str = "face_and_landmarks_detection",
        steps_threshold: Sequence[float] | None = None,
    ) -> None:
        if thresholds is not None and steps_threshold is not None:
            raise ValueError(
                "pass thresholds or steps_threshold (the mtcnn 0.1 name for the same thing), not both; "
                f"got thresholds={thresholds!r} and steps_threshold={steps_threshold!r}"
            )
        if not isinstance(stages, str) or stages not in STAGES:
            raise ValueError(f"stages must be one of {STAGES}, got {stages!r}")
        chosen = thresholds if thresholds is not None else steps_threshold
        self.settings = Settings(
            min_face_size=min_face_size,
            scale_factor=scale_factor,
            thresholds=Settings.thresholds if chosen is None else chosen,
            nms_thresholds=nms_thresholds,
            landmarks=stages == STAGES[0],
        )
        self.stages = stages
        self.device = resolve_device(device)
        self._weights = networks.load_weights(weights)
        self._pyramids: dict[int, Any] = {}
        self._rnet = self._crop_graph(24, networks.rnet, self._weights.rnet)
        self._onet = self._crop_graph(48, networks.onet, self._weights.onet)
        self._onet_patches = self._patch_graph(networks.onet, self._weights.onet)

    @property
    def min_face_size(self) -> int:
        return self.settings.min_face_size

    @property
    def scale_factor(self) -> float:
        return self.settings.scale_factor

    @property
    def thresholds(self) -> tuple[float, ...]:
        return self.settings.thresholds

    @property
    def nms_thresholds(self) -> tuple[float, ...]:
        return self.settings.nms_thresholds

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in one RGB image array (uint8 HxWx3, grey, RGBA, or float; see `livefaces.images`)."""
        return self._detect_same_size(as_rgb(image)[None], self.settings)[0]

    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        settings: Settings | None = None,
        *,
        min_face_size: int | None = None,
        known: Sequence[np.ndarray | None] | None = None,
    ) -> list[Detections]:
        """Faces in many images at once; images of equal size share each network call.

        settings: these images' cascade settings instead of the detector's (a camera's own).
        min_face_size: look only for faces at least this large (never smaller than the settings'):
            the coarse pyramid levels alone, a fraction of a full scan's cost.
        known: per image, boxes (N, 4) where faces are expected (a tracker's predictions) that
            O-Net measures along with the new candidates, as `refine` would. Candidates that
            overlap a known box (IoU >= 0.5) are dropped before R-Net and O-Net: that face is
            measured from its known box. Of the others, R-Net sees P-Net's best 16 per image. So
            a scan between a tracker's full scans costs little more than P-Net, however busy
            the scene. The O-Net stage then runs even without landmarks.
        """
        settings = settings or self.settings
        if min_face_size is not None and min_face_size > settings.min_face_size:
            settings = settings.for_call(min_face_size=int(min_face_size))
        rgb = [as_rgb(image) for image in images]
        if known is not None and len(known) != len(rgb):
            raise ValueError(f"detect_batch needs one known array per image, got {len(rgb)} images "
                             f"and {len(known)} known arrays")  # fmt: skip
        boxes = None if known is None else [_boxes(b) for b in known]
        return self._detect_many(rgb, settings, boxes)

    def refine_batch(
        self, images: Sequence[np.ndarray], boxes_list: Sequence[np.ndarray], settings: Settings | None = None
    ) -> list[Detections]:
        """`refine` for many (image, boxes) pairs at once: result i equals `refine(images[i],
        boxes_list[i])`, and images of equal size share one O-Net call (cameras of one resolution).
        """
        if len(images) != len(boxes_list):
            raise ValueError(f"refine_batch needs one boxes array per image, got {len(images)} images "
                             f"and {len(boxes_list)} box arrays")  # fmt: skip
        settings = settings or self.settings
        rgbs = [as_rgb(image) for image in images]
        boxes = [np.asarray(b, np.float64).reshape(-1, 4) for b in boxes_list]
        results = [Detections.empty() for _ in rgbs]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            if len(boxes[i]) and min(rgb.shape[:2]) >= PNET_CELL:
                by_shape.setdefault(rgb.shape, []).append(i)
        for members in by_shape.values():
            stacked = np.stack([rgbs[i] for i in members])
            squares = np.concatenate([bx.to_square(boxes[i]) for i in members])
            owners = np.concatenate([np.full(len(boxes[i]), k, np.int64) for k, i in enumerate(members)])
            with tf.device(self.device):
                found = self._output(tf.constant(stacked), squares, owners, len(members), settings)
            for i, detections in zip(members, found):
                results[i] = detections
        return results

    def refine_patches(
        self, patches: Sequence[np.ndarray], squares: Sequence[np.ndarray], settings: Settings | None = None
    ) -> list[Detections]:
        """`refine` on patches the caller cut: patches[i] (N_i, 48, 48, 3) uint8 RGB, sampled with
        `boxes.cut_patches` from squares[i] (N_i, 4) square boxes in that image's pixels. One O-Net
        call for every patch of every image, whatever the images' sizes: cameras send a few
        small patches instead of their frames."""
        if len(patches) != len(squares):
            raise ValueError(f"refine_patches needs one squares array per patches array, got "
                             f"{len(patches)} and {len(squares)}")  # fmt: skip
        squares = [np.asarray(s, np.float64).reshape(-1, 4) for s in squares]
        counts = [len(s) for s in squares]
        if sum(counts) == 0:
            return [Detections.empty() for _ in counts]
        stacked = np.concatenate([np.asarray(p, np.uint8).reshape(-1, 48, 48, 3) for p in patches])
        owners = np.repeat(np.arange(len(counts)), counts)
        with tf.device(self.device):
            outputs = [o.numpy().astype(np.float64) for o in self._onet_patches(tf.constant(stacked))]
        return self._finish(np.concatenate(squares), owners, outputs, len(counts), settings or self.settings)

    def refine(self, image: np.ndarray, boxes: np.ndarray, settings: Settings | None = None) -> Detections:
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
            found = self._output(
                tf.constant(rgb[None]), bx.to_square(boxes), owners, 1, settings or self.settings
            )
            return found[0]

    def detect_faces(
        self,
        image: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
        fit_to_image: bool = True,
        limit_boundaries_landmarks: bool = False,
        box_format: str = "xywh",
        output_type: str = "json",
        postprocess: bool = True,
        batch_stack_justification: str = "center",
        *,
        min_face_size: int | None = None,
        scale_factor: float | None = None,
        threshold_pnet: float | None = None,
        threshold_rnet: float | None = None,
        threshold_onet: float | None = None,
        nms_pnet1: float | None = None,
        nms_pnet2: float | None = None,
        nms_rnet: float | None = None,
        nms_onet: float | None = None,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]] | np.ndarray:
        """Faces in the `mtcnn` package's formats (1.0's API; 0.1's calls are the default case).

        image: an RGB array (uint8, or float as `matplotlib.pyplot.imread` gives it, grey, RGBA), a
            file path (str or pathlib.Path), encoded bytes (JPEG, PNG, ...), or a list of any of
            these: a batch, answered with one list of faces per image (same-size images share
            network calls). A missing file raises FileNotFoundError and undecodable bytes
            ValueError (`mtcnn` returns no faces for both, hiding the mistake).
        box_format: "xywh" ([x, y, width, height]) or "xyxy" ([x1, y1, x2, y2]).
        output_type: "json" (dicts, see `livefaces.compat`) or "numpy" (one float array of rows
            [image_index, box, confidence, 5 landmark x, 5 landmark y] for all images).
        fit_to_image / limit_boundaries_landmarks: clip boxes / landmarks to the image, when
            `postprocess` (default True, False / True as in `mtcnn`).
        batch_stack_justification: accepted for compatibility, no effect (no padding here).
        min_face_size, scale_factor, threshold_pnet / _rnet / _onet, nms_pnet1 / nms_pnet2 /
            nms_rnet / nms_onet: this call's settings instead of the detector's (None: the
            detector's). They reuse the detector's graphs; an unknown keyword is a TypeError.
        """
        output = compat.OutputFormat(
            box_format=box_format,
            output_type=output_type,
            fit_to_image=fit_to_image,
            limit_landmarks=limit_boundaries_landmarks,
            postprocess=postprocess,
            landmarks=self.settings.landmarks,
        )
        compat.check_justification(batch_stack_justification)
        settings = self.settings.for_call(
            min_face_size, scale_factor, threshold_pnet, threshold_rnet, threshold_onet,
            nms_pnet1, nms_pnet2, nms_rnet, nms_onet,
        )  # fmt: skip
        batch = isinstance(image, (list, tuple))
        rgb = [load_rgb(item) for item in (image if batch else [image])]
        found = self._detect_many(rgb, settings)
        return compat.format_faces(found, [item.shape[:2] for item in rgb], output, batch)

    predict = detect_faces  # the `mtcnn` 1.0 alias

    def _detect_many(
        self, rgb: list[np.ndarray], settings: Settings, known: list[np.ndarray] | None = None
    ) -> list[Detections]:
        """Faces in RGB uint8 images, grouped by size so that equal sizes share network calls."""
        results: list[Detections | None] = [None] * len(rgb)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(rgb):
            by_shape.setdefault(image.shape, []).append(i)
        for members in by_shape.values():
            stacked = np.stack([rgb[i] for i in members])
            expected = None if known is None else [known[i] for i in members]
            for i, found in zip(members, self._detect_same_size(stacked, settings, expected)):
                results[i] = found
        return [r if r is not None else Detections.empty() for r in results]

    def _detect_same_size(
        self, images: np.ndarray, settings: Settings, known: list[np.ndarray] | None = None
    ) -> list[Detections]:
        count, height, width = images.shape[:3]
        scales = pyramid_scales(height, width, settings.min_face_size, settings.scale_factor)
        known_count = 0 if known is None or min(height, width) < PNET_CELL else sum(map(len, known))
        if not scales and not known_count:
            return [Detections.empty() for _ in range(count)]
        expected = _known_squares(known) if known_count and known is not None else None
        with tf.device(self.device):
            tensor = tf.constant(images)
            candidates, owners = self._propose(tensor, scales, settings) if scales else _no_boxes()
            if expected is not None:
                candidates, owners = _best_new(*_away_from(candidates, owners, *expected))
            if len(candidates):
                candidates, scores, owners = self._refine(tensor, candidates, owners, settings)
            if expected is not None:
                # New candidates (away from the known faces) and the known faces go to O-Net.
                candidates, owners = _away_from(candidates, owners, *expected)
                candidates = np.concatenate([candidates, expected[0]])
                owners = np.concatenate([owners, expected[1]])
            elif len(candidates) and not settings.landmarks:
                no_points = np.full((len(candidates), 5, 2), np.nan)
                return _per_image(candidates, scores, no_points, owners, count)
            if len(candidates):
                return self._output(tensor, candidates, owners, count, settings)
        return [Detections.empty() for _ in range(count)]

    def _propose(
        self, images: tf.Tensor, scales: list[float], settings: Settings
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1, P-Net: candidate windows over the pyramid; (boxes, image index)."""
        height, width = images.shape[1:3]
        sizes = np.array([[np.ceil(height * s), np.ceil(width * s)] for s in scales], np.int32)
        outputs = self._pyramid(len(scales))(images, sizes)
        found: list[tuple[np.ndarray, ...]] = []
        for scale, (offsets, probability) in zip(scales, outputs):
            probability = probability.numpy()
            # 1. Keep the windows whose face probability passes the first threshold.
            owner, y, x = np.nonzero(probability > settings.thresholds[0])
            if owner.size == 0:
                continue
            # 2. Map each 12x12 window back to the original image.
            corner = np.stack([x, y], axis=1) * PNET_STRIDE
            windows = np.concatenate([corner, corner + PNET_CELL], axis=1) / scale
            scores = probability[owner, y, x]
            # 3. Suppress overlapping windows within this scale.
            keep = bx.grouped_nms(windows, scores, owner, settings.nms_thresholds[0])
            regression = offsets.numpy()[owner[keep], y[keep], x[keep]]
            found.append((windows[keep], scores[keep], owner[keep], regression))
        if not found:
            return np.zeros((0, 4)), np.zeros(0, np.int64)
        windows, scores, owners, regression = (np.concatenate(column) for column in zip(*found))
        # 4. Suppress across scales, apply P-Net's regression and square the boxes for R-Net.
        keep = bx.grouped_nms(windows, scores, owners, settings.nms_thresholds[1])
        return bx.to_square(bx.apply_offsets(windows[keep], regression[keep])), owners[keep]

    def _refine(
        self, images: tf.Tensor, boxes: np.ndarray, owners: np.ndarray, settings: Settings
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 2, R-Net: rescore and regress each candidate on a 24x24 crop; (boxes, scores, owners)."""
        offsets, scores = self._run_crops(self._rnet, images, boxes, owners, 24)
        # 1. Keep the candidates R-Net believes in.
        passed = scores > settings.thresholds[1]
        boxes, owners, offsets, scores = boxes[passed], owners[passed], offsets[passed], scores[passed]
        # 2. Suppress overlaps, apply R-Net's regression and square again for O-Net.
        keep = bx.grouped_nms(boxes, scores, owners, settings.nms_thresholds[2])
        return bx.to_square(bx.apply_offsets(boxes[keep], offsets[keep])), scores[keep], owners[keep]

    def _output(
        self, images: tf.Tensor, boxes: np.ndarray, owners: np.ndarray, count: int, settings: Settings
    ) -> list[Detections]:
        """Stage 3, O-Net: final score, box and five landmarks on a 48x48 crop."""
        outputs = self._run_crops(self._onet, images, boxes, owners, 48)
        return self._finish(boxes, owners, outputs, count, settings)

    def _finish(
        self, boxes: np.ndarray, owners: np.ndarray, outputs: list[np.ndarray], count: int, settings: Settings
    ) -> list[Detections]:
        """Stage 3's bookkeeping on O-Net's outputs for `boxes` (the squares it looked at)."""
        offsets, points, scores = outputs
        # 1. Keep the faces O-Net confirms.
        passed = scores > settings.thresholds[2]
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
        keep = bx.grouped_nms(boxes, scores, owners, settings.nms_thresholds[3], mode="min")
        return _per_image(boxes[keep], scores[keep], landmarks[keep], owners[keep], count)

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
                ],
                autograph=False,
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
    def _patch_graph(network: Any, weights: networks.Weights) -> Any:
        """A graph that runs `network` on patches already cut to 48x48 (uint8 RGB)."""

        @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 3], tf.uint8)], autograph=False)
        def run(patches: tf.Tensor) -> Any:
            return network(tf.cast(patches, tf.float32), weights)

        return run

    @staticmethod
    def _crop_graph(size: int, network: Any, weights: networks.Weights) -> Any:
        """A graph that samples size x size crops from the images and runs `network` on them."""

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8),
                tf.TensorSpec([None, 4], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ],
            autograph=False,
        )
        def run(images: tf.Tensor, crops: tf.Tensor, owners: tf.Tensor) -> Any:
            patches = tf.image.crop_and_resize(images, crops, owners, (size, size))
            return network(patches, weights)

        return run


def _boxes(boxes: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 4)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)


def _no_boxes() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4)), np.zeros(0, np.int64)


def _best_new(candidates: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most NEW_CANDIDATES per image, the best by P-Net's score (candidates come best first):
    a busy scene cannot make a scan between full scans cost like a full one."""
    if not len(owners):
        return candidates, owners
    rank = np.zeros(len(owners), np.int64)
    for owner in np.unique(owners):
        members = np.flatnonzero(owners == owner)
        rank[members] = np.arange(len(members))
    keep = rank < NEW_CANDIDATES
    return candidates[keep], owners[keep]


def _known_squares(known: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Known boxes of a batch squared for O-Net, and the image each belongs to."""
    squares = np.concatenate([bx.to_square(boxes) for boxes in known])
    owners = np.concatenate([np.full(len(boxes), k, np.int64) for k, boxes in enumerate(known)])
    return squares, owners


def _away_from(
    candidates: np.ndarray, owners: np.ndarray, known: np.ndarray, known_owners: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates that overlap no known box of their image by KNOWN_OVERLAP (IoU) or more:
    a known face is measured from its own box, so the cascade's work on it can be skipped."""
    if not len(candidates):
        return candidates, owners
    overlap = bx.iou(candidates, known) * (owners[:, None] == known_owners[None, :])
    keep = overlap.max(axis=1) < KNOWN_OVERLAP
    return candidates[keep], owners[keep]


def _per_image(
    boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, owners: np.ndarray, count: int
) -> list[Detections]:
    """Split the faces of a batch by image, keeping their order (best first)."""
    return [
        Detections(
            boxes[owners == i].astype(np.float32),
            scores[owners == i].astype(np.float32),
            landmarks[owners == i].astype(np.float32),
        )
        for i in range(count)
    ]
