"""Bounding a DICOM file before anything large is allocated for it.

A DICOM file can ask for far more memory than its size: a deflated dataset
inflates without limit, a header can describe 8000 x 8000 x 3 samples of 16
bits, and an encapsulated JPEG frame can hold a picture much larger than the
Rows and Columns that the header states (the decoder then allocates for the
picture, not the header). Here the dataset is inflated with a cap, the size of
what will be decoded is checked from the header (frames x rows x columns x
samples x bytes), and the first encapsulated frame's own header (JPEG SOF,
JPEG-LS SOF55, JPEG 2000 SIZ) must agree with it, all before any pixel is decoded.
A multi-frame file is refused: which frame is the film is not something to guess.
"""

from __future__ import annotations

import io
import struct
import zlib

from ..errors import FilmError
from .limits import MAX_DECODED_BYTES, check_decoded_bytes

#: The non-pixel part of a dataset, allowed on top of the pixels when inflating.
HEADER_ALLOWANCE = 16 * 1024 * 1024

#: Bytes inflated per step.
INFLATE_PIECE = 4 * 1024 * 1024

#: Float pixels count 8 bytes a sample: pydicom's rescale and window work on float64 copies.
_BYTES_PER_ELEMENT = {"FloatPixelData": 8, "DoubleFloatPixelData": 8}


class _WholeRest(Exception):
    """pydicom asked for the rest of the file in one read."""


class _PartialReadsOnly(io.BytesIO):
    """The file as pydicom reads it, refusing a read of the rest of the file in one call.

    pydicom makes that call only to inflate a deflated dataset, and inflates without a
    cap: refusing it lets every other file be parsed once, and sends a deflated one
    to :func:`_inflate`, whose inflation is capped.
    """

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise _WholeRest
        return super().read(size)


def read_dataset(data: bytes):
    """Parse a DICOM file's bytes (with or without its preamble); a deflated dataset is inflated with a cap."""
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        return pydicom.dcmread(_PartialReadsOnly(data), force=True)
    except _WholeRest:  # a deflated dataset: inflated here, with a cap
        pass
    stream = io.BytesIO(data)
    read_preamble(stream, force=True)
    meta = _read_file_meta_info(stream)
    dataset = pydicom.dcmread(io.BytesIO(_inflate(stream.read())), force=True)
    dataset.file_meta = meta  # the pixels are native once inflated; the syntax still names the file
    return dataset


def _inflate(deflated: bytes) -> bytes:
    """Inflate a piece at a time, so a bomb costs at most the cap (zlib's own output buffer
    would grow by doubling, to twice that), and stop as soon as the cap is passed."""
    cap = MAX_DECODED_BYTES + HEADER_ALLOWANCE
    inflater, pieces, size = zlib.decompressobj(-zlib.MAX_WBITS), [], 0
    pending = deflated
    try:
        while pending or not inflater.eof:
            piece = inflater.decompress(pending, INFLATE_PIECE)
            pending = inflater.unconsumed_tail
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
            if size > cap:
                raise FilmError(f"refused: the deflated DICOM dataset inflates to over {cap / 2**20:,.0f} MiB "
                                "(a decompression bomb)", code="decompression_bomb")
    except zlib.error as exc:
        raise FilmError(f"the deflated DICOM dataset cannot be inflated: {exc}", code="dicom_corrupt") from None
    return b"".join(pieces)


def check_pixels(dataset, element: str) -> bytes | None:
    """Refuse, from the header, pixel data over the decode limit, multi-frame films and
    encapsulated frames whose own size disagrees with the header.

    Returns the encapsulated frame it checked (None for native pixels), so that the
    pixel data is split into its frame once.
    """
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bits = int(dataset.get("BitsAllocated", 8) or 8)
    width = _BYTES_PER_ELEMENT.get(element, max(1, -(-bits // 8)))
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        samples, width = 3, 2  # a palette expands each index to 3 samples of up to 16 bits
    check_decoded_bytes(frames * rows * columns * samples * width,
                        f"{frames} frame(s) of {columns} x {rows} x {samples} sample(s) x {width} byte(s)")
    if frames > 1:
        raise FilmError(f"a multi-frame DICOM ({frames} frames): this device scores one film per file; "
                        "export the frame to be read as its own file", code="dicom_multiframe")
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if element == "PixelData" and syntax is not None and syntax.is_encapsulated:
        return _checked_frame(dataset, syntax, rows, columns)
    return None


def _checked_frame(dataset, syntax, rows: int, columns: int) -> bytes:
    from pydicom.encaps import generate_frames

    try:
        frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
    except Exception as exc:
        raise FilmError(f"the encapsulated DICOM pixel data cannot be split into frames: {exc}",
                        code="dicom_corrupt") from None
    size = codestream_size(frame)  # None: RLE, or a codec whose decoder sizes by the header
    if size is not None and size != (columns, rows):
        raise FilmError(f"the {syntax.name} frame is {size[0]} x {size[1]}, but the DICOM header says "
                        f"{columns} x {rows}: refused before decoding", code="dicom_frame_size")
    return frame


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG, JPEG-LS or JPEG 2000 codestream's header; None for anything else."""
    if frame.startswith(b"\xff\xd8"):
        return _jpeg_size(frame)
    siz = frame.find(b"\xff\x4f\xff\x51", 0, 4096)  # J2K SOC + SIZ, bare or inside a JP2 box
    if siz >= 0:
        if len(frame) < siz + 24:
            raise FilmError("the JPEG 2000 frame's header is cut short", code="truncated")
        x, y, x0, y0 = struct.unpack(">IIII", frame[siz + 8:siz + 24])
        return x - x0, y - y0
    return None


#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, and JPEG-LS's SOF55).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def _jpeg_size(frame: bytes) -> tuple[int, int]:
    position = 2
    while position + 4 <= len(frame):
        if frame[position] != 0xFF:
            break
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = struct.unpack(">H", frame[position + 2:position + 4])[0]
        if marker in _SOF:
            if position + 9 > len(frame):
                break
            height, width = struct.unpack(">HH", frame[position + 5:position + 9])
            return width, height
        position += 2 + length
    raise FilmError("the JPEG frame in the DICOM file has no readable frame header", code="dicom_corrupt")
