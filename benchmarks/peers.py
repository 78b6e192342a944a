"""The `mtcnn` and `facenet-pytorch` packages behind one call, for side-by-side figures.

Each adapter takes an RGB uint8 image and returns (boxes x1,y1,x2,y2 (N,4), scores (N,)), with
the paper's settings that livefaces uses by default: minimum face 20 px, factor 0.709,
thresholds 0.6/0.7/0.7. A package that is not installed is skipped with a message.

`mtcnn_class` gives the `MTCNN` class of livefaces or of the `mtcnn` package, for benchmarks that
run the very same constructor and `detect_faces` calls on both (`SAME_CALL` keyword arguments).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

MIN_FACE = 20
FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
SAME_CALL = {
    "min_face_size": MIN_FACE,
    "scale_factor": FACTOR,
    "threshold_pnet": THRESHOLDS[0],
    "threshold_rnet": THRESHOLDS[1],
    "threshold_onet": THRESHOLDS[2],
}
"""`detect_faces` keyword arguments that both packages take: the paper's settings."""
MTCNN_CLASSES = ("livefaces", "mtcnn")


def mtcnn_class(name: str) -> type:
    """`livefaces.MTCNN` or the `mtcnn` package's `MTCNN`: one import apart, the same calls."""
    if name == "livefaces":
        from livefaces import MTCNN
    elif name == "mtcnn":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from mtcnn import MTCNN
    else:
        raise ValueError(f"name must be one of {MTCNN_CLASSES}, got {name!r}")
    return MTCNN


def livefaces_detector() -> Detector:
    from livefaces import MTCNN

    detector = MTCNN(min_face_size=MIN_FACE, scale_factor=FACTOR, thresholds=THRESHOLDS)

    def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = detector.detect(rgb)
        return found.boxes.astype(np.float64), found.scores.astype(np.float64)

    return detect


def mtcnn_detector() -> Detector:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mtcnn import MTCNN as PeerMTCNN

    detector = PeerMTCNN(device="CPU:0")

    def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = detector.detect_faces(rgb, **SAME_CALL)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (f["box"] for f in faces)], np.float64)
        scores = np.array([f["confidence"] for f in faces], np.float64)
        return boxes.reshape(-1, 4), scores

    return detect


def facenet_detector() -> Detector:
    import torch
    from facenet_pytorch import MTCNN as PeerMTCNN

    torch.set_grad_enabled(False)
    detector = PeerMTCNN(
        keep_all=True,
        min_face_size=MIN_FACE,
        factor=FACTOR,
        thresholds=list(THRESHOLDS),
        post_process=False,
        device="cpu",
    )

    def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = detector.detect(rgb)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0)
        return np.asarray(boxes, np.float64), np.asarray(scores, np.float64)

    return detect


FACTORIES: dict[str, Callable[[], Detector]] = {
    "livefaces": livefaces_detector,
    "mtcnn": mtcnn_detector,
    "facenet-pytorch": facenet_detector,
}


def available(names: list[str]) -> dict[str, Detector]:
    """The detectors that load here, by name; the others are reported on stderr and skipped."""
    loaded = {}
    for name in names:
        try:
            loaded[name] = FACTORIES[name]()
        except ImportError as error:
            print(f"skipping {name}: not installed ({error})", file=sys.stderr)
    return loaded


def json_from_child(script: str, name: str, args: list[str]) -> object | None:
    """Run `script --worker name *args` in its own process and return the JSON it prints last.

    Each detector gets a process of its own: TensorFlow and PyTorch loaded together crash here,
    and separate processes keep one detector's threads and memory from skewing another's figures.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, script, "--worker", name, *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        print(f"skipping {name}: {reason}", file=sys.stderr)
        return None
    return json.loads(done.stdout.splitlines()[-1])
