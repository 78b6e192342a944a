"""Anything a caller may hand the detector -> one uint8 RGB HxWx3 array.

The detector's networks see uint8 RGB. This module is the one place that turns the inputs people
actually have into that: NumPy arrays of any common dtype and channel count, files by path, and
encoded bytes (what the `mtcnn` package accepts). The rules, in order:

- An encoded image (a path's contents, or bytes) is decoded by OpenCV with `IMREAD_COLOR`, so
  grey, paletted, 16-bit and RGBA files all become 8-bit colour; OpenCV's BGR is turned into RGB.
  EXIF orientation is not applied (`IMREAD_IGNORE_ORIENTATION`): boxes are in the stored pixel
  grid, as with `mtcnn` (TensorFlow's decoder), PIL's `Image.open` and `matplotlib.pyplot.imread`.
- Arrays are `HxW` or `HxWx1` grey (repeated to three channels), `HxWx3` RGB or `HxWx4` RGBA
  (alpha dropped). The caller's array is never modified.
- uint8 is used as is. Other integer dtypes must hold values in [0, 255]. Floating-point arrays
  whose values all lie in [0, 1] (what `matplotlib.pyplot.imread` returns for PNG) are scaled:
  `round(x * 255)`. Other floating-point arrays are taken as 0-255 pixel values (what `mtcnn`'s
  own loader returns) and rounded; values outside [0, 255], NaN or infinity are refused.
  A float image in 0-255 whose brightest pixel is at most 1 is read as 0-1: it is black either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeAlias

import cv2
import numpy as np

ImageInput: TypeAlias = "np.ndarray | str | os.PathLike[str] | bytes | bytearray | memoryview"
"""What `MTCNN.detect_faces` takes for one image: an array, a file path, or encoded bytes."""

_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def load_rgb(image: Any) -> np.ndarray:
    """One image of any accepted kind (array, path, encoded bytes, TensorFlow tensor) as uint8 RGB.

    Raises FileNotFoundError for a path that does not exist and ValueError for anything that is
    not an image, saying what it got and what is accepted.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image))
    if not isinstance(image, np.ndarray) and hasattr(image, "numpy") and hasattr(image, "dtype"):
        image = image.numpy()  # a TensorFlow (or similar eager) tensor, as `mtcnn` accepts
    return as_rgb(image)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image file at `path` as uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    return decode_image(path.read_bytes(), origin=str(path))


def decode_image(data: bytes, origin: str = "bytes") -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, BMP, TIFF, WebP, ... whatever OpenCV reads) as uint8 RGB."""
    buffer = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buffer, _DECODE_FLAGS) if buffer.size else None
    if bgr is None:
        shown = origin if origin != "bytes" else f"{len(data)} bytes starting {data[:12]!r}"
        raise ValueError(f"could not decode an image from {shown}: not a format OpenCV reads")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def as_rgb(image: Any) -> np.ndarray:
    """Validate an image array and view it as uint8 HxWx3 RGB (grey repeated, alpha dropped).

    Takes the dtypes described in this module's docstring; never modifies the caller's array.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"image must be a numpy array (or, for detect_faces, a file path or encoded bytes), "
            f"got {type(image).__name__}"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxWx3 RGB, HxWx4 RGBA, HxWx1 or HxW grey; got shape {image.shape}")
    image = to_uint8(image[:, :, :3])
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Pixel values as uint8 by the dtype rule in this module's docstring (a copy unless uint8)."""
    if image.dtype == np.uint8:
        return image
    real = np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    if not real:
        raise ValueError(
            f"image must have an integer or floating-point dtype (uint8 is best), got {image.dtype}"
        )
    if image.size == 0:
        return image.astype(np.uint8)
    low, high = image.min(), image.max()
    if np.issubdtype(image.dtype, np.integer):
        if low < 0 or high > 255:
            raise ValueError(
                f"integer image values must lie in [0, 255], got [{low}, {high}] with dtype {image.dtype}"
            )
        return image.astype(np.uint8)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"image values must be finite, got NaN or infinity in a {image.dtype} image")
    if low < 0 or high > 255:
        raise ValueError(
            f"floating-point image values must lie in [0, 1] (scaled by 255) or [0, 255], "
            f"got [{low:g}, {high:g}] with dtype {image.dtype}"
        )
    scale = 255.0 if high <= 1 else 1.0
    return np.rint(image.astype(np.float32) * scale).astype(np.uint8)
