"""Reading DICOM films (the ``[dicom]`` extra: pydicom >= 3).

A DICOM file stores raw detector values; what a radiologist sees comes from
three steps, applied here in the standard's order: the modality LUT (or rescale
slope and intercept), the VOI LUT (or window centre and width), and the
photometric interpretation (MONOCHROME1 means a low value is white, so it is
inverted). The result is the 8-bit grey film every other source produces.
Before any pixel is decoded the file is bounded (dicom_bounds.py): a multi-frame
file is refused (code ``dicom_multiframe``). Colour DICOM (RGB, YBR, palette) is
converted to RGB and left to the quality gate.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from ..errors import FilmError, MissingExtra, PneumoError
from .dicom_bounds import check_pixels, read_dataset
from .film import MAX_PIXELS, Film, high_depth_to_grey, to_grey

_PIXEL_ELEMENTS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
SCOPE_TAGS = ("PatientAge", "BodyPartExamined", "ViewPosition")


def read_dicom(data: bytes, min_size: int | None = None) -> Film:
    """Decode a DICOM file's bytes into a grey 8-bit :class:`Film`.

    ``min_size`` is the model's input side, as for :func:`~.read.read_film`: a grey
    JPEG Baseline frame is then decoded as a ``.jpg`` of it would be (draft mode,
    reduced), and the film's display transform applied to that.

    Raises :class:`MissingExtra` without pydicom, :class:`FilmError` otherwise
    (codes ``dicom_no_pixels``, ``dicom_codec``, ``dicom_voi``, ``dicom_corrupt``,
    ``dicom_multiframe``, ``dicom_frame_size``, ``truncated``, ``decompression_bomb``).
    """
    try:
        import pydicom  # noqa: F401  (only: is the extra installed?)
    except ImportError:
        raise MissingExtra("reading DICOM needs pydicom: pip install 'pneumo-edge[dicom]'",
                           code="dicom_unavailable") from None
    # pydicom warns about every odd value it reads past; a film that decodes is
    # fine, and one that does not gets a FilmError below. The one warning that
    # matters, a file cut short, is kept to name the error.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = read_dataset(data)
            truncated = any("End of file reached" in str(w.message) for w in caught)
            return _film(dataset, truncated, min_size)
        except PneumoError:
            raise
        except MemoryError:
            raise FilmError("not enough memory to decode this DICOM film", code="out_of_memory") from None
        except Exception as exc:  # pydicom converts values lazily: any access can raise
            raise FilmError(f"malformed DICOM file: {_one_line(exc)}", code="dicom_corrupt") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _decode_error(exc: Exception, syntax, decoder, *, truncated: bool) -> FilmError:
    """The pixel decoders' many failures, sorted into codes a user can act on."""
    text = _one_line(exc)
    if truncated or "less than expected" in text:
        return FilmError(f"the DICOM pixel data is cut short: {text}", code="truncated")
    if "decompression bomb" in text:
        return FilmError(f"refused as a decompression bomb: {text}", code="decompression_bomb")
    if "does not support" in text:  # e.g. Pillow and 12-bit JPEG Extended
        missing = "; ".join(decoder.missing_dependencies)
        return FilmError(f"the installed decoder cannot read this {syntax.name} data: {text}"
                         + (f"; install one of: {missing}" if missing else ""), code="dicom_codec")
    return FilmError(f"cannot decode the {syntax.name} pixel data: {text}", code="dicom_corrupt")


def _film(dataset, truncated: bool, min_size: int | None) -> Film:
    from pydicom.pixels import get_decoder, pixel_array

    if not any(name in dataset for name in _PIXEL_ELEMENTS):
        if truncated:
            raise FilmError("the DICOM file is cut short before its pixel data", code="truncated")
        if "Rows" in dataset:
            raise FilmError("the DICOM file describes an image but holds no Pixel Data element: "
                            "it is damaged, or its pixels were stripped", code="dicom_no_pixels")
        raise FilmError("the DICOM file holds no image (no Pixel Data element): a report, a "
                        "structured document or a presentation state, not a film", code="dicom_no_pixels")
    if "Rows" not in dataset or "Columns" not in dataset:
        raise FilmError("the DICOM pixel data has no Rows or Columns", code="dicom_corrupt")
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    if rows < 1 or columns < 1:
        raise FilmError(f"the DICOM image has no pixels ({columns} x {rows})", code="dicom_corrupt")
    if rows * columns > MAX_PIXELS:
        raise FilmError(f"refused: {columns} x {rows} is over the {MAX_PIXELS:,}-pixel limit",
                        code="decompression_bomb")
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is None:
        raise FilmError("the DICOM file names no transfer syntax", code="dicom_corrupt")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise FilmError(f"DICOM transfer syntax {syntax} ({syntax.name}) is not supported",
                        code="dicom_codec") from None
    if not decoder.is_available:
        raise FilmError(f"no decoder installed for {syntax.name}; install one of: "
                        + "; ".join(decoder.missing_dependencies), code="dicom_codec")
    frame = check_pixels(dataset, next(name for name in _PIXEL_ELEMENTS if name in dataset))
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    original_mode = f"DICOM {photometric}"
    reduced = _reduced_jpeg_frame(dataset, frame, syntax, photometric, min_size) if min_size else None
    if reduced is not None:
        return _grey_film(reduced, dataset, photometric, original_mode=original_mode)
    try:
        pixels = pixel_array(dataset)
    except Exception as exc:
        raise _decode_error(exc, syntax, decoder, truncated=truncated) from None
    if photometric == "PALETTE COLOR" or pixels.ndim == 3:
        return _colour_film(pixels, dataset, photometric, original_mode=original_mode)
    return _grey_film(pixels, dataset, photometric, original_mode=original_mode)


