"""The three MTCNN networks as plain TensorFlow functions, and loading of their shipped weights.

Layers only: no thresholds, no boxes. The graphs take float32 NHWC pixel values 0-255 (the
normalisation `(pixel - 127.5) / 128` is folded into each first convolution at load) and return
probabilities (softmax already applied), so the stages in
`detector.py` read like the paper. Weights are `.npz` files loaded with `allow_pickle=False` and,
for the files that ship with the package, checked against their SHA-256.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from livefaces.quiet_tensorflow import tf

NETWORKS = ("pnet", "rnet", "onet")
NORMALISE_SHIFT = 127.5
NORMALISE_SCALE = 1.0 / 128.0

SHIPPED_SHA256 = {
    "pnet": "f18be3029ae409e07a03d09440ca32cd1c1c75dbb2520cc12d94e4c60a276172",
    "rnet": "4fbfac4e3f94ae6c0d109465730be8387809a0323148a0eb36335be93d1bed67",
    "onet": "d37931b1658680074c0d7222d8233d11a47869ec08789e3cd25d5a83453bf4a2",
}

EXPECTED_SHAPES = {
    "pnet": {
        "conv1/kernel": (3, 3, 3, 10),
        "conv1/bias": (10,),
        "prelu1/alpha": (1, 1, 10),
        "conv2/kernel": (3, 3, 10, 16),
        "conv2/bias": (16,),
        "prelu2/alpha": (1, 1, 16),
        "conv3/kernel": (3, 3, 16, 32),
        "conv3/bias": (32,),
        "prelu3/alpha": (1, 1, 32),
        "conv4_1/kernel": (1, 1, 32, 4),
        "conv4_1/bias": (4,),
        "conv4_2/kernel": (1, 1, 32, 2),
        "conv4_2/bias": (2,),
    },
    "rnet": {
        "conv1/kernel": (3, 3, 3, 28),
        "conv1/bias": (28,),
        "prelu1/alpha": (1, 1, 28),
        "conv2/kernel": (3, 3, 28, 48),
        "conv2/bias": (48,),
        "prelu2/alpha": (1, 1, 48),
        "conv3/kernel": (2, 2, 48, 64),
        "conv3/bias": (64,),
        "prelu3/alpha": (1, 1, 64),
        "fc4/kernel": (576, 128),
        "fc4/bias": (128,),
        "prelu4/alpha": (128,),
        "fc5_1/kernel": (128, 4),
        "fc5_1/bias": (4,),
        "fc5_2/kernel": (128, 2),
        "fc5_2/bias": (2,),
    },
    "onet": {
        "conv1/kernel": (3, 3, 3, 32),
        "conv1/bias": (32,),
        "prelu1/alpha": (1, 1, 32),
        "conv2/kernel": (3, 3, 32, 64),
        "conv2/bias": (64,),
        "prelu2/alpha": (1, 1, 64),
        "conv3/kernel": (3, 3, 64, 64),
        "conv3/bias": (64,),
        "prelu3/alpha": (1, 1, 64),
        "conv4/kernel": (2, 2, 64, 128),
        "conv4/bias": (128,),
        "prelu4/alpha": (1, 1, 128),
        "fc5/kernel": (1152, 256),
        "fc5/bias": (256,),
        "prelu5/alpha": (256,),
        "fc6_1/kernel": (256, 4),
        "fc6_1/bias": (4,),
        "fc6_2/kernel": (256, 10),
        "fc6_2/bias": (10,),
        "fc6_3/kernel": (256, 2),
        "fc6_3/bias": (2,),
    },
}

Weights = dict[str, np.ndarray]


class WeightsError(ValueError):
    """A weights file is missing, unreadable, altered or of the wrong shape."""


@dataclass(frozen=True)
class NetworkWeights:
    """The weights of all three networks as TensorFlow constants on one device."""

    pnet: Weights
    rnet: Weights
    onet: Weights


def shipped_weights_dir() -> Path:
    """The folder inside the installed package that holds the shipped `.npz` files."""
    return Path(str(resources.files("livefaces") / "weights"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_npz(path: Path, net: str, expected_sha256: str | None) -> dict[str, np.ndarray]:
    """Read one network's weights without pickle, verifying checksum, names and shapes."""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if expected_sha256 is not None and _sha256(path) != expected_sha256:
        raise WeightsError(f"weights file {path} does not match its SHA-256: it is altered or corrupt")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsError(f"weights file {path} cannot be read as .npz: {error}") from None
    for name, shape in EXPECTED_SHAPES[net].items():
        if name not in arrays:
            raise WeightsError(f"weights file {path} lacks array {name!r}")
        if arrays[name].shape != shape:
            found = arrays[name].shape
            raise WeightsError(f"weights file {path}: {name} has shape {found}, expected {shape}")
    return {name: arrays[name].astype(np.float32) for name in EXPECTED_SHAPES[net]}


