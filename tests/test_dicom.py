"""DICOM films: modality LUT, VOI LUT or window, MONOCHROME1, frames, colour, codecs and bad files."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.errors import FilmError, MissingExtra
from pneumo_edge.edge.films import read_film
from pneumo_edge.edge.quality import check_film

from dicom_files import make_dicom

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.pixels import get_decoder  # noqa: E402
from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless  # noqa: E402


def grey(source) -> np.ndarray:
    return np.asarray(read_film(source).image).astype(int)


@pytest.fixture(scope="module")
def samples(fullres_dir):
    return fullres_dir / "chest_cr_monochrome1.dcm", fullres_dir / "chest_cr_monochrome2.dcm"


@pytest.fixture(scope="module")
def stored(samples) -> np.ndarray:
    """The sample's stored 8-bit pixels, as pydicom decodes its JPEG Baseline data."""
    return pydicom.dcmread(samples[1]).pixel_array


def test_jpeg_baseline_sample_decodes_to_its_stored_pixels(samples, stored):
    film = read_film(samples[1])
    assert (film.format, film.original_mode, film.original_size, film.image.mode) == (
        "DICOM", "DICOM MONOCHROME2", (1024, 1024), "L")
    assert np.array_equal(np.asarray(film.image), stored)  # 8 bits, no window: display values as stored
    check_film(film, 224)


def test_monochrome1_sample_is_shown_inverted(samples):
    """The MONOCHROME1 sample holds the same pixel data, so read correctly it is the negative."""
    film = read_film(samples[0])
    assert film.original_mode == "DICOM MONOCHROME1"
    assert np.array_equal(grey(samples[0]), 255 - grey(samples[1]))


def test_a_true_monochrome1_film_comes_out_as_the_monochrome2_film(stored):
    """A device that writes MONOCHROME1 stores 255 - x: after inversion, the same film."""
    mono2 = make_dicom(stored)
    mono1_native = make_dicom(255 - stored, PhotometricInterpretation="MONOCHROME1")
    assert np.array_equal(grey(mono1_native), grey(mono2))
    jpeg = io.BytesIO()
    Image.fromarray(255 - stored).save(jpeg, format="JPEG", quality=95)
    mono1_jpeg = make_dicom(255 - stored, syntax=JPEGBaseline8Bit, encoded=jpeg.getvalue(),
                            PhotometricInterpretation="MONOCHROME1")
    difference = np.abs(grey(mono1_jpeg) - grey(mono2))
    assert difference.mean() < 1.5 and difference.max() < 40  # JPEG rounding only


