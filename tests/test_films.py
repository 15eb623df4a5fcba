"""Decoding films from every format and mode into one grey 8-bit image, and the errors for bad ones."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.edge.errors import FilmError
from pneumo_edge.edge.films import Film, read_film
from pneumo_edge.edge.preprocess import PreprocessSpec, to_tensor
from pneumo_edge.edge.quality import check_film, grey_spread

from dicom_files import make_dicom

SIDE = 224


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def film(fullres_dir) -> Image.Image:
    """A real full-size grey film (mode L) that spans 0..255, so min-max stretching is the identity."""
    for path in sorted(fullres_dir.glob("*.png")):
        image = Image.open(path).convert("L")
        low, high = image.getextrema()
        if (low, high) == (0, 255):
            return image
    pytest.fail("no full-size film spans 0..255")


@pytest.fixture(scope="module")
def grey(film) -> np.ndarray:
    return np.asarray(film)


def grey_of(data: bytes, **kwargs) -> np.ndarray:
    result = read_film(data, **kwargs)
    assert isinstance(result, Film) and result.image.mode == "L"
    return np.asarray(result.image)


def test_mode_l_png_is_read_unchanged(film, grey):
    result = read_film(encode(film, "PNG"))
    assert (result.original_mode, result.format, result.original_size) == ("L", "PNG", film.size)
    assert np.array_equal(np.asarray(result.image), grey)
    assert result.colour_spread == 0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P"])
def test_grey_film_in_8_bit_modes_reads_as_the_same_grey(film, grey, mode):
    data = encode(film.convert(mode), "PNG")
    result = read_film(data)
    assert result.original_mode == mode
    assert np.abs(grey_of(data).astype(int) - grey).max() <= 1
    assert result.colour_spread < 1e-6
    check_film(result, SIDE)


def test_cmyk_film_decodes_and_passes_the_gate_when_grey(film, grey):
    for fmt in ("TIFF", "JPEG"):
        data = encode(film.convert("CMYK"), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        result = read_film(data)
        assert result.original_mode == "CMYK"
        assert np.abs(grey_of(data).astype(int) - grey).mean() < 2
        check_film(result, SIDE)  # grey in CMYK is still grey


def test_colourful_cmyk_jpeg_is_refused_by_the_gate(colour_photo):
    result = read_film(encode(colour_photo.convert("CMYK"), "JPEG", quality=90))
    assert result.original_mode == "CMYK"
    with pytest.raises(FilmError) as error:
        check_film(result, SIDE)
    assert error.value.code == "quality_colour"


def test_palette_film_with_a_grey_palette(film, grey):
    data = encode(film.quantize(64), "PNG")
    result = read_film(data)
    assert result.original_mode == "P"
    assert np.abs(grey_of(data).astype(int) - grey).mean() < 3
    check_film(result, SIDE)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_film_is_stretched_to_the_same_8_bit_film(film, grey, fmt):
    data = encode(Image.fromarray(grey.astype(np.uint16) * 257), fmt)
    result = read_film(data)
    assert result.original_mode.startswith("I;16")
    assert np.array_equal(grey_of(data), grey)


def test_16_bit_scan_using_part_of_the_range_is_stretched_min_to_max(grey):
    scan = (grey.astype(np.uint16) * 12 + 3000)  # a 12-bit-ish digitiser, offset, not full range
    out = grey_of(encode(Image.fromarray(scan), "PNG"))
    assert (out.min(), out.max()) == (0, 255)
    assert np.abs(out.astype(int) - grey).max() <= 1


def test_32_bit_integer_and_float_films(grey):
    as_int = Image.fromarray(grey.astype(np.int32) * 1000 - 70000, mode="I")
    assert np.array_equal(grey_of(encode(as_int, "TIFF")), grey)
    as_float = Image.fromarray(grey.astype(np.float32) / 255.0, mode="F")
    assert np.abs(grey_of(encode(as_float, "TIFF")).astype(int) - grey).max() <= 1


def test_1_bit_film(film):
    data = encode(film.convert("1"), "PNG")
    result = read_film(data)
    assert result.original_mode == "1"
    assert set(np.unique(grey_of(data))) <= {0, 255}


@pytest.mark.parametrize("fmt, exact", [("PNG", True), ("TIFF", True), ("BMP", True), ("JPEG", False)])
def test_8_bit_formats(film, grey, fmt, exact):
    data = encode(film, fmt)
    result = read_film(data)
    assert result.format == fmt and result.original_size == film.size
    difference = np.abs(grey_of(data).astype(int) - grey)
    assert difference.max() == 0 if exact else difference.mean() < 2


def test_exif_orientation_of_a_phone_photo_is_applied(film):
    wide = film.crop((0, 0, 1024, 768))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": how phones store a portrait shot
    result = read_film(encode(wide, "JPEG", quality=95, exif=exif))
    assert result.original_size == (768, 1024) and result.image.size == (768, 1024)
    upright = np.asarray(wide.transpose(Image.Transpose.ROTATE_270))
    assert np.abs(np.asarray(result.image).astype(int) - upright).mean() < 2


@pytest.mark.parametrize("scaling", ["unit", "symmetric", "lite"])
@pytest.mark.parametrize("channels", [1, 3])
def test_to_tensor_shapes_dtypes_and_values(film, scaling, channels):
    spec = PreprocessSpec(size=SIDE, channels=channels, scaling=scaling)
    tensor = to_tensor(film, spec)
    assert tensor.shape == (SIDE, SIDE, channels) and tensor.dtype == np.float32
    pixels = np.asarray(film.resize((SIDE, SIDE), Image.BILINEAR, reducing_gap=3.0), dtype=np.float32)
    expected = {"unit": pixels / 255.0, "symmetric": pixels / 127.5 - 1.0, "lite": (pixels - 127.0) / 128.0}[scaling]
    for channel in range(channels):
        assert np.allclose(tensor[..., channel], expected, atol=1e-6)
    low, high = (0.0, 1.0) if scaling == "unit" else (-1.0, 1.0)
    assert tensor.min() >= low and tensor.max() <= high


def test_percentile_normalisation_undoes_a_scanner_s_exposure_and_contrast(film):
    """A flat, bright copy of a film (as another scanner might give it) comes out of the
    normalised preprocessing close to the original; without it, far from it."""
    spec, plain = PreprocessSpec(size=SIDE, normalise="percentile"), PreprocessSpec(size=SIDE)
    pixels = np.asarray(film, dtype=np.float32)
    washed = Image.fromarray(np.clip(pixels * 0.6 + 90, 0, 255).astype(np.uint8))
    assert np.abs(to_tensor(washed, plain) - to_tensor(film, plain)).mean() > 0.15
    assert np.abs(to_tensor(washed, spec) - to_tensor(film, spec)).mean() < 0.03
    normalised = to_tensor(film, spec)
    assert normalised.min() == -1.0 and normalised.max() == 1.0
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert PreprocessSpec.from_dict({"size": SIDE}).normalise == "none", "cards from before the option"


def test_16_bit_film_gives_the_8_bit_film_tensor(grey):
    spec = PreprocessSpec(size=SIDE)
    eight = to_tensor(read_film(encode(Image.fromarray(grey), "PNG")).image, spec)
    sixteen = to_tensor(read_film(encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG")).image, spec)
    assert np.abs(eight - sixteen).max() < 1e-6


@pytest.fixture(scope="module")
def twelve_megapixel_jpeg(film) -> bytes:
    """A phone-sized photo of the film: upscaled to 4000 x 3000 (12 MP), saved as JPEG."""
    return encode(film.convert("RGB").resize((4000, 3000), Image.BILINEAR), "JPEG", quality=90)


def test_12_megapixel_jpeg_decodes_in_draft_mode_close_to_the_full_decode(twelve_megapixel_jpeg):
    spec = PreprocessSpec(size=SIDE)
    small = read_film(twelve_megapixel_jpeg, min_size=SIDE)
    full = read_film(twelve_megapixel_jpeg)
    assert small.original_size == full.original_size == (4000, 3000)
    assert full.image.size == (4000, 3000)
    assert SIDE <= min(small.image.size) and max(small.image.size) <= 4000 // 4  # DCT-scaled at decode
    difference = np.abs(to_tensor(small.image, spec) - to_tensor(full.image, spec))
    assert difference.mean() < 0.005 and difference.max() < 0.1  # symmetric scaling: 2.0 is the full range
    check_film(small, SIDE)


def test_phone_jpeg_with_a_multi_picture_index_also_decodes_in_draft_mode(film):
    photo = film.convert("RGB").resize((2000, 1500), Image.BILINEAR)
    data = encode(photo, "MPO", save_all=True, append_images=[photo.resize((320, 240))])
    result = read_film(data, min_size=SIDE)
    assert result.format == "MPO" and result.original_size == (2000, 1500)
    assert result.image.size == (500, 375)  # 1/4 scale: the smallest that keeps both sides >= 224


# -- bad input: each gets its own code ------------------------------------------------------------


@pytest.fixture(scope="module")
def colour_photo() -> Image.Image:
    """A colourful picture: hue across, brightness down; nothing like a radiograph."""
    hue = np.tile(np.linspace(0, 255, 512), (384, 1))
    value = np.tile(np.linspace(80, 255, 384)[:, None], (1, 512))
    hsv = np.stack([hue, np.full_like(hue, 170), value], axis=-1).astype(np.uint8)
    return Image.fromarray(hsv, mode="HSV").convert("RGB")


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 70-byte PNG whose header claims a 10-gigapixel image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def dicom_without_pixels() -> bytes:
    pytest.importorskip("pydicom")
    return make_dicom(None)


def test_bomb_png_is_tiny():
    assert len(bomb_png()) < 100


@pytest.mark.parametrize("case, code", [
    ("zero bytes", "empty_file"),
    ("text named .png", "not_an_image"),
    ("random bytes", "not_an_image"),
    ("truncated png", "truncated"),
    ("truncated jpeg", "truncated"),
    ("corrupt png data", "corrupt"),
    ("corrupt jpeg header", "corrupt"),
    ("decompression bomb", "decompression_bomb"),
    ("over the pixel limit", "decompression_bomb"),
    ("dicom without pixel data", "dicom_no_pixels"),
])
def test_bad_files_get_their_own_error_code(film, tmp_path, case, code):
    png, jpeg = encode(film, "PNG"), encode(film, "JPEG")
    corrupt_png = bytearray(png)
    corrupt_png[len(png) // 2: len(png) // 2 + 64] = bytes(64)
    corrupt_jpeg = bytearray(jpeg)
    corrupt_jpeg[2:40] = b"\xff\xc0" + bytes(36)  # a frame header with no size or components
    data = {
        "zero bytes": b"",
        "text named .png": b"Patient notes: follow up in two weeks.\n" * 20,
        "random bytes": np.random.default_rng(4).bytes(5000),
        "truncated png": png[: len(png) // 2],
        "truncated jpeg": jpeg[: len(jpeg) // 2],
        "corrupt png data": bytes(corrupt_png),
        "corrupt jpeg header": bytes(corrupt_jpeg),
        "decompression bomb": bomb_png(),
        "over the pixel limit": bomb_png(9000, 8000),  # 72 MP: under Pillow's limit, over ours
        "over Pillow's warning limit": bomb_png(10000, 10000),  # Pillow only warns; we refuse
        "dicom without pixel data": dicom_without_pixels() if "dicom" in case else b"",
    }[case]
    path = tmp_path / ("film.dcm" if "dicom" in case else "film.png")
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(FilmError) as error:
            read_film(source)
        assert error.value.code == code, str(error.value)
        assert str(error.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FilmError) as error:
        read_film(tmp_path / "nothing.png")
    assert error.value.code == "not_found"
    with pytest.raises(FilmError) as error:
        read_film(tmp_path)
    assert error.value.code == "not_a_file"


# -- the quality gate ---------------------------------------------------------------------------


def gate_code(image: Image.Image, fmt: str = "PNG") -> str | None:
    try:
        check_film(read_film(encode(image, fmt)), SIDE)
    except FilmError as error:
        return error.code
    return None


def test_gate_passes_real_films(film):
    assert gate_code(film) is None
    assert gate_code(film.convert("RGB"), "JPEG") is None


def test_gate_one_pixel_image_is_too_small():
    assert gate_code(Image.new("L", (1, 1), 128)) == "quality_too_small"


def test_gate_film_smaller_than_the_model_input(film):
    assert gate_code(film.resize((SIDE - 1, SIDE * 2 - 2))) == "quality_too_small"


def test_gate_near_blank(film):
    assert gate_code(Image.new("L", (1024, 1024), 200)) == "quality_blank"
    faint = (np.asarray(film, dtype=np.float32) * 0.05 + 120).astype(np.uint8)  # a nearly white-out film
    assert gate_code(Image.fromarray(faint)) == "quality_blank"


def test_gate_colour_photograph(colour_photo):
    assert gate_code(colour_photo, "JPEG") == "quality_colour"


def test_gate_passes_a_film_photographed_under_a_colour_cast(grey):
    """A warm light box and a phone's white balance tint the whole film: still a grey film."""
    tinted = np.stack([grey * 1.0, grey * 0.93, grey * 0.8 + 5], axis=-1).clip(0, 255).astype(np.uint8)
    assert gate_code(Image.fromarray(tinted), "JPEG") is None


