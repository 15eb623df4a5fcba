"""How much memory a film's pixels may take once decoded, checked before decoding.

The pixel count alone does not bound memory: 8000 x 8000 is 64 MB as 8-bit
grey but 256 MB as RGBA in Pillow (4 bytes a pixel) and 384 MB as 16-bit RGB
DICOM. Every reader computes the decoded size from the file's header (frames x
rows x columns x samples x bytes) and refuses it over :data:`MAX_DECODED_BYTES`.
The limit holds every real chest film: a 12 MP phone photo is 48 MB in Pillow,
a 16-bit 4300 x 4300 detector image 37 MB, a 64 MP 8-bit grey scan 64 MB.
"""

from __future__ import annotations

from ..errors import FilmError

MAX_DECODED_BYTES = 128 * 1024 * 1024


def check_decoded_bytes(size: int, what: str) -> None:
    """Raise :class:`FilmError` (``decompression_bomb``) when ``size`` bytes is over the limit."""
    if size > MAX_DECODED_BYTES:
        raise FilmError(f"refused: {what} would decode to {size / 2**20:,.0f} MiB, over the "
                        f"{MAX_DECODED_BYTES / 2**20:,.0f} MiB limit (a decompression bomb, or not a film)",
                        code="decompression_bomb")
