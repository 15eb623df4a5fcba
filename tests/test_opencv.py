"""The OpenCV decode path (the ``[fast]`` extra) gives Pillow's pixels and probabilities, and its errors.

Each film is read twice in one process: through OpenCV where it applies, and with it
turned off (the Pillow path every install has). Skipped where cv2 is not installed
(the tflite-runtime venv in CI), which runs the Pillow path alone.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.edge.errors import FilmError
from pneumo_edge.edge.films import opencv, read_film

pytest.importorskip("cv2", reason="OpenCV (the [fast] extra) is not installed: only the Pillow path is tested")

SIDE = 224
#: The kinds of test_films.film_kinds that OpenCV decodes; the rest are left to Pillow.
DECODED = ("grey PNG", "RGB PNG", "PNG, EXIF orientation 6", "16-bit PNG, part of the range, noisy",
           "16-bit PNG, one value", "grey PNG with gAMA", "2300 px RGB PNG, box-reduced")


def with_chunk(png: bytes, tag: bytes, body: bytes, *, before_idat: bool) -> bytes:
    """A PNG with one more chunk, just before its first IDAT or just before IEND."""
    chunk = struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    at = png.index(b"IDAT") - 4 if before_idat else png.index(b"IEND") - 4
    return png[:at] + chunk + png[at:]


@pytest.fixture(scope="module")
def kinds(fullres_dir, train_dir) -> dict[str, bytes]:
    from test_films import encode, film_kinds

    film = Image.open(sorted(fullres_dir.glob("*.png"))[1]).convert("L")
    kinds = film_kinds(film, np.asarray(film), (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes())
    grey_png = encode(film, "PNG")
    kinds["2300 px RGB PNG, box-reduced"] = encode(film.resize((2600, 2300)).convert("RGB"), "PNG")
    kinds["grey PNG with gAMA"] = with_chunk(grey_png, b"gAMA", struct.pack(">I", 45455), before_idat=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    kinds["PNG, EXIF orientation 6 after the pixels"] = with_chunk(grey_png, b"eXIf", exif.tobytes(),
                                                                    before_idat=False)
    return kinds


def pillow_only(monkeypatch):
    monkeypatch.setattr(opencv, "decode", lambda data, image: None)


def read_both(data: bytes, monkeypatch, **kwargs):
    used = []
    decode = opencv.decode

    def spy(data, image):
        pixels = decode(data, image)
        used.append(pixels is not None)
        return pixels

    with monkeypatch.context() as patch:
        patch.setattr(opencv, "decode", spy)
        fast = read_film(data, **kwargs)
    with monkeypatch.context() as patch:
        pillow_only(patch)
        slow = read_film(data, **kwargs)
    return fast, slow, any(used)


@pytest.mark.parametrize("min_size", [None, SIDE])
def test_opencv_gives_pillow_s_grey_pixels_on_every_kind(kinds, monkeypatch, min_size):
    for name, data in kinds.items():
        fast, slow, used = read_both(data, monkeypatch, min_size=min_size)
        assert used == (name in DECODED), name
        assert np.array_equal(np.asarray(fast.image), np.asarray(slow.image)), name
        assert (fast.original_size, fast.original_mode, fast.format) == \
               (slow.original_size, slow.original_mode, slow.format), name
        assert fast.colour_spread == slow.colour_spread, name


def test_the_same_probability_through_opencv_and_pillow(kinds, monkeypatch):
    from pneumo_edge.edge.classifier import Classifier, Options

    classifier = Classifier(Options(threads=1, allow_out_of_scope=True))
    for name in DECODED:
        if name == "16-bit PNG, one value":  # blank: refused by the gate either way
            continue
        fast = classifier.predict(kinds[name])
        with monkeypatch.context() as patch:
            pillow_only(patch)
            slow = classifier.predict(kinds[name])
        assert fast.probability == slow.probability, name
        assert fast.scope == slow.scope, name


def test_damaged_files_get_pillow_s_errors(kinds, monkeypatch):
    png = kinds["grey PNG"]
    damaged = {"truncated png": png[: len(png) // 2], "png without IEND": png[:-12],
               "png with a broken IDAT": png[:200] + bytes(64) + png[264:]}
    for name, data in damaged.items():
        outcomes = []
        for fast in (True, False):
            with monkeypatch.context() as patch:
                if not fast:
                    pillow_only(patch)
                try:
                    outcomes.append(np.asarray(read_film(data, min_size=SIDE).image))
                except FilmError as error:
                    outcomes.append((error.code, str(error)))
        same = (np.array_equal(*outcomes) if isinstance(outcomes[0], np.ndarray) and isinstance(outcomes[1], np.ndarray)
                else outcomes[0] == outcomes[1])
        assert same, name