def test_gate_extreme_aspect(film):
    assert gate_code(film.resize((1024, 300))) == "quality_aspect"
    assert gate_code(film.resize((1024, 410))) is None  # 2.5:1 is the limit


# -- the fast path gives the tensor the original code gave -----------------------------------------


def reference_grey(data: bytes, min_size: int | None) -> Image.Image:
    """The readers as they were before the fast path (full EXIF transpose, RGB copy, float stretch):
    the oracle that every speed-up must match bit for bit."""
    from PIL import ImageOps

    image = Image.open(io.BytesIO(data))
    if min_size and image.format in ("JPEG", "MPO"):
        image.draft(image.mode, (min_size, min_size))
    image.load()
    if min_size:
        factor = min(image.size) // max(1024, 4 * min_size)
        if factor >= 2 and image.mode in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"):
            image = image.reduce(factor)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "P", "PA"):
        return image.convert("RGB").convert("L")
    if image.mode == "L":
        return image
    if image.mode in ("LA", "1"):
        return image.convert("L")
    pixels = np.asarray(image)
    finite = np.isfinite(pixels) if pixels.dtype.kind == "f" else np.ones(pixels.shape, bool)
    low, high = float(pixels[finite].min()), float(pixels[finite].max())
    scaled = np.subtract(pixels, low, dtype=np.float32)
    scaled[~finite] = 0.0
    scaled *= 255.0 / (high - low if high > low else 1.0)
    return Image.fromarray(np.rint(np.clip(scaled, 0, 255)).astype(np.uint8), mode="L")