def fold_normalisation(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fold the input normalisation (x - 127.5) / 128 into the first convolution.

    With VALID padding, conv(s * (x - c)) = conv(x) with the kernel times s, minus c * s times
    each output channel's kernel sum, so the networks take pixel values 0-255 directly and the
    two elementwise passes over every pyramid level and crop disappear.
    """
    kernel, bias = arrays["conv1/kernel"], arrays["conv1/bias"]
    folded = dict(arrays)
    folded["conv1/kernel"] = (kernel * NORMALISE_SCALE).astype(np.float32)
    folded["conv1/bias"] = (bias - NORMALISE_SHIFT * NORMALISE_SCALE * kernel.sum(axis=(0, 1, 2))).astype(
        np.float32
    )
    return folded


def load_weights(folder: str | Path | None = None) -> NetworkWeights:
    """Load pnet/rnet/onet `.npz` from `folder` (default: the shipped ones), normalisation folded.

    Shipped files are checked against their SHA-256; a user's own folder is checked for
    names and shapes only, since its files are meant to differ. The arrays stay NumPy: traced
    into a graph they become constants, which lets TensorFlow fuse and pre-pack the layers
    (captured tensors measured about 25 % slower here), on whichever device runs the graph.
    """
    shipped = folder is None
    base = shipped_weights_dir() if shipped else Path(folder)
    loaded = {}
    for net in NETWORKS:
        arrays = load_npz(base / f"{net}.npz", net, SHIPPED_SHA256[net] if shipped else None)
        loaded[net] = fold_normalisation(arrays)
    return NetworkWeights(**loaded)


def _conv(x: tf.Tensor, w: Weights, name: str) -> tf.Tensor:
    return tf.nn.bias_add(tf.nn.conv2d(x, w[f"{name}/kernel"], strides=1, padding="VALID"), w[f"{name}/bias"])


def _prelu(x: tf.Tensor, alpha: np.ndarray) -> tf.Tensor:
    """Parametric ReLU. With every slope <= 1 it equals max(x, alpha * x): two passes, not four."""
    if np.all(alpha <= 1.0):
        return tf.maximum(x, alpha * x)
    return tf.nn.relu(x) + alpha * tf.minimum(x, 0.0)


def _dense(x: tf.Tensor, w: Weights, name: str) -> tf.Tensor:
    return tf.matmul(x, w[f"{name}/kernel"]) + w[f"{name}/bias"]


def _flatten_caffe_order(x: tf.Tensor) -> tf.Tensor:
    """Flatten (N, H, W, C) as (N, W, H, C), the order the dense layers were trained with."""
    x = tf.transpose(x, (0, 2, 1, 3))
    return tf.reshape(x, (tf.shape(x)[0], -1))


def pnet(x: tf.Tensor, w: Weights) -> tuple[tf.Tensor, tf.Tensor]:
    """Proposal net on (N, H, W, 3) pixel values 0-255 (see `fold_normalisation`).

    Returns box offsets (N, h, w, 4) and face probability (N, h, w).
    """
    x = _prelu(_conv(x, w, "conv1"), w["prelu1/alpha"])
    x = tf.nn.max_pool2d(x, 2, 2, "SAME")
    x = _prelu(_conv(x, w, "conv2"), w["prelu2/alpha"])
    x = _prelu(_conv(x, w, "conv3"), w["prelu3/alpha"])
    # Both heads in one convolution (offsets in channels 0-3, logits in 4-5); a softmax over
    # two logits is the sigmoid of their difference.
    kernel = tf.concat([w["conv4_1/kernel"], w["conv4_2/kernel"]], axis=-1)
    bias = tf.concat([w["conv4_1/bias"], w["conv4_2/bias"]], axis=-1)
    heads = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="VALID"), bias)
    return heads[..., 0:4], tf.sigmoid(heads[..., 5] - heads[..., 4])


def rnet(x: tf.Tensor, w: Weights) -> tuple[tf.Tensor, tf.Tensor]:
    """Refinement net on (N, 24, 24, 3) pixel values: box offsets (N, 4) and face probability (N,)."""
    x = _prelu(_conv(x, w, "conv1"), w["prelu1/alpha"])
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")
    x = _prelu(_conv(x, w, "conv2"), w["prelu2/alpha"])
    x = tf.nn.max_pool2d(x, 3, 2, "VALID")
    x = _prelu(_conv(x, w, "conv3"), w["prelu3/alpha"])
    x = _prelu(_dense(_flatten_caffe_order(x), w, "fc4"), w["prelu4/alpha"])
    return _dense(x, w, "fc5_1"), tf.nn.softmax(_dense(x, w, "fc5_2"))[:, 1]


def onet(x: tf.Tensor, w: Weights) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Output net on (N, 48, 48, 3) pixel values: offsets (N, 4), landmarks (N, 10) and probability (N,).

    Landmarks are fractions of the box: five x values, then five y values.
    """
    x = _prelu(_conv(x, w, "conv1"), w["prelu1/alpha"])
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")
    x = _prelu(_conv(x, w, "conv2"), w["prelu2/alpha"])
    x = tf.nn.max_pool2d(x, 3, 2, "VALID")
    x = _prelu(_conv(x, w, "conv3"), w["prelu3/alpha"])
    x = tf.nn.max_pool2d(x, 2, 2, "SAME")
    x = _prelu(_conv(x, w, "conv4"), w["prelu4/alpha"])
    x = _prelu(_dense(_flatten_caffe_order(x), w, "fc5"), w["prelu5/alpha"])
    return _dense(x, w, "fc6_1"), _dense(x, w, "fc6_2"), tf.nn.softmax(_dense(x, w, "fc6_3"))[:, 1]
