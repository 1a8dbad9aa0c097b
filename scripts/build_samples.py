"""Build samia's bundled sample datasets from the Colin27 T1 MRI and the AAL atlas (Debian mricron-data).

    .venv/bin/python scripts/build_samples.py            # overwrites samia/data/samples/

Writes, deterministically (same inputs -> byte-identical files):

- ``samia/data/samples/colin27_aal_2d/``: folder layout; :data:`AXIAL_SLICES` and
  :data:`CORONAL_SLICES` of ch2.nii.gz as 8-bit PNG in ``images/``, the AAL structures of
  :data:`STRUCTURES` (remapped to 1..K) as 8-bit PNG label maps in ``masks/``, ``dataset.json``.
- ``samia/data/samples/colin27_aal_3d/``: MSD layout; ch2 cropped to the bounding box of the
  structures (+ :data:`CROP_MARGIN` voxels) with every second axial slice kept (2 mm in z), image
  and label map as NIfTI with their real geometry, ``dataset.json``.
- ``samia/data/samples/fundus_vessels_2d/``: folder layout; :data:`VESSEL_CASES` 256 x 256 crops of
  scikit-image's fundus photograph (CC0; green channel, its own vessels removed by a grey closing)
  with a seeded synthetic vessel tree darkened into each (``samia.data.vessels``); label 1 = the tree.
- ``samia/data/samples/ATTRIBUTION.md`` and ``LICENSE.md``.

Orientation: both volumes are first reoriented to LPS (``SimpleITK.DICOMOrient``), the DICOM
convention: array ``(z, y, x)`` with x towards the patient's left, y towards posterior, z towards
superior. An axial slice ``array[k]`` then shows anterior up and the patient's right on the
image's left (radiological view); coronal slices are flipped vertically so superior is up.

Needs the Debian package ``mricron-data`` (``/usr/share/mricron/templates``) or ``--source``
pointing at a folder with ``ch2.nii.gz``, ``aal.nii.gz`` and ``aal.nii.txt``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

# --- the choices the lead may want to change ------------------------------------------------

STRUCTURES: dict[str, tuple[str, ...]] = {
    "Caudate_L": ("Caudate_L",),
    "Caudate_R": ("Caudate_R",),
    "Putamen_L": ("Putamen_L",),
    "Putamen_R": ("Putamen_R",),
    "Thalamus_L": ("Thalamus_L",),
    "Thalamus_R": ("Thalamus_R",),
    "Hippocampus_L": ("Hippocampus_L",),
    "Hippocampus_R": ("Hippocampus_R",),
    "Cerebellum_L": ("Cerebelum_*_L",),  # AAL's cerebellar hemisphere lobules merged (vermis excluded)
    "Cerebellum_R": ("Cerebelum_*_R",),
}
"""Output label name -> AAL region names (fnmatch patterns; AAL spells it "Cerebelum").
Output label values are 1..K in this order; every other AAL region becomes background."""

AXIAL_SLICES: tuple[int, ...] = (25, 37, 49, 57, 63, 69, 75, 81, 87, 93)
"""Axial slice indices of the LPS-oriented 181 x 217 x 181 volume; MNI z (mm) = index - 71."""

CORONAL_SLICES: tuple[int, ...] = (80, 105, 125)
"""Coronal slice indices (along y of the LPS volume); MNI y (mm) = 91 - index."""

CROP_MARGIN = 6
"""Voxels added around the structures' bounding box for the 3D sample."""

Z_STEP = 2
"""Keep every Z_STEP-th axial slice of the 3D crop (nearest-neighbour, 1 mm -> 2 mm; no interpolation)."""

DEFAULT_SOURCE = Path("/usr/share/mricron/templates")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "samia" / "data" / "samples"
DATASET_2D, DATASET_3D, DATASET_VESSELS = "colin27_aal_2d", "colin27_aal_3d", "fundus_vessels_2d"

VESSEL_CASES = 12
VESSEL_SEED = 20240
FUNDUS_SIDE = 512
"""The fundus photograph (1411 x 1411) is resized to FUNDUS_SIDE x FUNDUS_SIDE before cropping."""
VESSEL_CROP = 256
VESSEL_CLOSING_RADIUS = 6
"""Radius (pixels at FUNDUS_SIDE) of the closing that removes the photograph's own vessels."""
VESSEL_CONTRAST = (0.25, 0.45)
"""Range of the darkening at a synthetic vessel's centre (seeded per case)."""

# -----------------------------------------------------------------------------------------------

