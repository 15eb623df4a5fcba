"""Fuzzing the decode path: whatever bytes arrive, ``read_film`` returns a Film or raises FilmError.

Hypothesis drives ``read_film`` with random bytes, format headers followed by
garbage, and real PNG, JPEG, TIFF, BMP and DICOM files mutated by bit flips,
overwrites, insertions, deletions and truncation. The only acceptable outcomes
are a grey :class:`Film` or a :class:`FilmError` / :class:`MissingExtra` with a
code and a message: any other exception is a bug in the decode path.

The example counts add up to about 9,000 runs in roughly 30 s on 2 cores; CI
replays the same examples each time (derandomized). To search further, set
``PNEUMO_FUZZ_EXAMPLES`` (per test) for a larger, randomly seeded run.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pneumo_edge.edge.errors import FilmError, MissingExtra
from pneumo_edge.edge.films import Film, read_film

from dicom_files import make_dicom

REPO = Path(__file__).resolve().parents[1]
FULLRES = Path(os.environ.get("PNEUMO_SHARED_DATA", REPO.parent / "shared" / "data")) / "fullres"

EXAMPLES = int(os.environ.get("PNEUMO_FUZZ_EXAMPLES", "0"))

# Small files from other devices and encoders, shipped inside pydicom: RLE, JPEG 2000,
# YBR JPEG, signed CT with rescale, multi-frame dose, and a 12-bit JPEG Pillow cannot decode.
PYDICOM_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"
PYDICOM_SEEDS = ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm", "CT_small.dcm",
                 "rtdose_rle.dcm", "JPGExtended.dcm")

# Pillow and pydicom warn about the damage they read past; expected here by the thousand.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def fuzz_settings(examples: int):
    return settings(max_examples=EXAMPLES or examples, deadline=None, database=None,
                    derandomize=not EXAMPLES, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def dicom(pixels: np.ndarray, encoded: bytes | None = None, **elements) -> bytes:
    from pydicom.uid import JPEGBaseline8Bit

    return make_dicom(pixels, JPEGBaseline8Bit if encoded else None, encoded, instance_uid="1.2.3.4", **elements)


@functools.lru_cache(maxsize=1)
def seeds() -> tuple[bytes, ...]:
    """Small real films in every format the reader knows (small, so each run is fast)."""
    film = Image.open(sorted(FULLRES.glob("*.png"))[0]).convert("L").resize((40, 32))
    grey = np.asarray(film)
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = encode(film, "JPEG", quality=80)
    return (
        encode(film, "PNG"),
        encode(film.convert("RGB"), "PNG"),
        encode(film.convert("P"), "PNG"),
        encode(film.convert("LA"), "PNG"),
        encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"),
        jpeg,
        encode(film.convert("RGB"), "JPEG", quality=80, progressive=True, exif=exif),
        encode(film.convert("CMYK"), "JPEG"),
        encode(film, "TIFF"),
        encode(film, "TIFF", compression="tiff_deflate"),
        encode(Image.fromarray(grey.astype(np.uint16) * 40), "TIFF"),
        encode(film, "BMP"),
        dicom(grey),
        dicom(grey.astype(np.uint16) * 16, BitsStored=12, HighBit=11, RescaleSlope=2, RescaleIntercept=-10,
              WindowCenter=2000, WindowWidth=3000, PhotometricInterpretation="MONOCHROME1"),
        dicom(grey, encoded=jpeg),
        dicom(np.repeat(grey[..., None], 3, axis=-1)),
    ) + tuple((PYDICOM_FILES / name).read_bytes() for name in PYDICOM_SEEDS)


def check(data: bytes, min_size: int | None) -> None:
    try:
        film = read_film(data, min_size=min_size)
    except (FilmError, MissingExtra) as error:
        assert error.code and str(error)
        return
    assert isinstance(film, Film) and film.image.mode == "L"
    assert film.image.width >= 1 and film.image.height >= 1
    assert min(film.original_size) >= 1
    assert np.isfinite(film.colour_spread)


min_sizes = st.sampled_from([None, 16, 224])


@st.composite
def mutated(draw, header_only: bool = False) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 6))):
        limit = min(len(data), 400) if header_only else len(data)
        if limit == 0:
            break
        at = draw(st.integers(0, limit - 1))
        kind = draw(st.sampled_from(["flip", "byte", "insert", "delete", "duplicate", "truncate"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            data[at:at] = data[at: at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


MAGIC = [b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n",
         b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"II*\x00", b"MM\x00*", b"BM", bytes(128) + b"DICM",
         bytes(128) + b"DICM\x02\x00\x10\x00UI"]


@given(data=mutated(), min_size=min_sizes)
@fuzz_settings(4000)
def test_mutated_real_films(data, min_size):
    check(data, min_size)


@given(data=mutated(header_only=True), min_size=min_sizes)
@fuzz_settings(2500)
def test_mutated_headers(data, min_size):
    check(data, min_size)


@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=600), min_size=min_sizes)
@fuzz_settings(1500)
def test_format_headers_followed_by_garbage(magic, tail, min_size):
    check(magic + tail, min_size)


@given(data=st.binary(max_size=2000))
@fuzz_settings(1000)
def test_random_bytes(data):
    check(data, None)


@st.composite
def truncations(draw) -> bytes:
    data = draw(st.sampled_from(seeds()))
    return data[: draw(st.integers(0, len(data) - 1))]


@given(data=truncations(), min_size=min_sizes)
@fuzz_settings(500)
def test_truncations_of_real_films(data, min_size):
    check(data, min_size)
