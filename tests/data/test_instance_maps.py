"""Instance label maps (issue 25, item 7): a microscopy mask numbering each nucleus 1..N is read
as N objects of one named class (touching nuclei stay apart, uint16 values kept, results pooled by
the class), set by ``--instances`` or ``dataset.json``'s ``"instances"`` and recorded in the run; a
class that is many disconnected pieces is warned about."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from samia.data import build_manifest, iter_slice_items
from samia.data.objects import extract_objects
from samia.errors import ConfigurationError

SIZE = 96


def _nuclei(seed: int, first_value: int) -> np.ndarray:
    """``(96, 96)`` uint16 instance map: discs numbered from ``first_value``, two of them touching."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((SIZE, SIZE), np.uint16)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    centres = [(20, 20), (20, 31)]  # radius 6 discs 11 px apart: they touch
    centres += [(int(y), int(x)) for y, x in rng.integers(45, 88, (10, 2))]
    value = first_value
    for y, x in centres:
        disc = ((yy - y) ** 2 + (xx - x) ** 2 <= 36) & (labels == 0)
        if disc.sum() >= 60:
            labels[disc] = value
            value += 1
    return labels


def _write(root, maps: list[np.ndarray], dataset_json: dict | None = None):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for number, labels in enumerate(maps):
        image = np.where(labels > 0, 200, 40).astype(np.uint8)
        Image.fromarray(ndimage.gaussian_filter(image, 1)).save(root / "images" / f"tile_{number}.png")
        Image.fromarray(labels).save(root / "masks" / f"tile_{number}.png")  # 16-bit PNG
    if dataset_json is not None:
        (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


def test_every_value_is_one_object_of_the_class_and_touching_nuclei_stay_apart() -> None:
    labels = _nuclei(0, first_value=298)
    objects, skipped = extract_objects(labels, {1: "cell"}, min_area=0, instances_of="nucleus")
    values = sorted(int(v) for v in np.unique(labels) if v)
    assert [o.label for o in objects] == values and values[-1] > 300 and skipped == 0
    assert {o.name for o in objects} == {"nucleus"} and all(o.component is None for o in objects)
    for obj in objects:
        np.testing.assert_array_equal(obj.mask, labels == obj.label)
    touching = labels[14:27, 14:38]
    assert ndimage.label(touching > 0)[1] == 1 and len(set(np.unique(touching)) - {0}) == 2  # one blob, two nuclei
    with pytest.raises(ConfigurationError, match="leave out --connected-components"):
        extract_objects(labels, instances_of="nucleus", connected_components=True)


def test_dataset_json_or_the_option_says_instances_and_uint16_values_are_kept(tmp_path) -> None:
    maps = [_nuclei(1, 1), _nuclei(2, 290)]
    root = _write(tmp_path / "tiles", maps, {"name": "tiles", "instances": "nucleus"})
    cases = build_manifest(root)
    assert [c.instances_of for c in cases] == ["nucleus", "nucleus"]
    items = [next(iter_slice_items(case, min_area=0)) for case in cases]
    for item, labels in zip(items, maps):
        assert [o.label for o in item.objects] == sorted(int(v) for v in np.unique(labels) if v)
        assert {o.name for o in item.objects} == {"nucleus"}
    assert build_manifest(root, instances="cell")[0].instances_of == "cell"  # the option overrides
    from samia.evaluation.config import EvaluationConfig

    recorded = EvaluationConfig.from_dict(
        dict(data=str(root), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
    )
    assert recorded.reading.instances == "nucleus"  # the run records what dataset.json said
    (root / "dataset.json").write_text(json.dumps({"instances": ["nucleus"]}))
    with pytest.raises(ConfigurationError, match=r"dataset.json: \"instances\" must name the one class"):
        build_manifest(root)


def test_evaluate_with_instances_pools_by_class_and_records_the_setting(tmp_path, cli) -> None:
    maps = [_nuclei(3, 1), _nuclei(4, 1)]
    root = _write(tmp_path / "tiles", maps)
    out = tmp_path / "run"
    code, _, err = cli(
        "evaluate", "--data", root, "--model", "tiny_sam", "--strategy", "box", "--selection", "oracle",
        "--out", out, "--instances", "nucleus", "--min-area", "1",
    )  # fmt: skip
    assert code == 0, err
    results = pd.read_parquet(out / "results.parquet")
    per_case = results.groupby("case")["label"].apply(sorted).to_dict()
    assert per_case == {f"tile_{n}": sorted(int(v) for v in np.unique(m) if v) for n, m in enumerate(maps)}
    assert set(results["object"]) == {"nucleus"} and results["component"].eq(-1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["object"].tolist() == ["nucleus"] and summary["n"].tolist() == [len(results)]
    assert yaml.safe_load((out / "config.yaml").read_text())["config"]["reading"]["instances"] == "nucleus"
    code, _, err = cli(
        "evaluate", "--data", root, "--model", "tiny_sam", "--out", tmp_path / "again",
        "--strategy", "box", "--instances", "nucleus", "--connected-components",
    )  # fmt: skip
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: an instance map's values are its objects")


def test_a_class_in_many_pieces_is_warned_about(tmp_path, cli) -> None:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    grid = [((yy - y) ** 2 + (xx - x) ** 2 <= 16) for y in range(10, SIZE, 20) for x in range(10, SIZE, 20)]
    semantic = [np.any(grid, axis=0).astype(np.uint16)]  # 25 nuclei, every one label 1
    root = _write(tmp_path / "semantic", semantic)
    out = tmp_path / "run"
    code, _, err = cli("evaluate", "--data", root, "--model", "tiny_sam", "--strategy", "box", "--out", out)
    assert code == 0, err
    pieces = ndimage.label(semantic[0] > 0, structure=np.ones((3, 3)))[1]
    warnings = pd.read_csv(out / "warnings.csv")
    assert warnings["message"].str.contains(
        f"label 1 \\(label_1\\) is {pieces} disconnected pieces on one plane, evaluated as one object"
    ).tolist() == [True]
    assert "--instances NAME" in err
