"""The README's Python quickstart runs as written (real LiteMedSAM weights, bundled sample)."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.real_weights
def test_quickstart_runs_and_segments_the_cerebellum(monkeypatch):
    text = README.read_text()
    block = re.search(r"## Python quickstart.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(README.parent)
    namespace: dict = {}
    exec(compile(block, "README quickstart", "exec"), namespace)
    from samia.io import read_label
    from samia.metrics import dice

    truth = read_label("samia/data/samples/colin27_aal_2d/masks/colin27_axial_025.png").array == 9
    assert namespace["mask"].shape == truth.shape and namespace["mask"].dtype == np.bool_
    assert dice(namespace["mask"], truth) > 0.85