DEBIAN_COPYRIGHT = Path("/usr/share/doc/mricron-data/copyright")
DEBIAN_CHANGELOG = Path("/usr/share/doc/mricron-data/changelog.Debian.gz")

REFERENCES = {
    "colin27": (
        "Holmes CJ, Hoge R, Collins L, Woods R, Toga AW, Evans AC. Enhancement of MR images using "
        "registration for signal averaging. J Comput Assist Tomogr. 1998;22(2):324-333."
    ),
    "aal": (
        "Tzourio-Mazoyer N, Landeau B, Papathanassiou D, Crivello F, Etard O, Delcroix N, Mazoyer B, "
        "Joliot M. Automated anatomical labeling of activations in SPM using a macroscopic anatomical "
        "parcellation of the MNI MRI single-subject brain. NeuroImage. 2002;15(1):273-289."
    ),
}

SOURCE_NOTE = (
    "Colin27 ('ch2') single-subject T1 template and the AAL atlas on the same 1 mm grid, as distributed "
    "with MRIcron by Chris Rorden (Debian package mricron-data, /usr/share/mricron/templates)"
)


def _load_lps(path: Path) -> sitk.Image:
    if not path.is_file():
        sys.exit(f"{path}: missing; install the Debian package mricron-data or pass --source")
    return sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS")


def _aal_names(path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    return names


def remap_labels(aal: np.ndarray, aal_names: dict[int, str]) -> tuple[np.ndarray, dict[int, list[str]]]:
    """AAL values -> 1..K per :data:`STRUCTURES` (uint8), and which AAL regions went into each."""
    lut = np.zeros(int(aal.max()) + 1, dtype=np.uint8)
    members: dict[int, list[str]] = {}
    for value, (name, patterns) in enumerate(STRUCTURES.items(), start=1):
        matched = [v for v, n in sorted(aal_names.items()) if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not matched:
            sys.exit(f"STRUCTURES[{name!r}]: no AAL region matches {patterns}")
        taken = [v for v in matched if lut[v] != 0]
        if taken:
            used = [aal_names[v] for v in taken]
            sys.exit(f"STRUCTURES[{name!r}]: AAL regions {used} already used by another structure")
        lut[matched] = value
        members[value] = [aal_names[v] for v in matched]
    return lut[aal], members


def _save_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(path, compress_level=9)


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def build_2d(out: Path, t1: np.ndarray, labels: np.ndarray, label_names: dict[int, str]) -> list[dict]:
    """Write the folder-layout 2D dataset; returns one record per slice."""
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    records = []
    planes = [("axial", k, t1[k], labels[k]) for k in AXIAL_SLICES]
    # coronal: array[:, j, :] is (z, x) with z increasing upwards in the body -> flip so superior is up
    planes += [("coronal", j, t1[::-1, j, :], labels[::-1, j, :]) for j in CORONAL_SLICES]
    for plane, index, image, label in planes:
        case_id = f"colin27_{plane}_{index:03d}"
        _save_png(out / "images" / f"{case_id}.png", image)
        _save_png(out / "masks" / f"{case_id}.png", label)
        values, counts = np.unique(label[label > 0], return_counts=True)
        records.append(
            {
                "case_id": case_id,
                "plane": plane,
                "index": int(index),
                "mni_mm": {"axial": {"z": int(index) - 71}, "coronal": {"y": 91 - int(index)}}[plane],
                "structures_px": {label_names[int(v)]: int(c) for v, c in zip(values, counts)},
            }
        )
    _write_json(
        out / "dataset.json",
        {
            "name": DATASET_2D,
            "description": (
                f"{len(AXIAL_SLICES)} axial and {len(CORONAL_SLICES)} coronal 1 mm slices of the Colin27 T1 MRI "
                "with AAL atlas structures as label maps. Axial: anterior up; coronal: superior up; both with "
                "the patient's right on the image's left (radiological view). Pixel spacing 1 mm (not stored "
                "in the PNG files)."
            ),
            "modality": "MR",
            "labels": {str(k): v for k, v in label_names.items()},
            "source": SOURCE_NOTE,
            "reference": [REFERENCES["colin27"], REFERENCES["aal"]],
            "licence": "see ../ATTRIBUTION.md and ../LICENSE.md",
            "pixel_spacing_mm": [1.0, 1.0],
            "slices": records,
            "built_by": "scripts/build_samples.py",
        },
    )
    return records


def build_3d(out: Path, t1_img: sitk.Image, label_img: sitk.Image, label_names: dict[int, str]) -> dict:
    """Write the MSD-layout 3D dataset; returns facts about the crop."""
    labels = sitk.GetArrayViewFromImage(label_img)
    nz = np.nonzero(labels)
    shape = labels.shape
    lo = [max(int(a.min()) - CROP_MARGIN, 0) for a in nz]  # (z, y, x)
    hi = [min(int(a.max()) + CROP_MARGIN + 1, n) for a, n in zip(nz, shape)]
    # SimpleITK slicing is in (x, y, z) index order and keeps the geometry (origin, spacing * step)
    image = t1_img[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0] : Z_STEP]
    label = label_img[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0] : Z_STEP]
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir(parents=True)
    sitk.WriteImage(image, str(out / "imagesTr" / "colin27.nii.gz"), useCompression=True)
    sitk.WriteImage(label, str(out / "labelsTr" / "colin27.nii.gz"), useCompression=True)
    facts = {
        "crop_index_zyx_start": lo,
        "crop_index_zyx_stop": hi,
        "z_step": Z_STEP,
        "shape_zyx": list(sitk.GetArrayViewFromImage(image).shape),
        "spacing_zyx_mm": list(reversed(image.GetSpacing())),
        "origin_lps_xyz_mm": list(image.GetOrigin()),
    }
    _write_json(
        out / "dataset.json",
        {
            "name": DATASET_3D,
            "description": (
                "Colin27 T1 MRI cropped to the bounding box of the AAL structures below (+ "
                f"{CROP_MARGIN} mm), every {Z_STEP}nd axial slice kept (1 x 1 x {Z_STEP} mm voxels), LPS "
                "orientation, with the AAL structures as label map."
            ),
            "reference": f"{REFERENCES['colin27']} | {REFERENCES['aal']}",
            "licence": "see ../ATTRIBUTION.md and ../LICENSE.md",
            "source": SOURCE_NOTE,
            "release": "samia sample 1",
            "tensorImageSize": "3D",
            "modality": {"0": "MRI"},
            "labels": {"0": "background", **{str(k): v for k, v in label_names.items()}},
            "numTraining": 1,
            "numTest": 0,
            "training": [{"image": "./imagesTr/colin27.nii.gz", "label": "./labelsTr/colin27.nii.gz"}],
            "test": [],
            "geometry": facts,
            "built_by": "scripts/build_samples.py",
        },
    )
    return facts


