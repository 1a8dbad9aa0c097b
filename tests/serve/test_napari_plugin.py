"""napari talking to ``samia serve``, headless: ``scripts/napari_screenshot.py`` drives the real
napari-nninteractive plugin (remote mode, Initialize, the BBox tool, a rectangle on the image) under
a virtual display against a real ``samia serve`` with LiteMedSAM. The plugin's label layer equals,
voxel for voxel, samia's volume engine for that box, and the screenshot (the guide's picture is made
the same way) shows the window."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_process import Served, engine

from samia.data.samples import sample_dataset_path
from samia.io.volume import read_volume
from samia.models import build_model
from samia.types import Prompt
from samia.volume import KeySlice, VolumePrompt

pytestmark = pytest.mark.real_weights
pytest.importorskip("napari_nninteractive", reason="napari-nninteractive is not installed (make setup installs it)")
if shutil.which("xvfb-run") is None:
    pytest.skip("no xvfb-run: install Debian's xvfb (make system does)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def test_the_napari_plugin_gets_what_the_engine_gives_and_a_screenshot(tmp_path) -> None:
    server = Served()
    try:
        shot, labels = tmp_path / "napari.png", tmp_path / "labels.npy"
        command = [
            sys.executable,
            str(ROOT / "scripts" / "napari_screenshot.py"),
            server.url,
            str(shot),
            "--labels",
            str(labels),
        ]
        display = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]
        done = subprocess.run(
            display + command, capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ), timeout=1200
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.stop()
    volume = read_volume(sample_dataset_path("colin27_aal_3d") / "imagesTr" / "colin27.nii.gz")
    box = Prompt(box=np.array([68.0, 60.0, 125.0, 117.0]))
    expected, _ = engine(
        build_model("litemedsam", backend="auto"),
        volume.array.astype(np.float32),
        0,
        VolumePrompt(key_slices=(KeySlice(12, box),)),
    )
    assert np.array_equal(np.load(labels) > 0, expected)
    picture = np.asarray(Image.open(shot).convert("RGB"))
    assert picture.shape[0] >= 600 and picture.shape[1] >= 1000 and picture.std() > 20
