"""Convert the MTCNN weights shipped by the `mtcnn` package (MIT) into livefaces' `.npz` files.

Run once by a maintainer, never at run time:

    pip install mtcnn==1.0.0 && python scripts/convert_weights.py

The `mtcnn` package stores each network as a joblib/lz4 pickle holding the Keras weight list.
This script unpickles those trusted files once, names every array after its layer and writes
plain `.npz` archives that livefaces loads with `allow_pickle=False`. It then prints the
SHA-256 of each file for `livefaces/networks.py` and `livefaces/weights/README.md`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import sys
from pathlib import Path

import joblib
import numpy as np

LAYER_NAMES = {
    "pnet": [
        "conv1/kernel", "conv1/bias", "prelu1/alpha",
        "conv2/kernel", "conv2/bias", "prelu2/alpha",
        "conv3/kernel", "conv3/bias", "prelu3/alpha",
        "conv4_1/kernel", "conv4_1/bias",
        "conv4_2/kernel", "conv4_2/bias",
    ],
    "rnet": [
        "conv1/kernel", "conv1/bias", "prelu1/alpha",
        "conv2/kernel", "conv2/bias", "prelu2/alpha",
        "conv3/kernel", "conv3/bias", "prelu3/alpha",
        "fc4/kernel", "fc4/bias", "prelu4/alpha",
        "fc5_1/kernel", "fc5_1/bias",
        "fc5_2/kernel", "fc5_2/bias",
    ],
    "onet": [
        "conv1/kernel", "conv1/bias", "prelu1/alpha",
        "conv2/kernel", "conv2/bias", "prelu2/alpha",
        "conv3/kernel", "conv3/bias", "prelu3/alpha",
        "conv4/kernel", "conv4/bias", "prelu4/alpha",
        "fc5/kernel", "fc5/bias", "prelu5/alpha",
        "fc6_1/kernel", "fc6_1/bias",
        "fc6_2/kernel", "fc6_2/bias",
        "fc6_3/kernel", "fc6_3/bias",
    ],
}


def convert(out_dir: Path) -> None:
    """Write pnet.npz, rnet.npz and onet.npz into `out_dir` and print their SHA-256."""
    source = importlib.resources.files("mtcnn.assets.weights")
    out_dir.mkdir(parents=True, exist_ok=True)
    for net, names in LAYER_NAMES.items():
        arrays = joblib.load(source / f"{net}.lz4")
        if len(arrays) != len(names):
            sys.exit(f"{net}: expected {len(names)} arrays, the mtcnn package has {len(arrays)}")
        named = {name: np.asarray(a, dtype=np.float32) for name, a in zip(names, arrays)}
        path = out_dir / f"{net}.npz"
        np.savez(path, **named)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name} {digest}")


if __name__ == "__main__":
    convert(Path(__file__).resolve().parent.parent / "livefaces" / "weights")