def build_vessels(out: Path) -> list[dict]:
    """Write the folder-layout vessel-tree dataset; returns one record per case."""
    from skimage import data as skimage_data
    from skimage.transform import resize

    from samia.data.vessels import draw_vessels, remove_dark_lines, vessel_tree_mask

    green = skimage_data.retina()[..., 1]
    fundus = np.rint(resize(green, (FUNDUS_SIDE, FUNDUS_SIDE), anti_aliasing=True, preserve_range=True))
    background = remove_dark_lines(fundus.astype(np.uint8), VESSEL_CLOSING_RADIUS)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    rng = np.random.default_rng(VESSEL_SEED)
    centre, side, records = (FUNDUS_SIDE - VESSEL_CROP) // 2, VESSEL_CROP, []
    for index in range(VESSEL_CASES):
        row, col = (centre + int(v) for v in rng.integers(-40, 41, size=2))
        crop = background[row : row + side, col : col + side]
        edge, along = int(rng.integers(4)), float(rng.uniform(0.25 * side, 0.75 * side))
        root, direction = [((0.0, along), -90.0), ((side - 1.0, along), 90.0), ((along, 0.0), 0.0),
                           ((along, side - 1.0), 180.0)][edge]  # fmt: skip
        mask = vessel_tree_mask((side, side), rng, root, direction + float(rng.uniform(-20, 20)))
        contrast = float(rng.uniform(*VESSEL_CONTRAST))
        case_id = f"vessels_{index:03d}"
        _save_png(out / "images" / f"{case_id}.png", draw_vessels(crop, mask, contrast))
        _save_png(out / "masks" / f"{case_id}.png", mask.astype(np.uint8))
        records.append(
            {"case_id": case_id, "crop_row_col": [row, col], "contrast": round(contrast, 4), "tree_px": int(mask.sum())}
        )
    _write_json(
        out / "dataset.json",
        {
            "name": DATASET_VESSELS,
            "description": (
                f"{VESSEL_CASES} synthetic vessel trees on a real fundus background: {VESSEL_CROP} x {VESSEL_CROP} "
                f"crops of scikit-image's fundus photograph (green channel, resized to {FUNDUS_SIDE} x {FUNDUS_SIDE}, "
                f"its own vessels removed by a grey closing of radius {VESSEL_CLOSING_RADIUS}), each darkened along "
                "one seeded branching tree (samia.data.vessels). Thin, elongated, branching: the structure "
                "zero-shot SAM fails on (Shi et al. 2023). The label map is the exact tree."
            ),
            "modality": "fundus",
            "labels": {"1": "vessel_tree"},
            "source": "skimage.data.retina() (Haggstrom M., Wikimedia Commons, CC0 1.0), scikit-image "
            + _skimage_version(),
            "licence": "see ../ATTRIBUTION.md",
            "cases": records,
            "built_by": "scripts/build_samples.py",
        },
    )
    return records


