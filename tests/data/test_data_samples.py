"""The bundled samples (Colin27 + AAL, the fundus vessel phantom): present, loadable, documented, and rebuilt identically by the script."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from samia.data import SAMPLE_DATASETS, build_manifest, detect_layout, iter_slice_items, sample_dataset_path
from samia.data.samples import SAMPLES_ROOT
from samia.errors import ConfigurationError
from samia.types import Volume

STRUCTURES = [
    "Caudate_L", "Caudate_R", "Putamen_L", "Putamen_R", "Thalamus_L", "Thalamus_R",
    "Hippocampus_L", "Hippocampus_R", "Cerebellum_L", "Cerebellum_R",
]  # fmt: skip
LABELS = {value: name for value, name in enumerate(STRUCTURES, start=1)}
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_samples.py"
MRICRON = Path("/usr/share/mricron/templates")


def test_sample_names_and_unknown_name():
    assert SAMPLE_DATASETS == ("colin27_aal_2d", "colin27_aal_3d", "fundus_vessels_2d")
    assert sample_dataset_path() == sample_dataset_path("colin27_aal_2d")
    with pytest.raises(ConfigurationError, match="colin27_aal_2d, colin27_aal_3d, fundus_vessels_2d"):
        sample_dataset_path("brats")


def test_samples_are_small_and_attributed():
    total = sum(p.stat().st_size for p in SAMPLES_ROOT.rglob("*") if p.is_file())
    assert total < 10e6
    attribution = (SAMPLES_ROOT / "ATTRIBUTION.md").read_text()
    expected = ("Holmes", "Tzourio-Mazoyer", "BSD-3-clause", "Chris Rorden", "mricron-data", "scripts/build_samples.py",
                "fundus_vessels_2d", "skimage.data.retina()", "CC0")  # fmt: skip
    assert all(text in attribution for text in expected)
    assert "Redistribution and use" in (SAMPLES_ROOT / "LICENSE.md").read_text()


def test_2d_sample_loads_with_documented_structures():
    root = sample_dataset_path("colin27_aal_2d")
    assert detect_layout(root) == "folder"
    cases = build_manifest(root)
    assert len(cases) == 13
    assert all(c.modality == "MR" and c.dataset == "colin27_aal_2d" and c.label_names == LABELS for c in cases)
    seen: dict[str, int] = {}
    centroids: dict[tuple[str, str], tuple[float, float]] = {}
    for case in cases:
        (item,) = list(iter_slice_items(case, min_area=50))
        assert item.image.array.dtype == np.uint8 and item.image.array.ndim == 2
        assert item.objects
        for obj in item.objects:
            seen[obj.name] = max(seen.get(obj.name, 0), obj.area)
            rows, cols = np.nonzero(obj.mask)
            centroids[(case.case_id, obj.name)] = (rows.mean(), cols.mean())
    assert set(seen) == set(STRUCTURES)
    assert min(seen.values()) >= 200
    # orientation: radiological (patient's left on the image's right), anterior up in axial slices
    r_cap, c_cap = centroids[("colin27_axial_081", "Caudate_L")]
    _, c_car = centroids[("colin27_axial_081", "Caudate_R")]
    r_thal, _ = centroids[("colin27_axial_081", "Thalamus_L")]
    assert c_cap > c_car
    assert r_cap < r_thal  # caudate head in front of the thalamus
    # coronal: superior up -> the hippocampus below the thalamus
    assert centroids[("colin27_coronal_105", "Hippocampus_L")][0] > centroids[("colin27_coronal_105", "Thalamus_L")][0]
    meta = json.loads((root / "dataset.json").read_text())
    assert [s["case_id"] for s in meta["slices"]] == [c.case_id for c in cases]


def test_3d_sample_loads_with_real_geometry():
    root = sample_dataset_path("colin27_aal_3d")
    assert detect_layout(root) == "msd"
    (case,) = build_manifest(root)
    assert case.case_id == "colin27" and case.modality == "MR" and case.label_names == LABELS
    items = list(iter_slice_items(case, axis=0, min_area=50))
    image = items[0].image
    assert image.spacing == pytest.approx((1.0, 1.0)) and image.shape == (132, 134)
    assert {o.name for it in items for o in it.objects} == set(STRUCTURES)
    coronal = next(iter_slice_items(case, axis=1, min_area=50))
    assert coronal.image.spacing == pytest.approx((2.0, 1.0))
    from samia.io import read_label

    labels = read_label(case.label_path)
    assert isinstance(labels, Volume)
    assert labels.shape == (50, 132, 134) and labels.spacing == pytest.approx((2.0, 1.0, 1.0))
    assert labels.origin == pytest.approx((-68.0, -34.0, -67.0))
    assert set(np.unique(labels.array).tolist()) == set(range(11))


def test_vessel_sample_loads_as_one_thin_tree_per_case():
    root = sample_dataset_path("fundus_vessels_2d")
    assert detect_layout(root) == "folder"
    cases = build_manifest(root)
    assert len(cases) == 12
    meta = json.loads((root / "dataset.json").read_text())
    assert [c["case_id"] for c in meta["cases"]] == [c.case_id for c in cases]
    for case, record in zip(cases, meta["cases"]):
        assert case.modality == "fundus" and case.label_names == {1: "vessel_tree"}
        (item,) = list(iter_slice_items(case, min_area=50))
        assert item.image.array.dtype == np.uint8 and item.image.shape == (256, 256)
        (tree,) = item.objects
        assert tree.area == record["tree_px"]
        # thin: the tree is about as wide as its trunk (a few pixels) everywhere
        assert ndimage.distance_transform_edt(tree.mask).max() <= 3.0
        # darker than its surroundings by roughly the recorded contrast
        image = item.image.array.astype(float)
        ring = ndimage.binary_dilation(tree.mask, iterations=4) & ~ndimage.binary_dilation(tree.mask, iterations=2)
        assert image[tree.mask].mean() < image[ring].mean()


@pytest.mark.skipif(not (MRICRON / "ch2.nii.gz").is_file(), reason="Debian package mricron-data not installed")
def test_build_script_reproduces_the_committed_samples(tmp_path):
    spec = importlib.util.spec_from_file_location("build_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0

    def digests(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digests(tmp_path) == digests(SAMPLES_ROOT)
