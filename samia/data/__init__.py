"""Datasets: manifests of (image, mask) cases, layout adapters, 3D->2D object items, phantoms, samples.

Typical use::

    from samia.data import build_manifest, iter_slice_items

    problems = []
    for case in build_manifest("/data/Task02_Heart", errors=problems):
        for item in iter_slice_items(case, axis=0, min_area=50):
            ...  # item.image (Image2D), item.objects (one bool mask per label value)

Exports load lazily, so that what needs only the settings (``samia segment`` on one image) does not
import pandas and scipy with the manifests.
"""

from samia.lazy import lazy_exports

_EXPORTS = {
    "LAYOUTS": "samia.data.layouts",
    "LayoutScan": "samia.data.layouts",
    "detect_layout": "samia.data.layouts",
    "normalize_modality": "samia.data.layouts",
    "MANIFEST_COLUMNS": "samia.data.manifest",
    "Case": "samia.data.manifest",
    "build_manifest": "samia.data.manifest",
    "manifest_frame": "samia.data.manifest",
    "scan_dataset": "samia.data.manifest",
    "select_cases": "samia.data.manifest",
    "ObjectMask": "samia.data.objects",
    "SliceItem": "samia.data.objects",
    "extract_objects": "samia.data.objects",
    "iter_slice_items": "samia.data.objects",
    "load_case": "samia.data.objects",
    "PHANTOM_KINDS": "samia.data.phantoms",
    "make_phantom": "samia.data.phantoms",
    "make_phantom_volume": "samia.data.phantoms",
    "write_phantom_dataset": "samia.data.phantoms",
    "SAMPLE_DATASETS": "samia.data.samples",
    "sample_dataset_path": "samia.data.samples",
    "DEFAULT_MIN_AREA": "samia.data.settings",
    "CaseSettings": "samia.data.settings",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
