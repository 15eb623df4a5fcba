"""Building small DICOM files for tests (pydicom is imported by the caller's importorskip)."""

from __future__ import annotations

import io

import numpy as np


def make_dicom(pixels: np.ndarray | None, syntax=None, encoded: bytes | None = None,
               instance_uid: str | None = None, **elements) -> bytes:
    """A DICOM file holding ``pixels`` (rows, cols[, 3]) or (frames, rows, cols), natively or as ``encoded``.

    ``pixels=None`` writes no pixel data. ``instance_uid`` fixes the otherwise random
    SOP instance UID, for byte-identical files (the fuzz test's seeds). ``elements``
    set or override data elements.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    syntax = syntax or ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = instance_uid or generate_uid()
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CR"
    if pixels is not None:
        colour = pixels.ndim == 3 and pixels.shape[-1] == 3
        frames = pixels.shape[0] if pixels.ndim == 3 and not colour else None
        dataset.Rows, dataset.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
        dataset.SamplesPerPixel = 3 if colour else 1
        dataset.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
        if colour:
            dataset.PlanarConfiguration = 0
        if frames:
            dataset.NumberOfFrames = frames
        dataset.BitsAllocated = dataset.BitsStored = pixels.dtype.itemsize * 8
        dataset.HighBit = dataset.BitsStored - 1
        dataset.PixelRepresentation = 0
        dataset.PixelData = encapsulate([encoded]) if encoded else pixels.tobytes()
    for name, value in elements.items():
        setattr(dataset, name, value)
    buffer = io.BytesIO()
    private = not pydicom.uid.UID(syntax).is_transfer_syntax  # an unknown syntax: say how to write it
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True,
                     **({"implicit_vr": False, "little_endian": True} if private else {}))
    return buffer.getvalue()
