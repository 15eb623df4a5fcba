"""Reading a film from any source into one 8-bit grey image.

Every path into the model (a scanner's 16-bit PNG, a phone photo, a DICOM file, a
camera frame, a training JPEG) ends in :func:`read_film`, which returns a
:class:`Film`: the grey 8-bit image plus what the quality gate needs to know about
the original (its size, whether it was in colour). Errors are :class:`FilmError`
with a specific code, never a bare Pillow exception.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import FilmError

# Truncated files are errors, not half-grey films.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Largest film accepted, in pixels (a 12 MP phone photo and a 3000 x 2500 scan
#: fit with room to spare; a decompression bomb does not).
MAX_PIXELS = 64_000_000

#: File endings walked by batch scoring.
FILM_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")

Source = Union[str, os.PathLike, bytes]


@dataclass
class Film:
    """A decoded film: ``image`` is mode "L"; the rest describes the original."""

    image: Image.Image
    original_size: tuple[int, int]
    original_mode: str
    format: str
    colour_spread: float = 0.0  # mean |R-G|,|G-B| on a thumbnail; 0 for grey films


def read_film(source: Source, min_size: int | None = None) -> Film:
    """Decode ``source`` (a path or the file's bytes) into a grey 8-bit :class:`Film`.

    ``min_size`` is the model's input side: a large JPEG is then decoded at a
    reduced scale (Pillow's draft mode, DCT scaling) no smaller than it, which is
    many times faster than a full decode and loses nothing the model can see.
    """
    data = _read_bytes(source)
    if not data:
        raise FilmError("the file is empty (0 bytes)", code="empty_file")
    if is_dicom(data):
        from .dicom import read_dicom

        return read_dicom(data)
    return _read_raster(data, min_size)


def is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FilmError(f"no such file: {path}", code="not_found") from None
    except IsADirectoryError:
        raise FilmError(f"is a folder, not a film: {path}", code="not_a_file") from None
    except OSError as exc:
        raise FilmError(f"cannot read {path}: {exc.strerror or exc}", code="io_error") from None


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FilmError(f"refused as a decompression bomb: {exc}", code="decompression_bomb") from None
    except UnidentifiedImageError:
        raise FilmError("not an image Pillow can identify (wrong extension, or not a film at all)",
                        code="not_an_image") from None
    except Exception as exc:  # Pillow raises many types on malformed headers
        raise FilmError(f"malformed image header: {exc}", code="corrupt") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise FilmError(f"refused: {width} x {height} is over the {MAX_PIXELS:,}-pixel limit "
                        "(a decompression bomb, or not a film)", code="decompression_bomb")
    if width < 1 or height < 1:
        raise FilmError(f"image has no pixels ({width} x {height})", code="corrupt")
    return image


def _read_raster(data: bytes, min_size: int | None) -> Film:
    image = _open(data)
    original_size, original_mode, fmt = image.size, image.mode, image.format or "unknown"
    if min_size and fmt == "JPEG":
        # DCT scaling: each side stays >= the requested size; only JPEG has it.
        image.draft(image.mode, (min_size, min_size))
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise FilmError(f"refused as a decompression bomb: {exc}", code="decompression_bomb") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        code = "truncated" if "truncated" in text or isinstance(exc, EOFError) else "corrupt"
        raise FilmError(f"cannot decode the {fmt} data: {text or type(exc).__name__}", code=code) from None
    except Exception as exc:
        raise FilmError(f"cannot decode the {fmt} data: {exc}", code="corrupt") from None
    grey, spread = to_grey(image)
    return Film(grey, original_size, original_mode, fmt, spread)


def to_grey(image: Image.Image) -> tuple[Image.Image, float]:
    """Any Pillow mode to mode "L"; also return how colourful the original was."""
    mode = image.mode
    spread = 0.0
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
        rgb = image.convert("RGB")
        spread = colour_spread(rgb)
        return rgb.convert("L"), spread
    if mode == "L":
        return image, spread
    if mode in ("LA", "La", "1"):
        return image.convert("L"), spread
    if mode.startswith("I") or mode == "F":
        return high_depth_to_grey(np.asarray(image)), spread
    raise FilmError(f"unsupported image mode {mode!r}", code="unsupported_mode")


def high_depth_to_grey(pixels: np.ndarray) -> Image.Image:
    """Stretch a 12/16-bit or float film linearly from its darkest to its brightest pixel.

    Scanners and digitisers rarely use the full 16-bit range, so a fixed divisor
    would leave most films nearly black; min-max keeps the film's own contrast.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    finite = np.isfinite(pixels)
    if not finite.any():
        raise FilmError("the film holds no finite pixel values", code="corrupt")
    low, high = float(pixels[finite].min()), float(pixels[finite].max())
    span = high - low if high > low else 1.0
    scaled = np.clip((np.where(finite, pixels, low) - low) * (255.0 / span), 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def colour_spread(rgb: Image.Image) -> float:
    """Mean absolute difference between colour channels, on a 64 px thumbnail.

    A grey film stored as RGB has identical channels (spread ~0, a little more
    after JPEG chroma subsampling); a colour photograph does not.
    """
    thumb = rgb.copy()
    thumb.thumbnail((64, 64))
    arr = np.asarray(thumb, dtype=np.int16)
    return float((np.abs(arr[..., 0] - arr[..., 1]).mean() + np.abs(arr[..., 1] - arr[..., 2]).mean()) / 2)
