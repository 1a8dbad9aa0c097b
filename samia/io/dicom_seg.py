"""DICOM Segmentation objects (DICOM-SEG) of a label map on a DICOM series, through highdicom.

The SEG references every source slice (by SOP Instance UID), shares the series' Frame of Reference,
and holds one segment per object (``1..N``), named and coded (SNOMED CT category and type,
:mod:`samia.io.segment_codes`), so that a PACS or viewer (3D Slicer, OHIF) shows it on the series it
came from. Frames are written in the order the series is read (sorted along the slice
normal, :func:`samia.io.dicom_series.series_slices`), so frame ``k`` of segment ``n`` is slice ``k``
of label ``n``; each frame names its source slice, which is how a reader should match them.

Anonymised exports often lack attributes a SEG copies from its source:

- *FrameOfReferenceUID*: the value of any slice that has one is used for all; when none has one, a
  new UID is made and an :class:`~samia.errors.InputWarning` says that viewers matching on it may
  not overlay the SEG on the series.
- *StudyInstanceUID*: likewise (a new one, with a warning), since a SEG must belong to a study.
- the type 2 patient and study attributes (:data:`TYPE2_COPIED`): written empty, never invented.

The source files on disk are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from samia.errors import InputError, warn_input
from samia.files import atomic_write
from samia.io.dicom_series import series_slices
from samia.io.segment_codes import DEFAULT_SEGMENT_CODE, SegmentCode
from samia.version import __version__

TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
"""Type 2 attributes (present, possibly empty) a SEG copies from its source images."""


def write_dicom_seg(
    path: Path,
    labels: np.ndarray,
    names: Sequence[str],
    source: Path,
    segment_codes: Sequence[SegmentCode] | None = None,
) -> Path:
    """Write ``labels`` as a DICOM-SEG of the series in folder ``source``.

    Args:
        path: the ``.dcm`` file to write (atomically).
        labels: ``(Z, Y, X)`` integer label map on the series' grid, ``0`` = background, ``1..N``
            the objects.
        names: the name of each object (segment label), ``N`` of them.
        source: the DICOM series folder the labels were computed on.
        segment_codes: the SNOMED CT category and type of each object, ``N`` of them (default: each
            :data:`~samia.io.segment_codes.DEFAULT_SEGMENT_CODE`).

    Raises:
        InputError: ``source`` is not one series, or its slices do not match ``labels``' shape.
        ValueError: ``segment_codes`` or ``names`` is not one per object.
    """
    coded = list(segment_codes) if segment_codes is not None else [DEFAULT_SEGMENT_CODE] * len(names)
    if len(coded) != len(names):
        raise ValueError(f"{len(names)} segment names but {len(coded)} segment codes")
    datasets = [item.header for item in series_slices(source)]  # headers suffice: highdicom reads no source pixel
    rows, columns = int(datasets[0].Rows), int(datasets[0].Columns)
    if labels.shape != (len(datasets), rows, columns):
        raise InputError(
            source, f"the series has {len(datasets)} slices of {rows} x {columns}; the label map is {labels.shape}"
        )
    _complete_references(datasets, source)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="samia", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name[:64],
            segmented_property_category=code.category,
            segmented_property_type=code.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, (name, code) in enumerate(zip(names, coded, strict=True), start=1)
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
        software_versions=__version__,
        device_serial_number="0",
        series_description="samia segmentation",
        omit_empty_frames=False,
    )
    return atomic_write(path, lambda temporary: seg.save_as(temporary))


def _complete_references(datasets: list[Dataset], source: Path) -> None:
    """Fill, in memory, what the SEG needs and anonymisation removed (module docstring)."""
    for keyword, what in (("FrameOfReferenceUID", "Frame of Reference"), ("StudyInstanceUID", "study")):
        present = [str(ds.get(keyword)) for ds in datasets if ds.get(keyword)]
        if present:
            value = present[0]
        else:
            value = hd.UID()
            warn_input(
                source,
                f"no slice has a {keyword}; the DICOM-SEG gets a new one ({value}), so viewers that match "
                f"SEG and series by {what} may not overlay them",
            )
        for ds in datasets:
            if not ds.get(keyword):
                setattr(ds, keyword, value)
    for ds in datasets:
        for keyword in TYPE2_COPIED:
            if keyword not in ds:
                setattr(ds, keyword, "")
