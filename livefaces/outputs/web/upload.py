"""Images posted to `POST /api/detect`: JPEG or PNG, their size read from the header first.

A few kilobytes of PNG may claim 50,000 x 50,000 pixels and decode to 7.5 GB: so the picture's
width and height are read from the file's own header (PNG's IHDR chunk, JPEG's start-of-frame
marker) and a picture beyond `MAX_PIXELS` is refused before any decoder allocates it. Every
refusal is an `UploadError` carrying the HTTP status and a message for the client.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # e.g. 8000 x 5000; a decoded RGB image of at most 120 MB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length


class UploadError(Exception):
    """A posted body the endpoint refuses: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from a JPEG's or PNG's header; UploadError for anything else."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise UploadError(400, "a PNG without its IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(JPEG_SOI):
        width, height = _jpeg_size(data)
        return "jpeg", width, height
    raise UploadError(415, f"not a JPEG or PNG image ({len(data)} bytes starting {data[:8]!r})")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """The frame size of a JPEG: the first start-of-frame segment's height and width."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise UploadError(400, "a JPEG whose markers are broken")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            if at + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        if marker == 0xDA or length < 2:  # image data before any frame header
            break
        at += 2 + length
    raise UploadError(400, "a JPEG without a frame header")


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The posted image as uint8 RGB, after its header says it is small enough to decode."""
    if not data:
        raise UploadError(400, "the body is empty: post a JPEG or PNG image")
    kind, width, height = image_size(data)
    if width < 1 or height < 1:
        raise UploadError(400, f"the {kind.upper()} header says {width}x{height} pixels")
    if width * height > max_pixels:
        raise UploadError(
            413, f"the image is {width}x{height} pixels, more than the {max_pixels:,} this server decodes"
        )
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise UploadError(400, f"the {kind.upper()} image could not be decoded (truncated or corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
