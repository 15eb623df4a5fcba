"""Decoding raster films (JPEG, PNG, TIFF, BMP) with Pillow into a grey :class:`Film`.

Errors are :class:`FilmError` with a specific code, never a bare Pillow exception.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import FilmError
from . import opencv
from .film import MAX_PIXELS, Film, high_depth_to_grey, replicated_grey, to_grey
from .limits import check_decoded_bytes

# Truncated files are errors, not half-grey films.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Pillow formats tried (DICOM is recognised separately). Naming them keeps the
#: dozens of other Pillow plugins, some with magic numbers weak enough to take
#: random bytes for a tiny image, away from files that are not films. A JPEG with
#: a multi-picture index (many phone cameras) opens through "JPEG" as format "MPO".
FILM_FORMATS = ("JPEG", "PNG", "TIFF", "BMP")

#: A film decoded for a model (``min_size`` given) is box-reduced right after decoding,
#: by a whole factor that keeps its short side at least this many pixels (and at
#: least 4x the model's input): every later step (orientation, grey, quality gate,
#: heatmap) then works on megabytes, not a 12 MP film's tens of them.
REDUCED_SIDE = 1024

#: Bytes a pixel takes in Pillow's memory, by mode, once converted as to_grey
#: converts it (RGB, palette and the like take 4); modes not named take 4.
_PILLOW_PIXEL_BYTES = {"1": 1, "L": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}

# How each format's files begin: a file that starts like a film but that Pillow
# cannot identify is a damaged film, not a file of some other kind.
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"),
          (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def open_image(data: bytes, min_size: int | None = None) -> Image.Image:
    """Decode an image file's bytes (Pillow, or OpenCV where it gives the same pixels): loaded,
    upright, errors as :class:`FilmError`.

    The image keeps its own mode (RGB, I;16, P, ...), except what OpenCV decodes into
    grey already: a 16-bit grey PNG (stretched, as :func:`~.film.to_grey` stretches it)
    and an RGB film with equal channels (mode "L"). ``min_size`` enables JPEG draft
    mode as in :func:`read_film`.
    """
    return _decode(data, min_size)[0]


def _decode(data: bytes, min_size: int | None) -> tuple[Image.Image, tuple[int, int], str, str]:
    """The loaded upright image, and the original's size (upright), mode and format.

    Where OpenCV is installed and gives Pillow's pixels (:mod:`.opencv`), it decodes them;
    a 16-bit grey film it decodes is returned already stretched to grey (mode "L"), as
    :func:`~.film.to_grey` would stretch it. The stretch is per pixel, so it commutes
    with the EXIF turn, and such a film is never box-reduced (only 8-bit modes are).
    """
    image = _open(data)
    original_size, original_mode, fmt = image.size, image.mode, image.format or "unknown"
    if min_size and fmt in ("JPEG", "MPO"):
        # DCT scaling: each side stays >= the requested size; only JPEG has it.
        image.draft(image.mode, (min_size, min_size))
    pixels = opencv.decode(data, image)
    if pixels is None:
        _load(image, fmt)
    orientation = _orientation(image, loaded=pixels is None)
    if pixels is not None and pixels.dtype == np.uint16:
        image = high_depth_to_grey(pixels)
    else:
        if pixels is not None:
            # A grey film stored as RGB becomes its grey here, as to_grey would make it: the box
            # reduction and the turn give the same pixels on one channel as on three.
            image = Image.fromarray(pixels)  # 2-D: L, (h, w, 3): RGB
            grey = replicated_grey(image) if pixels.ndim == 3 else None
            image = image if grey is None else grey
        if min_size:
            image = _reduce(image, max(REDUCED_SIDE, 4 * min_size))
    upright = _upright(image, orientation)
    if upright.size != image.size:
        original_size = original_size[::-1]
    return upright, original_size, original_mode, fmt


def _load(image: Image.Image, fmt: str) -> None:
    """Pillow's decode, its failures as :class:`FilmError`."""
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


def _reduce(image: Image.Image, side: int) -> Image.Image:
    """Box-reduce by the largest whole factor that keeps the short side >= ``side``."""
    factor = min(image.size) // side
    if factor < 2 or image.mode not in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"):
        return image
    return image.reduce(factor)


def _orientation(image: Image.Image, *, loaded: bool) -> int:
    """The EXIF orientation tag (1 upright, 2 to 8 a flip or a turn); a broken EXIF block counts as
    upright: the pixels as stored are still the film. A PNG not yet loaded is read for it only
    from its header (:mod:`.opencv` leaves a PNG with metadata after its pixels to Pillow)."""
    try:
        if not loaded and image.format == "PNG" and "exif" not in image.info:
            return 1
        orientation = image.getexif().get(_ORIENTATION, 1)
    except Exception:
        return 1
    return orientation if orientation in _TRANSPOSE else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply the EXIF orientation, so a film photographed in portrait is not scored sideways.

    Phone cameras store the orientation as a tag instead of rotating the pixels.
    Only a tag that asks for a turn or a flip (2 to 8) costs a transposed copy
    (the transposition ``ImageOps.exif_transpose`` makes); a film without one is
    returned as it is.
    """
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


_ORIENTATION = 0x0112  # the EXIF tag
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


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
    check_decoded_bytes(width * height * _PILLOW_PIXEL_BYTES.get(image.mode, 4),
                        f"the {width} x {height} {image.mode} {image.format} image")
    return image


def read_raster(data: bytes, min_size: int | None) -> Film:
    image, original_size, original_mode, fmt = _decode(data, min_size)
    try:
        grey, spread = to_grey(image)
    except FilmError:
        raise
    except Exception as exc:  # e.g. a palette that does not match its pixels
        raise FilmError(f"cannot convert the {fmt} {original_mode} data to grey: {exc}", code="corrupt") from None
    return Film(grey, original_size, original_mode, fmt, spread)


