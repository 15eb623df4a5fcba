"""The hostile and heavy films of issue 12, built from children's films and pydicom.

Each builder takes a folder of full-size children's PNG films (:func:`fullsize_films` makes one
from the 224 px training films: the shared full-size films are adults', which the default
model refuses as out of scope) and returns the file's bytes. Shared by tests/test_web_hostile.py and
benchmarks/soak_web.py; :data:`CASES` says what the server must answer to each.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from dicom_files import make_dicom


def _png(width: int, height: int, colour_type: int, row: bytes) -> bytes:
    """A PNG of ``height`` identical rows, deflated row by row (no full image in memory)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    deflater, parts = zlib.compressobj(9), []
    line = b"\x00" + row  # filter type 0
    for _ in range(height):
        parts.append(deflater.compress(line))
    parts.append(deflater.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def fullsize_films(train_dir: Path, folder: Path, count: int = 12) -> Path:
    """Children's films at a scanner's size: 1024 x 1024 8-bit PNGs (two stored as RGBA with equal
    channels, as some of the shared full-size films are), upscaled from the training films, with
    a grain of +-4 grey levels so that they compress like scans (about 550 KB each)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sources = (sorted((train_dir / "NORMAL").glob("*.jpeg"))[:count // 2]
               + sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:count - count // 2])
    for i, source in enumerate(sources):
        grey = np.asarray(Image.open(source).convert("L").resize((1024, 1024), Image.BICUBIC), dtype=np.int16)
        film = Image.fromarray((grey + rng.integers(-4, 5, grey.shape)).clip(0, 255).astype(np.uint8))
        (film.convert("RGBA") if i in (1, 7) else film).save(folder / f"{source.stem}.png")
    return folder


def rgba_8000_png(films: Path) -> bytes:
    """8000 x 8000 RGBA, a few hundred KB: 256 MB once decoded by Pillow."""
    return _png(8000, 8000, 6, bytes([90, 90, 90, 255]) * 8000)


def _film(films: Path) -> Image.Image:
    return Image.open(sorted(films.glob("*.png"))[0]).convert("L")


def photo_12mp_png(films: Path) -> bytes:
    """A phone photo of a film on a light box: 4000 x 3000 RGB, warm cast and sensor noise."""
    grey = np.asarray(_film(films).resize((4000, 3000), Image.BILINEAR))
    noise = np.random.default_rng(12).integers(-4, 5, grey.shape, dtype=np.int16)
    levels = np.arange(256, dtype=np.float32)
    channels = [np.clip(np.rint(gain * levels + offset), 0, 255).astype(np.int16)[grey] + noise
                for gain, offset in ((1.0, 12), (0.93, 6), (0.8, 0))]
    rgb = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def scan_16bit_png(films: Path) -> bytes:
    """A 16-bit 3000 x 2500 scan of a film, using part of the 16-bit range as scanners do."""
    grey = np.asarray(_film(films).resize((3000, 2500), Image.BILINEAR)).astype("<u2")
    buffer = io.BytesIO()
    Image.fromarray(grey * 40 + 1000).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def deflated_dicom_bomb(films: Path) -> bytes:
    """A deflated DICOM: a 1024 x 1024 film, then 200 MB of trailing padding (a few hundred KB deflated)."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    film = np.asarray(_film(films))
    plain = make_dicom(film, syntax=ExplicitVRLittleEndian)
    meta_end = 132 + 12 + struct.unpack("<I", plain[140:144])[0]  # preamble, DICM, group length element
    deflated = make_dicom(film[:2, :2], syntax=DeflatedExplicitVRLittleEndian)
    meta = deflated[:132 + 12 + struct.unpack("<I", deflated[140:144])[0]]
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    padding = 200 * 2**20
    body = [deflater.compress(plain[meta_end:]),  # the film's dataset, then Data Set Trailing Padding
            deflater.compress(struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, padding))]
    zeros = bytes(2**22)
    body += [deflater.compress(zeros) for _ in range(padding // len(zeros))]
    return meta + b"".join(body) + deflater.flush()


def rle_rgb16_8000_dicom(films: Path) -> bytes:
    """RLE Lossless, RGB, 16 bits, 8000 x 8000 (384 MB decoded) in about 6 MB."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    segment_bytes = 8000 * 8000
    segment = b"\x81\x00" * (segment_bytes // 128)  # runs of 128 zeros
    offsets = [64 + i * len(segment) for i in range(6)]
    frame = struct.pack("<16I", 6, *offsets, *[0] * 9) + segment * 6
    return make_dicom(np.zeros((2, 2, 3), np.uint16), syntax=RLELossless, Rows=8000, Columns=8000,
                      PixelData=encapsulate([frame]))


def frame_size_mismatch_dicom(films: Path) -> bytes:
    """A header that says 512 x 512 around a JPEG frame of 13000 x 13000."""
    from pydicom.uid import JPEGBaseline8Bit

    buffer = io.BytesIO()
    Image.new("L", (13000, 13000), 128).save(buffer, "JPEG", quality=50)
    return make_dicom(np.zeros((512, 512), np.uint8), syntax=JPEGBaseline8Bit, encoded=buffer.getvalue())


def jpeg_baseline_dicom(films: Path) -> bytes:
    """A film as a JPEG Baseline DICOM, as computed-radiography readers write them."""
    from pydicom.uid import JPEGBaseline8Bit

    film = _film(films)
    buffer = io.BytesIO()
    film.save(buffer, "JPEG", quality=90)
    return make_dicom(np.asarray(film), syntax=JPEGBaseline8Bit, encoded=buffer.getvalue(),
                      instance_uid="1.2.826.0.1.3680043.8.498.1")


def no_preamble_dicom(films: Path) -> bytes:
    """:func:`jpeg_baseline_dicom` without its 128-byte preamble and "DICM" prefix."""
    return jpeg_baseline_dicom(films)[132:]


def multiframe_dicom(films: Path) -> bytes:
    """Three frames: the shared film, then two other films."""
    frames = sorted(films.glob("*.png"))[:3]
    return make_dicom(np.stack([np.asarray(Image.open(p).convert("L")) for p in frames]))


def float32_8000_tiff(films: Path) -> bytes:
    """8000 x 8000 float32, deflated: under 400 KB, 256 MB decoded."""
    buffer = io.BytesIO()
    Image.new("F", (8000, 8000), 0.5).save(buffer, "TIFF", compression="tiff_deflate")
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], bytes]
    status: int
    code: str | None  # None: scored
    message: str  # a part of the error the user sees ("" when scored)


CASES = (
    Case("rgba_8000_png", rgba_8000_png, 415, "decompression_bomb",
         "the 8000 x 8000 RGBA PNG image would decode to 244 MiB"),
    Case("photo_12mp_png", photo_12mp_png, 200, None, ""),
    Case("scan_16bit_png", scan_16bit_png, 200, None, ""),
    Case("deflated_dicom_bomb", deflated_dicom_bomb, 415, "decompression_bomb", "inflates to over"),
    Case("rle_rgb16_8000_dicom", rle_rgb16_8000_dicom, 415, "decompression_bomb",
         "1 frame(s) of 8000 x 8000 x 3 sample(s) x 2 byte(s) would decode to 366 MiB"),
    Case("frame_size_mismatch_dicom", frame_size_mismatch_dicom, 415, "dicom_frame_size",
         "frame is 13000 x 13000, but the DICOM header says 512 x 512"),
    Case("no_preamble_dicom", no_preamble_dicom, 200, None, ""),
    Case("multiframe_dicom", multiframe_dicom, 415, "dicom_multiframe", "multi-frame DICOM (3 frames)"),
    Case("float32_8000_tiff", float32_8000_tiff, 415, "decompression_bomb",
         "the 8000 x 8000 F TIFF image would decode to 244 MiB"),
)
