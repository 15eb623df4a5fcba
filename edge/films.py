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
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import FilmError

# Truncated files are errors, not half-grey films.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Largest film accepted, in pixels (a 12 MP phone photo and a 3000 x 2500 scan
#: fit with room to spare; a decompression bomb does not).
MAX_PIXELS = 64_000_000

#: File endings walked by batch scoring.
FILM_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")

#: Pillow formats tried (DICOM is recognised separately). Naming them keeps the
#: dozens of other Pillow plugins, some with magic numbers weak enough to take
#: random bytes for a tiny image, away from files that are not films. A JPEG with
#: a multi-picture index (many phone cameras) opens through "JPEG" as format "MPO".
FILM_FORMATS = ("JPEG", "PNG", "TIFF", "BMP")

# How each format's files begin: a file that starts like a film but that Pillow
# cannot identify is a damaged film, not a file of some other kind.
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"),
          (b"MM\x00*", "TIFF"), (b"BM", "BMP"))

Source = Union[str, os.PathLike, bytes]


@dataclass
class Film:
    """A decoded film: ``image`` is mode "L"; the rest describes the original."""

    image: Image.Image
    original_size: tuple[int, int]
    original_mode: str
    format: str
    colour_spread: float = 0.0  # colour not explained by a per-channel tint; 0 for grey films


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


def open_image(data: bytes, min_size: int | None = None) -> Image.Image:
    """Decode an image file's bytes with Pillow: loaded, upright, errors as :class:`FilmError`.

    The image keeps its own mode (RGB, I;16, P, ...); ``min_size`` enables JPEG
    draft mode as in :func:`read_film`.
    """
    return _decode(data, min_size)[0]


def _decode(data: bytes, min_size: int | None) -> tuple[Image.Image, tuple[int, int], str, str]:
    """The loaded upright image, and the original's size (upright), mode and format."""
    image = _open(data)
    original_size, original_mode, fmt = image.size, image.mode, image.format or "unknown"
    if min_size and fmt in ("JPEG", "MPO"):
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
    upright = _upright(image)
    if upright.size != image.size:
        original_size = original_size[::-1]
    return upright, original_size, original_mode, fmt


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so a film photographed in portrait is not scored sideways.

    Phone cameras store the orientation as a tag instead of rotating the pixels.
    A broken EXIF block leaves the pixels as stored: they are still the film.
    """
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _open(data: bytes) -> Image.Image:
    # Pillow only warns between its own limit and twice that; all of it is over
    # MAX_PIXELS, refused below. (No warnings filter here: it is process-wide,
    # and the web server decodes films in threads.)
    try:
        image = Image.open(io.BytesIO(data), formats=FILM_FORMATS)
    except Image.DecompressionBombError as exc:
        raise FilmError(f"refused as a decompression bomb: {exc}", code="decompression_bomb") from None
    except UnidentifiedImageError:
        fmt = next((name for magic, name in _MAGIC if data.startswith(magic)), None)
        if fmt:
            raise FilmError(f"a damaged {fmt} file: it starts like one, but its header cannot be read",
                            code="corrupt") from None
        raise FilmError("not a film in a format read here (JPEG, PNG, TIFF, BMP, DICOM): wrong extension, "
                        "or not an image at all", code="not_an_image") from None
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
    image, original_size, original_mode, fmt = _decode(data, min_size)
    try:
        grey, spread = to_grey(image)
    except FilmError:
        raise
    except Exception as exc:  # e.g. a palette that does not match its pixels
        raise FilmError(f"cannot convert the {fmt} {original_mode} data to grey: {exc}", code="corrupt") from None
    return Film(grey, original_size, original_mode, fmt, spread)


def to_grey(image: Image.Image) -> tuple[Image.Image, float]:
    """Any Pillow mode to mode "L"; also return how colourful the original was."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
        rgb = image.convert("RGB")
        return rgb.convert("L"), colour_spread(rgb)
    if mode == "L":
        return image, 0.0
    if mode in ("LA", "La", "1"):
        return image.convert("L"), 0.0
    if mode.startswith("I") or mode == "F":
        return high_depth_to_grey(np.asarray(image)), 0.0
    raise FilmError(f"unsupported image mode {mode!r}", code="unsupported_mode")


def high_depth_to_grey(pixels: np.ndarray) -> Image.Image:
    """Stretch a 12/16-bit or float film linearly from its darkest to its brightest pixel.

    Scanners and digitisers rarely use the full 16-bit range, so a fixed divisor
    would leave most films nearly black; min-max keeps the film's own contrast.
    Up to 16 bits the arithmetic is float32, in place: a 3000 x 2500 scan then
    needs 30 MB of working memory, not the 180 MB of float64 temporaries.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    if pixels.dtype.kind == "f":
        finite = np.isfinite(pixels)
        if not finite.any():
            raise FilmError("the film holds no finite pixel values", code="corrupt")
        low, high = float(pixels[finite].min()), float(pixels[finite].max())
        if not finite.all():
            pixels = np.where(finite, pixels, low)
    else:
        low, high = float(pixels.min()), float(pixels.max())
    span = high - low if high > low else 1.0
    scaled = np.subtract(pixels, low, dtype=np.float32 if pixels.dtype.itemsize <= 2 else np.float64)
    scaled *= 255.0 / span
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def colour_spread(rgb: Image.Image) -> float:
    """Colour that a tint cannot explain, on a 64 px thumbnail, in grey levels (0..255).

    Each channel is fitted as gain x grey + offset (least squares); the result is
    the 95th percentile of each pixel's mean absolute residual. A grey film stored
    as RGB scores 0, and so does a film photographed on a light box under a colour
    cast, which is exactly such a per-channel gain and offset (a plain mean
    |R-G|, |G-B| puts a warm cast at 13-16). The percentile, not the mean, is what
    sees colour confined to part of the picture, such as a Doppler overlay.
    """
    thumb = rgb.copy()
    thumb.thumbnail((64, 64))
    pixels = np.asarray(thumb, dtype=np.float64).reshape(-1, 3)
    grey = pixels.mean(axis=1)
    design = np.stack([grey, np.ones_like(grey)], axis=1)
    fit = np.linalg.lstsq(design, pixels, rcond=None)[0]
    return float(np.percentile(np.abs(pixels - design @ fit).mean(axis=1), 95))
