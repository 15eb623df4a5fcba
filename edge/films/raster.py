"""Decoding raster films (JPEG, PNG, TIFF, BMP) with Pillow into a grey :class:`Film`.

Errors are :class:`FilmError` with a specific code, never a bare Pillow exception.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import FilmError
from .film import MAX_PIXELS, Film, to_grey
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
    if min_size:
        image = _reduce(image, max(REDUCED_SIDE, 4 * min_size))
    upright = _upright(image)
    if upright.size != image.size:
        original_size = original_size[::-1]
    return upright, original_size, original_mode, fmt


def _reduce(image: Image.Image, side: int) -> Image.Image:
    """Box-reduce by the largest whole factor that keeps the short side >= ``side``."""
    factor = min(image.size) // side
    if factor < 2 or image.mode not in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"):
        return image
    return image.reduce(factor)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so a film photographed in portrait is not scored sideways.

    Phone cameras store the orientation as a tag instead of rotating the pixels.
    Only a tag that asks for a turn or a flip (2 to 8) costs a transposed copy;
    a film without one is returned as it is. A broken EXIF block leaves the pixels
    as stored: they are still the film.
    """
    try:
        if image.getexif().get(_ORIENTATION, 1) not in _TRANSPOSED:
            return image
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


_ORIENTATION = 0x0112  # the EXIF tag; 1 is upright, 2 to 8 each a flip or a turn
_TRANSPOSED = range(2, 9)


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


