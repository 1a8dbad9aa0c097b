import shutil

import numpy as np
import pytest
from PIL import Image

from samia.data import build_manifest, write_phantom_dataset
from samia.errors import ConfigurationError, DatasetLayoutError
from samia.finetuning import FinetuneConfig, finetune
from samia.finetuning.data import case_digests, check_no_leakage, low_res_targets, split_cases
from samia.transforms import Letterbox


def test_split_is_by_case_seeded_and_disjoint(phantom_train):
    cases = build_manifest(phantom_train)
    train, val = split_cases(cases, 0.4, seed=3, source=phantom_train)
    assert len(val) == 2 and len(train) == 3
    assert {c.case_id for c in train}.isdisjoint({c.case_id for c in val})
    assert {c.case_id for c in train} | {c.case_id for c in val} == {c.case_id for c in cases}
    again = split_cases(list(reversed(cases)), 0.4, seed=3, source=phantom_train)
    assert [c.case_id for c in again[1]] == [c.case_id for c in val]
    # every slice of a volume stays with its case: the split never sees slices
    assert all(c.image_path.name.startswith(c.case_id) for c in train + val)


def test_split_keeps_at_least_one_case_on_each_side(phantom_train):
    cases = build_manifest(phantom_train)
    assert [len(part) for part in split_cases(cases, 0.01, 0, phantom_train)] == [4, 1]
    assert [len(part) for part in split_cases(cases, 0.99, 0, phantom_train)] == [1, 4]


def test_too_few_cases_to_split_is_a_clear_error(tmp_path, make_config):
    one = write_phantom_dataset(tmp_path / "one", 1, np.random.default_rng(0), shape=(64, 64))
    with pytest.raises(DatasetLayoutError, match=r"one: too few cases to split .* --val"):
        finetune(make_config(data=str(one)))


def test_same_image_under_two_names_is_leakage(phantom_train, tmp_path):
    copy = tmp_path / "val"
    shutil.copytree(phantom_train, copy)
    (copy / "images" / "phantom_000.png").rename(copy / "images" / "renamed.png")
    (copy / "masks" / "phantom_000.png").rename(copy / "masks" / "renamed.png")
    with pytest.raises(ConfigurationError, match=r"phantom_000 \(train\) = renamed \(val\)"):
        check_no_leakage(case_digests(build_manifest(phantom_train)), case_digests(build_manifest(copy)))


def test_empty_masks_only_name_the_dataset(phantom_train, tmp_path, make_config):
    empty = tmp_path / "empty"
    shutil.copytree(phantom_train, empty)
    for mask in (empty / "masks").iterdir():
        Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(mask)
    with pytest.raises(DatasetLayoutError, match=r"empty: no object of at least 50 pixels .*empty masks only"):
        finetune(make_config(data=str(empty)))


def test_invalid_options_are_configuration_errors(phantom_train, tmp_path):
    with pytest.raises(ConfigurationError, match="unknown method 'prompt_tuning'"):
        FinetuneConfig.from_dict(
            dict(data=str(phantom_train), out=str(tmp_path), model="tiny_sam", method="prompt_tuning")
        )
    with pytest.raises(ConfigurationError, match="prompt kinds"):
        FinetuneConfig.from_dict(
            dict(data=str(phantom_train), out=str(tmp_path), model="tiny_sam", prompt_kinds=["scribble"])
        )


def test_low_res_targets_follow_the_geometry():
    mask = np.zeros((1, 40, 80), dtype=bool)
    mask[0, 10:20, 40:80] = True  # right half of rows 10..19
    geometry = Letterbox.for_shape((40, 80), 64)  # resized to (32, 64), padded to 64 x 64
    targets = low_res_targets(mask, geometry, 16)  # 4 input pixels per cell
    assert targets.shape == (1, 1, 16, 16)
    assert targets.min() >= 0 and targets.max() <= 1
    inside = targets[0, 0] > 0.5
    rows, cols = np.nonzero(inside.numpy())
    assert rows.min() == 2 and rows.max() == 3 and cols.min() == 8 and cols.max() == 15
    assert float(targets[0, 0, 8:].sum()) == 0.0  # the padding is background