def _skimage_version() -> str:
    import skimage

    return skimage.__version__


def _package_version() -> str:
    """The mricron-data version from its Debian changelog's first line, e.g. ``1.2.20211006+dfsg-4``."""
    import gzip
    import re

    try:
        with gzip.open(DEBIAN_CHANGELOG, "rt", encoding="utf-8") as handle:
            match = re.match(r"\S+ \(([^)]+)\)", handle.readline())
    except OSError:
        return "unknown version"
    return match.group(1) if match else "unknown version"


def _copyright_excerpt() -> str:
    """The BSD-3-clause text and the catch-all stanza from the Debian copyright file, verbatim."""
    if not DEBIAN_COPYRIGHT.is_file():
        return "(Debian copyright file not found on the build machine.)"
    text = DEBIAN_COPYRIGHT.read_text(encoding="utf-8")
    stanzas = text.split("\n\n")
    keep = [s.strip("\n") for s in stanzas if s.startswith("Files: *") or s.startswith("License: BSD-3-clause")]
    return "\n\n".join(keep)


def write_attribution(
    out: Path, members: dict[int, list[str]], label_names: dict[int, str], records: list[dict], facts: dict
) -> None:
    structures = "\n".join(
        f"| {value} | {label_names[value]} | {', '.join(members[value])} |" for value in sorted(label_names)
    )
    slices = "\n".join(
        f"| {r['case_id']} | {r['plane']} | {r['index']} | "
        + ", ".join(f"{k} {v}" for k, v in r["mni_mm"].items())
        + f" | {', '.join(r['structures_px'])} |"
        for r in records
    )
    excerpt = _copyright_excerpt()
    start, stop = facts["crop_index_zyx_start"], [i - 1 for i in facts["crop_index_zyx_stop"]]
    (out / "ATTRIBUTION.md").write_text(
        f"""# Bundled sample data: attribution, licence, provenance

Generated by `scripts/build_samples.py`; do not edit by hand. Rebuild (overwrites this folder's
datasets and these two files) with:

    .venv/bin/python scripts/build_samples.py

## Sources

- **Colin27 ("ch2") single-subject T1 MRI template**, 181 x 217 x 181 voxels, 1 mm, MNI space.
  {REFERENCES["colin27"]}
- **AAL atlas** (Automated Anatomical Labeling, 116 regions) on the same grid.
  {REFERENCES["aal"]}

Both files (`ch2.nii.gz`, `aal.nii.gz`, region names from `aal.nii.txt`) as distributed with
MRIcron by Chris Rorden, taken from the Debian package `mricron-data`
(version {_package_version()}, `/usr/share/mricron/templates/`).

## Licence

The Debian copyright file of the package (`/usr/share/doc/mricron-data/copyright`) has no
stanza of its own for the template or atlas images: they fall under its catch-all stanza, which
says `Files: *`, `Copyright: Copyright 2006-2010, Chris Rorden`, `License: BSD-3-clause`. That
stanza and the licence text, verbatim:

```
{excerpt}
```

The copyright file says nothing further about the templates; in particular it does not record
separate terms from the original authors of Colin27 (Holmes et al.) or of AAL
(Tzourio-Mazoyer et al.). Cite both papers above when you
use these samples, and check the original authors' terms before redistributing them outside
samia. The BSD-3-clause text is repeated in `LICENSE.md`.

## What was done to the data

1. Both volumes reoriented to LPS (`SimpleITK.DICOMOrient(image, "LPS")`): array `(z, y, x)`, x
   towards the patient's left, y towards posterior, z towards superior. Intensities unchanged
   (8-bit, 0-254).
2. AAL regions kept and renumbered 1..{len(label_names)} (all other regions set to 0):

| value | name | AAL regions |
|---|---|---|
{structures}

3. `{DATASET_2D}/` (folder layout): {len(records)} slices as 8-bit PNG (`images/`) with label maps
   (`masks/`). Axial slices are shown anterior up, coronal slices superior up, both with the
   patient's right on the image's left (radiological view). Pixel spacing is 1 mm.

| case | plane | index | MNI mm | structures present |
|---|---|---|---|---|
{slices}

4. `{DATASET_3D}/` (MSD layout): voxel box z {start[0]}..{stop[0]}, y {start[1]}..{stop[1]},
   x {start[2]}..{stop[2]} of the LPS volume (bounding box of the structures + {CROP_MARGIN} voxels), every {Z_STEP}nd
   axial slice kept (nearest neighbour, no interpolation): shape (z, y, x) {tuple(facts["shape_zyx"])},
   spacing (z, y, x) {tuple(facts["spacing_zyx_mm"])} mm, origin (LPS x, y, z) {tuple(facts["origin_lps_xyz_mm"])} mm,
   identity direction. Image and label map written as gzipped NIfTI with SimpleITK.
""",
        encoding="utf-8",
    )
    (out / "LICENSE.md").write_text(
        "# Licence of the bundled sample data\n\n"
        "See `ATTRIBUTION.md` for the sources, the references to cite and what was changed.\n"
        "As recorded in the Debian package mricron-data's copyright file (catch-all stanza\n"
        "`Files: *`, `Copyright: Copyright 2006-2010, Chris Rorden`):\n\n```\n" + excerpt + "\n```\n",
        encoding="utf-8",
    )


