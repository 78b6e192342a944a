"""Shared fixtures: one detector per test session, the bundled image, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from livefaces import MTCNN

ASSETS = Path(__file__).resolve().parent.parent / "livefaces" / "assets"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def detector() -> MTCNN:
    return MTCNN()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The public-domain NASA astronaut portrait (from scikit-image's data), RGB."""
    image = cv2.imread(str(ASSETS / "astronaut.jpg"))
    image.setflags(write=False)
    return np.ascontiguousarray(image[:, :, ::-1])


def shared_data(relative: str) -> Path:
    """A file under ../shared/data, or a skip with a message when the folder is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not present: {path} (../shared/data is absent on a plain clone)")
    return path
