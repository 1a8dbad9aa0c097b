"""DICOM Segmentation objects (DICOM-SEG) of a label map on a DICOM series, through highdicom.

The SEG references every source slice (by SOP Instance UID), shares the series' Frame of Reference,
and holds one segment per object (``1..N``), so that a PACS or viewer (3D Slicer, OHIF) shows it on
the series it came from. Frames are written in the order the series is read (sorted along the slice
normal, :func:`samia.io.dicom.read_dicom_series`), so frame ``k`` of segment ``n`` is slice ``k`` of
label ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes

import samia
from samia.errors import InputError, InvalidImageError
from samia.files import atomic_write


def series_files(folder: Path) -> list[Path]:
    """The files of the one DICOM series in ``folder``, in the order samia stacks its slices."""
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if len(series) != 1:
        raise InvalidImageError(
            folder, f"holds {len(series)} DICOM series; a DICOM-SEG needs exactly one source series"
        )
    return [Path(name) for name in reader.GetGDCMSeriesFileNames(str(folder), series[0])]


def write_dicom_seg(path: Path, labels: np.ndarray, names: Sequence[str], source: Path) -> Path:
    """Write ``labels`` as a DICOM-SEG of the series in folder ``source``.

    Args:
        path: the ``.dcm`` file to write (atomically).
        labels: ``(Z, Y, X)`` integer label map on the series' grid, ``0`` = background, ``1..N``
            the objects.
        names: the name of each object (segment label), ``N`` of them.
        source: the DICOM series folder the labels were computed on.

    Raises:
        InputError: ``source`` is not one series, or its slices do not match ``labels``' shape.
    """
    files = series_files(source)
    datasets = [pydicom.dcmread(name) for name in files]
    rows, columns = int(datasets[0].Rows), int(datasets[0].Columns)
    if labels.shape != (len(datasets), rows, columns):
        raise InputError(
            source, f"the series has {len(datasets)} slices of {rows} x {columns}; the label map is {labels.shape}"
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name="samia", version=samia.__version__, family=codes.cid7162.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name[:64],
            segmented_property_category=codes.cid7150.Tissue,
            segmented_property_type=codes.cid7166.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, name in enumerate(names, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=np.ascontiguousarray(labels.astype(np.uint16 if len(names) > 255 else np.uint8)),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=int(getattr(datasets[0], "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="samia",
        manufacturer_model_name="samia segment",
        software_versions=samia.__version__,
        device_serial_number="0",
        series_description="samia segmentation",
        omit_empty_frames=False,
    )
    return atomic_write(path, lambda temporary: seg.save_as(temporary))
