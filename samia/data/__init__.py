"""Datasets: manifests of (image, mask) cases, layout adapters, 3D->2D object items, phantoms, samples.

Typical use::

    from samia.data import build_manifest, iter_slice_items

    problems = []
    for case in build_manifest("/data/Task02_Heart", errors=problems):
        for item in iter_slice_items(case, axis=0, min_area=50):
            ...  # item.image (Image2D), item.objects (one bool mask per label value)
"""

from samia.data.layouts import LAYOUTS, LayoutScan, detect_layout, normalize_modality
from samia.data.manifest import MANIFEST_COLUMNS, Case, build_manifest, manifest_frame, scan_dataset, select_cases
from samia.data.objects import ObjectMask, SliceItem, extract_objects, iter_slice_items, load_case
from samia.data.phantoms import PHANTOM_KINDS, make_phantom, make_phantom_volume, write_phantom_dataset
from samia.data.samples import SAMPLE_DATASETS, sample_dataset_path
from samia.data.settings import DEFAULT_MIN_AREA, CaseSettings

__all__ = [
    "DEFAULT_MIN_AREA",
    "CaseSettings",
    "LAYOUTS",
    "MANIFEST_COLUMNS",
    "PHANTOM_KINDS",
    "SAMPLE_DATASETS",
    "Case",
    "LayoutScan",
    "ObjectMask",
    "SliceItem",
    "build_manifest",
    "select_cases",
    "detect_layout",
    "extract_objects",
    "iter_slice_items",
    "load_case",
    "make_phantom",
    "make_phantom_volume",
    "manifest_frame",
    "normalize_modality",
    "sample_dataset_path",
    "scan_dataset",
    "write_phantom_dataset",
]