def vessel_attribution(records: list[dict]) -> str:
    """The ATTRIBUTION.md section of ``fundus_vessels_2d``."""
    return f"""
# fundus_vessels_2d

Background: the fundus photograph of scikit-image (`skimage.data.retina()`, scikit-image
{_skimage_version()}), "Fundus photograph of normal left eye" by Mikael Häggström, Wikimedia
Commons, released under the Creative Commons CC0 1.0 Universal Public Domain Dedication
(Häggström M. Medical gallery of Mikael Häggström 2014. WikiJournal of Medicine 1(2).
doi:10.15347/wjm/2014.008).

What was done: green channel, resized to {FUNDUS_SIDE} x {FUNDUS_SIDE} (anti-aliased), grey closing
by a disk of radius {VESSEL_CLOSING_RADIUS} px (removes the photograph's own vessels; the optic disc,
macula and illumination stay), {len(records)} seeded {VESSEL_CROP} x {VESSEL_CROP} crops, each darkened by
a factor {VESSEL_CONTRAST[0]}-{VESSEL_CONTRAST[1]} along one synthetic vessel tree
(`samia.data.vessels.vessel_tree_mask`: trunk 4 px wide, Murray's-law narrowing, random-walk
branches, seed {VESSEL_SEED}). The vessels and their label maps are synthetic; only the background
is real. CC0: no conditions; the attribution above is courtesy.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="folder with ch2.nii.gz, aal.nii.gz, aal.nii.txt"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="samples folder to (over)write")
    args = parser.parse_args(argv)

    t1_img = _load_lps(args.source / "ch2.nii.gz")
    aal_img = _load_lps(args.source / "aal.nii.gz")
    if t1_img.GetSize() != aal_img.GetSize():
        sys.exit(f"ch2 {t1_img.GetSize()} and aal {aal_img.GetSize()} are not on one grid")
    t1 = sitk.GetArrayFromImage(t1_img)
    aal_names = _aal_names(args.source / "aal.nii.txt")
    labels, members = remap_labels(sitk.GetArrayFromImage(aal_img), aal_names)
    label_names = {value: name for value, name in enumerate(STRUCTURES, start=1)}
    label_img = sitk.GetImageFromArray(labels)
    label_img.CopyInformation(aal_img)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in (DATASET_2D, DATASET_3D, DATASET_VESSELS):
        if (out / name).exists():
            shutil.rmtree(out / name)
    records = build_2d(out / DATASET_2D, t1, labels, label_names)
    facts = build_3d(out / DATASET_3D, t1_img, label_img, label_names)
    vessels = build_vessels(out / DATASET_VESSELS)
    write_attribution(out, members, label_names, records, facts)
    with (out / "ATTRIBUTION.md").open("a", encoding="utf-8") as attribution:
        attribution.write(vessel_attribution(vessels))

    missing = [n for n in label_names.values() if not any(n in r["structures_px"] for r in records)]
    if missing:
        print(f"warning: structures on no 2D slice: {missing}", file=sys.stderr)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    for r in records:
        print(f"{r['case_id']}: {', '.join(f'{k}={v}' for k, v in r['structures_px'].items())}")
    print(f"3D: shape {facts['shape_zyx']} spacing {facts['spacing_zyx_mm']} origin {facts['origin_lps_xyz_mm']}")
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