def _grey_film(pixels: np.ndarray, dataset, photometric: str, *, original_mode: str) -> Film:
    grey = _grey(pixels, dataset)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    size = (int(dataset.Columns), int(dataset.Rows))
    return Film(Image.fromarray(grey, mode="L"), size, original_mode, "DICOM", tags=_tags(dataset))


def _reduced_jpeg_frame(dataset, frame: bytes | None, syntax, photometric: str, min_size: int) -> np.ndarray | None:
    """A grey 8-bit JPEG Baseline frame decoded as the raster reader decodes a ``.jpg`` for a model
    (draft mode, box reduction): the pixels, or None for a frame this does not apply to.

    The same frame then scores as its ``.jpg`` does (a full decode scored it differently),
    and a 1024 px frame decodes at 256 px, several times faster. The display transform
    (modality LUT, window, MONOCHROME1) is applied to the reduced pixels.
    """
    from pydicom.uid import JPEGBaseline8Bit

    from .raster import open_image

    grey_8_bit = (int(dataset.get("SamplesPerPixel", 1) or 1) == 1 and int(dataset.get("BitsAllocated", 0)) == 8
                  and int(dataset.get("PixelRepresentation", 0) or 0) == 0)
    if (frame is None or syntax != JPEGBaseline8Bit or not grey_8_bit
            or photometric not in ("MONOCHROME1", "MONOCHROME2")):
        return None
    image = open_image(frame, min_size)
    return np.asarray(image) if image.mode == "L" else None


def _tags(dataset) -> dict:
    """The header fields the scope check believes: who, what and from where."""
    return {name: str(dataset.get(name)).strip() for name in SCOPE_TAGS if dataset.get(name) not in (None, "")}


def _grey(pixels: np.ndarray, dataset) -> np.ndarray:
    """Stored values -> modality LUT -> VOI LUT or window -> uint8 (MONOCHROME2 sense).

    An integer film goes through a table: the transform runs once on every value
    between the film's darkest and brightest pixel (at most 65,536), then each
    pixel is looked up, a block of rows at a time. pydicom's float64 transforms
    on the whole of a 3000 x 3000 film took 2 s and 380 MB more memory.
    """
    if pixels.dtype.kind in "iu" and pixels.dtype.itemsize <= 2:
        low, high = int(pixels.min()), int(pixels.max())
        table = _display(np.arange(low, high + 1, dtype=pixels.dtype).reshape(1, -1), dataset).ravel()
        if pixels.dtype == table.dtype == np.uint8 and np.array_equal(table, np.arange(low, high + 1)):
            return pixels  # the transform leaves every value as it is (8-bit, no window): nothing to look up
        grey = np.empty(pixels.shape, dtype=np.uint8)
        for start in range(0, pixels.shape[0], 256):
            grey[start:start + 256] = table[pixels[start:start + 256].astype(np.int32) - low]
        return grey
    return _display(pixels, dataset)


def _display(pixels: np.ndarray, dataset) -> np.ndarray:
    """The transform itself, on a 2-D array of stored values."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(pixels, dataset)
    lut = dataset.get("VOILUTSequence")  # pydicom prefers it to a window when both are present
    if lut or ("WindowCenter" in dataset and "WindowWidth" in dataset):
        try:
            if lut:
                entries, first = int(lut[0].LUTDescriptor[0]) or 65536, int(lut[0].LUTDescriptor[1])
                values = np.rint(values).astype(np.int32)  # a LUT is indexed by whole numbers
                probe = np.arange(first, first + entries)  # every entry of the table
            else:
                probe = np.array([-1e12, 1e12])  # the window's floor and ceiling
            shown = apply_voi_lut(values, dataset)
            # The transform's output range: a window wider than the film must not
            # be stretched to full contrast, as a min-max stretch would do.
            bounds = apply_voi_lut(probe, dataset)
        except Exception as exc:  # a malformed window or table, whichever way it is malformed
            raise FilmError(f"the DICOM window or VOI LUT cannot be applied: {exc}", code="dicom_voi") from None
        low, high = float(np.min(bounds)), float(np.max(bounds))
        if not high > low:
            raise FilmError(f"the DICOM window or VOI LUT maps every value to {low}", code="dicom_voi")
        scaled = (np.asarray(shown, dtype=np.float64) - low) * (255.0 / (high - low))
        return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)
    stored_8_bit = int(dataset.get("BitsStored", 16) or 16) <= 8
    if stored_8_bit and values.dtype == np.uint8:
        return values  # already display values, as in an 8-bit PNG: no stretch
    return np.asarray(high_depth_to_grey(values))


def _colour_film(pixels: np.ndarray, dataset, photometric: str, *, original_mode: str) -> Film:
    from pydicom.pixels import apply_color_lut

    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise FilmError(f"unsupported DICOM colour layout {pixels.shape} ({photometric})", code="dicom_corrupt")
    if pixels.dtype != np.uint8:
        # palette LUT entries are 8 or 16 bits wide; RGB samples use Bits Stored
        bits = 16 if photometric == "PALETTE COLOR" else int(dataset.BitsStored)
        scaled = pixels.astype(np.float32)  # one working copy, not float64 temporaries
        scaled *= 255.0 / (2 ** bits - 1)
        pixels = np.rint(np.clip(scaled, 0, 255, out=scaled), out=scaled).astype(np.uint8)
    grey, spread = to_grey(Image.fromarray(pixels, mode="RGB"))
    rows, columns = pixels.shape[:2]
    return Film(grey, (columns, rows), original_mode, "DICOM", spread, _tags(dataset))
