"""The decoded film every reader returns, the size limit they share, and the grey conversion.

Its own module so that the raster and DICOM readers both build on it without
importing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from PIL import Image

from ..errors import FilmError

#: Largest film accepted, in pixels (a 12 MP phone photo and a 3000 x 2500 scan
#: fit with room to spare; a decompression bomb does not).
MAX_PIXELS = 64_000_000

Source = Union[str, os.PathLike, bytes]


@dataclass
class Film:
    """A decoded film: ``image`` is mode "L"; the rest describes the original."""

    image: Image.Image
    original_size: tuple[int, int]
    original_mode: str
    format: str
    colour_spread: float = 0.0  # colour not explained by a per-channel tint; 0 for grey films
    tags: dict = field(default_factory=dict)  # what a DICOM header says (PatientAge, BodyPartExamined, ViewPosition)



def to_grey(image: Image.Image) -> tuple[Image.Image, float]:
    """Any Pillow mode to mode "L"; also return how colourful the original was."""
    mode = image.mode
    if mode == "RGB":
        grey = replicated_grey(image)
        if grey is not None:
            return grey, 0.0
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
        rgb = image if mode == "RGB" else image.convert("RGB")  # an RGB film is grey-converted as it is
        return rgb.convert("L"), colour_spread(rgb)
    if mode == "L":
        return image, 0.0
    if mode in ("LA", "La", "1"):
        return image.convert("L"), 0.0
    if mode.startswith("I") or mode == "F":
        return high_depth_to_grey(np.asarray(image)), 0.0
    raise FilmError(f"unsupported image mode {mode!r}", code="unsupported_mode")


def replicated_grey(rgb: Image.Image) -> Image.Image | None:
    """The grey film inside an RGB film whose three channels are equal everywhere, else None.

    A grey film stored as RGB (every training film is) has no colour to measure, and
    Pillow's RGB-to-L weights (19595, 38470, 7471 / 65536) sum to one, so its grey
    is the red channel itself: convert("L")'s very pixels, without the colour check's fit.
    The channels are compared as Pillow's own planes (split, then bytes): a third of the
    time of comparing numpy views across the channel axis.
    """
    red, green, blue = rgb.split()
    plane = red.tobytes()
    return red if plane == green.tobytes() and plane == blue.tobytes() else None


def high_depth_to_grey(pixels: np.ndarray) -> Image.Image:
    """Stretch a 12/16-bit or float film linearly from its darkest to its brightest pixel.

    Scanners and digitisers rarely use the full 16-bit range, so a fixed divisor
    would leave most films nearly black; min-max keeps the film's own contrast.
    The stretch is float32 arithmetic, rounded to the nearest grey level. An
    integer film of at most 16 bits is mapped through a table of that arithmetic
    on every value from its darkest to its brightest pixel, a block of rows at a
    time: the same bits, in half the time of the arithmetic on every pixel of a
    3000 x 2500 scan, and a few MB of working memory. Other films (32-bit, float)
    get the arithmetic in one float32 array, in place (30 MB for that scan, not the
    180 MB of float64 temporaries); a float film's non-finite pixels are masked.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    if pixels.dtype.kind in "iu" and pixels.dtype.itemsize <= 2:
        low, high = int(pixels.min()), int(pixels.max())
        table = _stretch(np.arange(low, high + 1, dtype=pixels.dtype), low, high)
        grey = np.empty(pixels.shape, dtype=np.uint8)
        for start in range(0, pixels.shape[0], _TABLE_ROWS):
            block = pixels[start:start + _TABLE_ROWS].astype(np.intp)
            block -= low
            np.take(table, block, out=grey[start:start + _TABLE_ROWS])
        return Image.fromarray(grey, mode="L")
    finite = None
    if pixels.dtype.kind == "f":
        finite = np.isfinite(pixels)
        if not finite.any():
            raise FilmError("the film holds no finite pixel values", code="corrupt")
        low = float(np.min(pixels, where=finite, initial=np.inf))
        high = float(np.max(pixels, where=finite, initial=-np.inf))
    else:
        low, high = float(pixels.min()), float(pixels.max())
    return Image.fromarray(_stretch(pixels, low, high, finite=finite), mode="L")


#: Rows of a film looked up at once in :func:`high_depth_to_grey` (their indices fit in a core's cache).
_TABLE_ROWS = 64


def _stretch(pixels: np.ndarray, low: float, high: float, *, finite: np.ndarray | None = None) -> np.ndarray:
    """The min-max stretch itself: float32, in place on one working copy, rounded to uint8."""
    span = high - low if high > low else 1.0
    scaled = np.subtract(pixels, low, dtype=np.float32)
    if finite is not None and not finite.all():
        scaled[~finite] = 0.0
    scaled *= 255.0 / span
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def colour_spread(rgb: Image.Image) -> float:
    """Colour that a tint cannot explain, on a box-reduced copy (short side 64 px or more), in grey
    levels (0..255).

    Each channel is fitted as gain x grey + offset (least squares); the result is
    the 95th percentile of each pixel's mean absolute residual. A grey film stored
    as RGB scores 0, and so does a film photographed on a light box under a colour
    cast, which is exactly such a per-channel gain and offset (a plain mean
    |R-G|, |G-B| puts a warm cast at 13-16). The percentile, not the mean, is what
    sees colour confined to part of the picture, such as a Doppler overlay. The
    fit is the closed form of one variable's least squares, and the reduction a
    whole-factor box: together a tenth of the time of a bicubic thumbnail and a
    general solver, on a training film.
    """
    factor = min(rgb.size) // 64
    small = rgb.reduce(factor) if factor >= 2 else rgb
    # One contiguous row per channel: numpy's reductions along a length-3 axis cost more than the fit.
    channels = np.asarray(small, dtype=np.float64).reshape(-1, 3).T.copy()
    grey = (channels[0] + channels[1] + channels[2]) / 3
    grey -= grey.mean()
    centred = channels - channels.mean(axis=1, keepdims=True)
    variance = float(grey @ grey)
    gain = centred @ grey / variance if variance > 0 else np.zeros(3)
    residual = np.abs(centred - gain[:, np.newaxis] * grey)
    return _percentile((residual[0] + residual[1] + residual[2]) / 3, 95)


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation), by partition: a tenth of its overhead here."""
    rank = q / 100 * (values.size - 1)
    low = int(rank)
    high = min(low + 1, values.size - 1)
    part = np.partition(values, (low, high))
    return float(part[low] + (part[high] - part[low]) * (rank - low))
