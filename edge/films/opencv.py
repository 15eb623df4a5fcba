"""OpenCV's PNG decoder, where it gives Pillow's very pixels, faster (the ``[fast]`` extra).

Pillow still opens every file (format, size, mode, EXIF and the size limits all come
from its header), and decodes whatever is not handled here: OpenCV only replaces the
pixel decoding of 8-bit grey and RGB PNG and 16-bit grey PNG. PNG is lossless, so any
correct decoder gives the same pixels (tests/test_opencv.py checks them on every kind).
JPEG is left to Pillow: OpenCV and Pillow each bundle their own libjpeg-turbo, and two
builds agreeing to the bit today (they did on the shared films) is no promise for the
wheels a Pi installs next year; the measured gain was 0-3%. cv2 is imported on the
first film, not with the package, so the device core needs only numpy and Pillow;
without it (or on any doubt about a file) this returns None and Pillow decodes, with
its own errors.
"""

from __future__ import annotations

import functools
import struct

import numpy as np
from PIL import Image

# Pillow's mode and its PNG raw mode (one 8- or 16-bit sample per channel) -> what OpenCV is asked for
_PNG = {("L", "L"): "grey", ("I;16", "I;16B"): "deep", ("RGB", "RGB"): "rgb"}
# Chunks after the pixels that Pillow reads on load: an EXIF orientation may be in them.
_LATE_METADATA = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")


@functools.cache
def _cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2 if hasattr(cv2, "IMREAD_COLOR_RGB") else None  # OpenCV >= 4.11


def decode(data: bytes, image: Image.Image) -> np.ndarray | None:
    """The pixels Pillow's ``image.load()`` would give for ``image`` (opened from ``data``, draft
    mode already set), as ``np.asarray`` of it would hold them, or None."""
    cv2 = _cv2()
    if cv2 is None or len(image.tile) != 1:
        return None
    kind = _kind(data, image)
    if kind is None:
        return None
    flags = cv2.IMREAD_IGNORE_ORIENTATION | {
        "grey": cv2.IMREAD_GRAYSCALE, "deep": cv2.IMREAD_ANYDEPTH, "rgb": cv2.IMREAD_COLOR_RGB}[kind]
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None
    width, height = image.size
    expected = ((height, width, 3) if kind == "rgb" else (height, width), np.uint16 if kind == "deep" else np.uint8)
    if pixels is None or (pixels.shape, pixels.dtype) != expected:
        return None
    return pixels


def _kind(data: bytes, image: Image.Image) -> str | None:
    """What OpenCV is asked to decode, or None for a file left to Pillow."""
    if image.format != "PNG":
        return None
    kind = _PNG.get((image.mode, image.tile[0].args))
    return kind if kind and _complete_png(data, image.tile[0].offset) else None


def _complete_png(data: bytes, offset: int) -> bool:
    """Whether the chunks from the first IDAT on reach IEND, with no metadata Pillow would read late.

    Pillow refuses a PNG cut short, and reads an EXIF block after the pixels only on load;
    libpng may decode the first with a warning and OpenCV ignores the second.
    """
    position = offset - 8  # the IDAT chunk's length and type precede its data
    while position + 8 <= len(data):
        length, tag = struct.unpack_from(">I4s", data, position)
        if tag == b"IEND":
            return True
        if tag in _LATE_METADATA:
            return False
        position += 12 + length
    return False
