"""One entry for every film: a path or bytes in, a grey :class:`Film` out, DICOM recognised by content."""

from __future__ import annotations

from pathlib import Path

from ..errors import FilmError
from .film import Film, Source
from .raster import read_raster


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

        return read_dicom(data, min_size)
    return read_raster(data, min_size)


def is_dicom(data: bytes) -> bool:
    """"DICM" after the 128-byte preamble, or a file meta group (0002,xxxx) where a file lacks one."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    return len(data) >= 8 and data[:2] == b"\x02\x00" and data[4:6] in (b"UL", b"OB", b"UI")


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