def test_rescale_then_window_follows_the_standard():
    stored = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (64, 1))  # 12 bits, 0..4080
    slope, intercept, centre, width = 2.0, -1024.0, 1500.0, 3001.0
    data = make_dicom(stored, BitsStored=12, HighBit=11, RescaleSlope=slope, RescaleIntercept=intercept,
                      WindowCenter=centre, WindowWidth=width)
    value = stored * slope + intercept
    # PS3.3 C.11.2.1.2.1, LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1], times 255
    expected = np.clip((value - (centre - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
    assert np.abs(grey(data) - expected).max() <= 1


def test_a_window_wider_than_the_film_is_not_stretched():
    stored = np.tile(np.arange(1000, 1256, dtype=np.uint16), (64, 1))
    data = make_dicom(stored, BitsStored=12, HighBit=11, WindowCenter=1128.0, WindowWidth=4000.0)
    out = grey(data)
    assert 0 < out.min() and out.max() < 255 and out.max() - out.min() < 20


def test_voi_lut_sequence_is_applied():
    stored = np.tile(np.arange(0, 1024, 4, dtype=np.uint16), (64, 1))  # 10 bits
    lut = (np.sqrt(np.arange(1024) / 1023) * 4095).round().astype(np.uint16)  # a gamma curve, 12-bit output
    item = Dataset()
    item.add_new(0x00283002, "US", [1024, 0, 12])  # LUT Descriptor: entries, first value mapped, bits
    item.add_new(0x00283006, "OW", lut.astype("<u2").tobytes())  # LUT Data
    data = make_dicom(stored, BitsStored=10, HighBit=9, VOILUTSequence=[item])
    expected = lut[stored] / 4095 * 255
    assert np.abs(grey(data) - expected).max() <= 1


def test_16_bit_without_window_is_stretched_min_to_max():
    stored = np.tile(np.arange(20000, 20256, dtype=np.uint16), (64, 1))
    out = grey(make_dicom(stored))
    assert (out.min(), out.max()) == (0, 255)
    assert np.array_equal(out[0], np.arange(256))


def test_multi_frame_is_refused_not_read_as_its_first_frame(stored):
    frames = np.stack([stored[:256, :256], 255 - stored[:256, :256], stored[256:512, :256]])
    with pytest.raises(FilmError) as error:
        read_film(make_dicom(frames))
    assert error.value.code == "dicom_multiframe" and "3 frames" in str(error.value)


def test_colour_dicom_is_converted_and_left_to_the_quality_gate(stored):
    grey_rgb = np.repeat(stored[..., None], 3, axis=-1)
    check_film(read_film(make_dicom(grey_rgb)), 224)
    rng = np.random.default_rng(0)
    photo = np.stack([stored, np.roll(stored, 300, axis=1), rng.integers(0, 256, stored.shape)], -1)
    film = read_film(make_dicom(photo.astype(np.uint8)))
    assert film.original_mode == "DICOM RGB"
    with pytest.raises(FilmError) as error:
        check_film(film, 224)
    assert error.value.code == "quality_colour"


def film_error(data: bytes) -> FilmError:
    with pytest.raises(FilmError) as error:
        read_film(data)
    return error.value


def test_no_pixel_data(stored):
    error = film_error(make_dicom(None))
    assert error.code == "dicom_no_pixels" and "Pixel Data" in str(error)


def test_unsupported_transfer_syntax(stored):
    error = film_error(make_dicom(stored, syntax="1.2.826.0.1.3680043.9.9999.1", encoded=b"\x00" * 64))
    assert error.code == "dicom_codec" and "not supported" in str(error)


def test_missing_decoder_names_what_to_install(stored):
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    error = film_error(make_dicom(stored, syntax=JPEGLSLossless, encoded=b"\xff\xd8" + b"\x00" * 64))
    assert error.code == "dicom_codec" and "JPEG-LS" in str(error) and "pylibjpeg" in str(error)


def test_truncated_files(samples, stored):
    compressed = samples[1].read_bytes()
    assert film_error(compressed[: len(compressed) // 2]).code == "truncated"
    native = make_dicom(stored)
    assert film_error(native[: len(native) - 5000]).code == "truncated"


def test_corrupt_pixel_data_and_invalid_window(stored):
    jpeg = io.BytesIO()
    Image.fromarray(stored).save(jpeg, format="JPEG")
    damaged = jpeg.getvalue()[:600] + bytes(len(jpeg.getvalue()) - 600)  # scan data zeroed
    error = film_error(make_dicom(stored, syntax=JPEGBaseline8Bit, encoded=damaged))
    assert error.code == "dicom_corrupt", str(error)
    assert film_error(make_dicom(stored, WindowCenter=100.0, WindowWidth=0.0)).code == "dicom_voi"


def test_image_too_large_is_refused_before_decoding():
    error = film_error(make_dicom(np.zeros((4, 4), np.uint8), Rows=60000, Columns=60000))
    assert error.code == "decompression_bomb"


def test_without_pydicom_the_error_names_the_extra(samples, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)  # makes `import pydicom` fail
    with pytest.raises(MissingExtra) as error:
        read_film(samples[1])
    assert error.value.code == "dicom_unavailable"
    assert str(error.value) == "reading DICOM needs pydicom: pip install 'pneumo-edge[dicom]'"


def test_a_dicom_film_scores_like_the_same_film_as_png(stored, tmp_path):
    """Native (uncompressed) pixels; a JPEG frame scores as its .jpg does (the test above).

    The sample is an adult's film, which the default model refuses as out of scope: scored anyway,
    since what is compared here is the reading."""
    classifier = Classifier(Options(allow_out_of_scope=True))
    png, dicom = tmp_path / "film.png", tmp_path / "film.dcm"
    Image.fromarray(stored).save(png)
    dicom.write_bytes(make_dicom(stored))
    from_dicom, from_png = classifier.predict(dicom), classifier.predict(png)
    assert from_dicom.probability == from_png.probability and from_dicom.label == from_png.label


# -- real files from other devices: the test files that ship inside pydicom -----------------------

PYDICOM_FILES = __import__("pathlib").Path(pydicom.__file__).parent / "data" / "test_files"


def test_one_mr_film_in_five_encodings_reads_the_same():
    """Native little- and big-endian, implicit VR, RLE and JPEG 2000 lossless of the same MR slice."""
    films = [grey(PYDICOM_FILES / f"MR_small{suffix}.dcm")
             for suffix in ("", "_bigendian", "_implicit", "_RLE", "_jp2klossless")]
    assert all(np.array_equal(films[0], other) for other in films[1:])
    dataset = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    centre, width = float(dataset.WindowCenter), float(dataset.WindowWidth)  # 600, 1600
    expected = np.clip((dataset.pixel_array - (centre - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
    assert np.abs(films[0] - expected).max() <= 1


def test_signed_ct_with_rescale():
    film = read_film(PYDICOM_FILES / "CT_small.dcm")
    dataset = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    assert dataset.PixelRepresentation == 1 and float(dataset.RescaleIntercept) != 0
    assert film.original_mode == "DICOM MONOCHROME2" and film.original_size == (128, 128)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    expected = (hounsfield - hounsfield.min()) / (hounsfield.max() - hounsfield.min()) * 255
    assert np.abs(np.asarray(film.image).astype(int) - expected).max() <= 1


def test_colour_doppler_ultrasound_is_refused_by_the_gate():
    film = read_film(PYDICOM_FILES / "examples_rgb_color.dcm")
    assert film.original_mode == "DICOM RGB"
    with pytest.raises(FilmError) as error:
        check_film(film, 224)
    assert error.value.code == "quality_colour"


@pytest.mark.parametrize("name, code", [
    ("MR_truncated.dcm", "truncated"),
    ("reportsi.dcm", "dicom_no_pixels"),
    ("test-SR.dcm", "dicom_no_pixels"),
])
def test_real_files_that_are_not_films(name, code):
    assert film_error((PYDICOM_FILES / name).read_bytes()).code == code


def test_12_bit_jpeg_without_a_decoder_for_it():
    if "pillow" != ",".join(get_decoder(pydicom.uid.JPEGExtended12Bit).available_plugins):
        pytest.skip("a 12-bit JPEG decoder is installed here")
    error = film_error((PYDICOM_FILES / "JPGExtended.dcm").read_bytes())
    assert error.code == "dicom_codec" and "12-bit" in str(error) and "\n" not in str(error)


def test_bounds_read_deflated_and_preamble_less_files_and_frame_headers(stored, samples):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from pneumo_edge.edge.films.dicom_bounds import codestream_size

    assert np.array_equal(grey(make_dicom(stored, syntax=DeflatedExplicitVRLittleEndian)), grey(make_dicom(stored)))
    whole = samples[1].read_bytes()
    assert np.array_equal(grey(whole[132:]), grey(whole))  # no preamble, no "DICM"
    for fmt in ("JPEG", "JPEG2000"):
        buffer = io.BytesIO()
        try:
            Image.fromarray(stored[:300, :200]).save(buffer, format=fmt)
        except (OSError, KeyError):  # Pillow built without OpenJPEG
            continue
        assert codestream_size(buffer.getvalue()) == (200, 300), fmt
    assert codestream_size(b"\x00" * 64) is None  # RLE and others: sized by the header alone


def test_a_jpeg_baseline_frame_scores_as_the_same_frame_saved_as_a_jpg(samples, tmp_path):
    """For a model (min_size given), the frame goes through the raster reader's draft-mode path:
    the same grey pixels, and so the same probability, as its .jpg; MONOCHROME1 is their negative."""
    from pydicom.encaps import generate_frames

    frame = next(generate_frames(pydicom.dcmread(samples[1]).PixelData, number_of_frames=1))
    jpg = tmp_path / "frame.jpg"
    jpg.write_bytes(frame)
    as_jpg = read_film(jpg, min_size=224)
    for sample, invert in ((samples[1], False), (samples[0], True)):
        film = read_film(sample, min_size=224)
        assert film.image.size == as_jpg.image.size == (256, 256)  # decoded at 1/4 scale
        assert film.original_size == (1024, 1024) and film.format == "DICOM"
        expected = np.asarray(as_jpg.image)
        assert np.array_equal(np.asarray(film.image), 255 - expected if invert else expected)
    classifier = Classifier(Options(allow_out_of_scope=True))  # an adult's film, scored to compare the reading
    assert classifier.predict(samples[1]).probability == classifier.predict(jpg).probability
