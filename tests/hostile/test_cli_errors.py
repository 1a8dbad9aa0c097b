"""``samia segment`` and ``samia report``: every failure is one line naming the file and the problem
(exit 2), checked before any model runs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hostile_files import folder_dataset, one_error_line, square_case

from samia.evaluation import EvaluationConfig, evaluate


@pytest.fixture
def image(tmp_path):
    return folder_dataset(tmp_path / "data", {"c0": square_case(0)}) / "images" / "c0.png"


@pytest.fixture
def volume(tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "vol.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)), str(path))
    return path


def test_slice_and_axis_out_of_range(volume, tmp_path, cli):
    for args, fragment in ((["--slice", "9"], "slice 9 is outside"), (["--slice", "0", "--axis", "5"], "axis 5")):
        code, _, stderr = cli(
            "segment", volume, "--model", "tiny_sam", "--box", "1", "1", "9", "9", *args, "--out", tmp_path / "m.nii.gz"
        )
        line = one_error_line(stderr)
        assert code == 2 and fragment in line and "vol.nii.gz" in line


def test_out_that_cannot_be_written_is_refused_before_the_model(image, tmp_path, cli):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [(tmp_path, "is a folder"), (blocker / "m.png", "cannot write into"), (image, "is the input file")]
    for out, fragment in cases:
        code, _, stderr = cli("segment", image, "--model", "sam_vit_b", "--box", "1", "1", "9", "9", "--out", out)
        assert code == 2 and fragment in one_error_line(stderr)  # sam_vit_b has no weights: never reached


def test_a_malicious_checkpoint_is_not_loaded_and_never_suggests_weights_only_false(image, tmp_path, cli):
    class Payload:
        def __reduce__(self):
            return (print, ("this code ran",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"model": Payload()}))
    torch_evil = tmp_path / "evil2.pth"
    torch.save({"weights": Payload()}, torch_evil)
    for path in (evil, torch_evil):
        code, out, stderr = cli(
            "segment",
            image,
            "--model",
            "tiny_sam",
            "--checkpoint",
            path,
            "--box",
            "1",
            "1",
            "9",
            "9",
            "--out",
            tmp_path / "m.png",
        )
        line = one_error_line(stderr)
        assert code == 2 and path.name in line and "not a checkpoint samia can load safely" in line
        assert "weights_only" not in line and "this code ran" not in out


def test_report_refuses_corrupt_and_foreign_results_and_an_out_file(tmp_path, cli):
    import pandas as pd

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "results.parquet").write_bytes(b"PAR1 garbage")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(foreign / "results.parquet")
    for folder, fragment in ((corrupt, "cannot be read"), (foreign, "not a samia results file")):
        code, _, stderr = cli("report", folder, "--out", tmp_path / f"report_{folder.name}")
        line = one_error_line(stderr)
        assert code == 2 and "results.parquet" in line and fragment in line
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, stderr = cli("report", foreign, "--out", blocker)
    assert code == 2 and "is a file" in one_error_line(stderr)


def test_report_of_a_good_run_still_works(image, tmp_path, cli):
    run = tmp_path / "run"
    evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(image.parent.parent), out=str(run), model="tiny_sam", strategies=["box"])
        )
    )
    code, _, stderr = cli("report", run, "--out", tmp_path / "report", "--resamples", "100")
    assert code == 0, stderr and (tmp_path / "report" / "report.html").is_file()


@pytest.mark.parametrize("name", ["broken.nrrd", "broken.mha", "broken.nii.gz", "broken.dcm"])
def test_garbage_volume_files_give_one_line_without_itk_warnings(name, tmp_path, cli):
    path = tmp_path / name
    path.write_bytes(
        b"NRRD0004\ntype: float\ndimension: 3\nsizes: 9 9\n\n" if name.endswith("nrrd") else b"garbage" * 50
    )
    code, _, stderr = cli(
        "segment", path, "--model", "tiny_sam", "--box", "1", "1", "5", "5", "--out", tmp_path / "m.png"
    )
    assert code == 2 and name in one_error_line(stderr)


def test_a_checkpoint_with_nan_weights_is_refused_naming_the_tensor(image, tmp_path, cli):
    from samia.models.registry import build_torch_model

    state = build_torch_model("tiny_sam").state_dict()
    key = next(k for k in state if k.startswith("mask_decoder") and state[k].is_floating_point())
    state[key] = state[key].clone()
    state[key].view(-1)[3] = float("nan")
    broken = tmp_path / "nan.pth"
    torch.save(state, broken)
    out = tmp_path / "m.png"
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--checkpoint", broken, "--box", 1, 1, 9, 9, "--out", out
    )
    line = one_error_line(stderr)
    assert code == 2 and "nan.pth" in line and repr(key) in line and "1 NaN/Inf" in line
    assert not out.exists()


def test_a_model_whose_output_is_nan_raises_instead_of_an_empty_mask(tmp_path):
    """Weights that are finite but overflow (huge scales) give NaN/Inf logits: an error, never a mask."""
    import numpy as np

    from samia.errors import ModelOutputError
    from samia.models.registry import build_torch_model
    from samia.predictor import SamiaPredictor
    from samia.types import Prompt

    model = build_torch_model("tiny_sam")
    with torch.no_grad():
        for name, parameter in model.mask_decoder.named_parameters():
            if name.endswith("weight"):
                parameter.fill_(3e38)
    predictor = SamiaPredictor(model)
    predictor.set_image(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    with pytest.raises(ModelOutputError, match=r"tiny_sam .*mask logits holds NaN or Inf"):
        predictor.predict(Prompt(box=[4, 4, 30, 30]))