def with_orientation(image: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, fmt, exif=exif, **({"quality": 92} if fmt == "JPEG" else {}))


def film_kinds(film: Image.Image, grey: np.ndarray, train_jpeg: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    noisy16 = np.clip(grey.astype(np.float32) * 11 + 2500 + rng.normal(0, 9, grey.shape), 0, 65535)
    photo = film.convert("RGB").resize((4000, 3000), Image.BILINEAR)
    tinted = np.stack([grey * 1.0, grey * 0.9, grey * 0.75 + 9], axis=-1)
    tinted = np.clip(tinted + rng.normal(0, 5, tinted.shape), 0, 255).astype(np.uint8)
    return {
        "training RGB JPEG": train_jpeg,
        "grey JPEG": encode(film, "JPEG", quality=90),
        "grey PNG": encode(film, "PNG"),
        "RGB PNG": encode(film.convert("RGB"), "PNG"),
        "RGBA PNG": encode(film.convert("RGBA"), "PNG"),
        "palette PNG": encode(film.quantize(64), "PNG"),
        "LA PNG": encode(film.convert("LA"), "PNG"),
        "CMYK JPEG": encode(film.convert("CMYK"), "JPEG", quality=90),
        "tinted noisy JPEG": encode(Image.fromarray(tinted), "JPEG", quality=90),
        "12 MP JPEG": encode(photo, "JPEG", quality=90),
        "12 MP JPEG, EXIF orientation 6": with_orientation(photo, 6),
        "JPEG, EXIF orientation 1": with_orientation(film, 1),
        "JPEG, EXIF orientation 3": with_orientation(film, 3),
        "JPEG, EXIF orientation 8": with_orientation(film.crop((0, 0, 1024, 700)), 8),
        "PNG, EXIF orientation 6": with_orientation(film, 6, "PNG"),
        "MPO": encode(photo.resize((2000, 1500)), "MPO", save_all=True, append_images=[photo.resize((320, 240))]),
        "16-bit PNG, part of the range, noisy": encode(Image.fromarray(noisy16.astype(np.uint16)), "PNG"),
        "16-bit TIFF, full range": encode(Image.fromarray(grey.astype(np.uint16) * 257), "TIFF"),
        "16-bit PNG, one value": encode(Image.new("I;16", (400, 300), 1234), "PNG"),
        "32-bit integer TIFF": encode(Image.fromarray(grey.astype(np.int32) * 1000 - 70000, mode="I"), "TIFF"),
        "float TIFF": encode(Image.fromarray(grey.astype(np.float32) / 255.0, mode="F"), "TIFF"),
    }


@pytest.fixture(scope="module")
def kinds(film, grey, train_dir) -> dict[str, bytes]:
    return film_kinds(film, grey, (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes())


@pytest.mark.parametrize("min_size", [None, SIDE])
def test_every_kind_of_film_decodes_to_the_grey_pixels_of_the_original_code(kinds, min_size):
    for name, data in kinds.items():
        expected = np.asarray(reference_grey(data, min_size))
        assert np.array_equal(grey_of(data, min_size=min_size), expected), name


def test_16_bit_table_stretch_equals_the_float_arithmetic_on_every_value():
    from pneumo_edge.edge.films.film import high_depth_to_grey

    rng = np.random.default_rng(3)
    for dtype, low, high in ((np.uint16, 0, 65535), (np.uint16, 3001, 3417), (np.int16, -2000, 1500),
                             (np.uint8, 3, 200)):
        pixels = rng.integers(low, high + 1, size=(300, 257), dtype=np.int64).astype(dtype)
        pixels.flat[:2] = low, high
        scaled = np.subtract(pixels, float(low), dtype=np.float32)
        scaled *= 255.0 / (high - low)
        expected = np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)
        assert np.array_equal(np.asarray(high_depth_to_grey(pixels)), expected), (dtype, low, high)


def test_the_colour_check_on_a_reduced_copy_keeps_its_verdicts(colour_photo, grey):
    from pneumo_edge.edge.films.film import colour_spread

    assert colour_spread(Image.fromarray(grey).convert("RGB")) < 1e-9
    tinted = np.stack([grey * 1.0, grey * 0.93, grey * 0.8 + 5], axis=-1).clip(0, 255).astype(np.uint8)
    assert colour_spread(Image.fromarray(tinted)) < 1.1
    assert colour_spread(colour_photo) > 20


def test_a_grey_film_stored_as_rgb_reads_as_pillow_s_grey_of_it_on_every_level():
    """Equal channels take the short way (the red channel, no colour fit): the same grey as convert("L")."""
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = Image.fromarray(np.repeat(levels[..., np.newaxis], 3, axis=-1))
    result = read_film(encode(rgb, "PNG"))
    assert np.array_equal(np.asarray(result.image), np.asarray(rgb.convert("L")))
    assert result.colour_spread == 0.0


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])  # OpenCV's planes (with the [fast] extra) and Pillow's
def test_an_rgb_film_with_one_coloured_pixel_is_not_taken_for_grey(fmt):
    """One pixel whose channels differ sends the film down the colour path: Pillow's grey and a fit."""
    levels = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16)[..., np.newaxis], 3, axis=-1)
    levels[15, 15] = (250, 10, 10)
    rgb = Image.fromarray(levels)
    result = read_film(encode(rgb, fmt))
    assert np.array_equal(np.asarray(result.image), np.asarray(rgb.convert("L")))
    assert result.colour_spread > 0.0


def test_the_grey_spread_is_the_exact_standard_deviation():
    rng = np.random.default_rng(3)
    for pixels in (rng.integers(0, 256, (224, 224), dtype=np.uint8), np.full((64, 64), 7, np.uint8),
                   np.tile(np.array([0, 255], np.uint8), (1024, 512)), rng.integers(118, 123, (5, 9), dtype=np.uint8)):
        exact = float(np.std(pixels.astype(np.float64)))
        assert grey_spread(pixels) == pytest.approx(exact, rel=1e-12, abs=1e-12)
        assert grey_spread(pixels) == pytest.approx(float(pixels.astype(np.float32).std()), rel=1e-5, abs=1e-5)
    assert grey_spread(np.full((3, 3), 9.5, np.float32)) == 0.0  # not uint8: numpy's float std
