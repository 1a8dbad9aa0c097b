"""Class 1: one bad file, or one busy image, never ends a run; memory follows no lying header."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hostile_files import folder_dataset, nifti_claiming, one_error_line, png_claiming, square_case

from samia.evaluation import EvaluationConfig, evaluate
from samia.io import write_label_map

PEAK_RSS = """
import sys
from samia.cli.main import main
sys.argv = ["samia", *sys.argv[1:]]
try:
    main()
except SystemExit as exit_:
    print("exit", exit_.code)
print("peak_kib", next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _peak_run(*args: str) -> tuple[int, int, str]:
    """``(exit code, peak RSS MiB, stderr)`` of ``samia ARGS`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *map(str, args)], capture_output=True, text=True)
    fields = dict(line.split() for line in done.stdout.splitlines() if line.startswith(("exit", "peak_kib")))
    return int(fields.get("exit", 0)), int(fields["peak_kib"]) // 1024, done.stderr


@pytest.mark.parametrize("kind", ["png_20000x20000", "nifti_2000x2000x600"])
def test_a_lying_header_is_refused_before_memory_follows_it(kind, tmp_path):
    """The claims (400 MB of PNG pixels, 9.6 GB of voxels) are never allocated: the refused run peaks
    no higher than a control run that reads a small valid image and then fails (unknown model)."""
    if kind.startswith("png"):
        bomb = png_claiming(tmp_path / "bomb.png", 20000, 20000)
    else:
        bomb = nifti_claiming(tmp_path / "bomb.nii", (2000, 2000, 600))
    small = folder_dataset(tmp_path / "data", {"c0": square_case(0)}) / "images" / "c0.png"
    common = ("--box", "1", "1", "5", "5", "--out", tmp_path / "m.png")
    control_code, control_mib, control_err = _peak_run("segment", small, "--model", "no_such_model", *common)
    assert control_code == 2 and "no_such_model" in one_error_line(control_err)
    code, peak_mib, stderr = _peak_run("segment", bomb, "--model", "no_such_model", *common)  # whole file read
    line = one_error_line(stderr)
    assert code == 2 and "bomb." in line and ("declares" in line or "more pixels" in line)
    assert peak_mib < control_mib + 150


def test_bad_files_are_recorded_and_the_run_goes_on(tmp_path):
    data = folder_dataset(tmp_path / "data", {"good": square_case(0)})
    png_claiming(data / "images" / "bomb.png", 20000, 20000)
    write_label_map(data / "masks" / "bomb.png", np.ones((4, 4), np.uint8))
    nifti_claiming(data / "images" / "liar.nii", (2000, 2000, 600))
    write_label_map(data / "masks" / "liar.png", np.ones((4, 4), np.uint8))
    (data / "images" / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    write_label_map(data / "masks" / "garbage.png", np.ones((4, 4), np.uint8))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
        )
    )
    assert set(outcome.results["case"]) == {"good"}
    assert set(outcome.errors["case"]) == {"bomb", "liar", "garbage"}
    assert outcome.errors["message"].str.contains("bomb.png|liar.nii|garbage.png").all() or all(
        name in path for name, path in zip(sorted(["bomb", "garbage", "liar"]), sorted(outcome.errors["path"]))
    )
    errors = pd.read_csv(tmp_path / "run" / "errors.csv")
    assert len(errors) == 3 and (tmp_path / "run" / "summary.csv").is_file()


def test_a_file_name_that_is_not_utf8_is_evaluated(tmp_path):
    data = folder_dataset(tmp_path / "data", {"good": square_case(0)})
    image, label = square_case(1)
    from PIL import Image

    Image.fromarray(image).save(os.fsdecode(bytes(data / "images") + b"/odd\xff.png"))
    Image.fromarray(label).save(os.fsdecode(bytes(data / "masks") + b"/odd\xff.png"))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
        )
    )
    assert set(outcome.results["case"]) == {"good", "odd\\xff"} and outcome.errors.empty


def test_a_truncated_journal_unit_is_recomputed(tmp_path):
    data = folder_dataset(tmp_path / "data", {f"c{i}": square_case(i) for i in range(3)})
    config = dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
    first = evaluate(EvaluationConfig.from_dict(dict(**config))).results
    units = sorted(p for p in (tmp_path / "run" / ".journal" / "units").glob("*.parquet") if not p.name.startswith("."))
    units[0].write_bytes(units[0].read_bytes()[:50])
    for marker in (tmp_path / "run" / ".journal" / "cases").iterdir():
        marker.unlink()  # as after a kill between the unit write and the case marker
    again = evaluate(EvaluationConfig.from_dict(dict(**config)))
    assert again.units_run == 1 and again.units_skipped == 2
    pd.testing.assert_frame_equal(again.results, first)


MANY_OBJECTS = """
import sys
import numpy as np
from PIL import Image
from pathlib import Path
from samia.io import write_label_map
from samia.evaluation import EvaluationConfig, evaluate
root = Path(sys.argv[1])
(root / "images").mkdir(parents=True); (root / "masks").mkdir()
rng = np.random.default_rng(0)
image = rng.normal(60, 10, (512, 512)); labels = np.zeros((512, 512), np.uint16)
for index in range(121):
    top, left = (index // 11) * 46, (index % 11) * 46
    labels[top + 4: top + 42, left + 4: left + 42] = index + 1
image[labels > 0] += 120
Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / "grid.png")
write_label_map(root / "masks" / "grid.png", labels)
outcome = evaluate(EvaluationConfig.from_dict(dict(data=str(root), out=str(root.parent / "run"), model="tiny_sam",
                                    strategies=["box", "box_jitter"], jitter_repeats=2, selections=["single"],
                                    decode_batch=16)))
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(len(outcome.results), peak_kib // 1024)
"""


def test_an_image_with_121_objects_evaluates_in_bounded_memory(tmp_path):
    """121 objects x 7 box prompts = one 847-prompt decoder group: decoded at once, its 4 outputs
    upsampled to 512 x 512 alone take ~3.5 GB of float32; in chunks of 16, memory stays flat. The
    peak is the child's own (``VmHWM``): ``ru_maxrss`` keeps the parent's high-water mark across
    the exec, so a big test process would be counted."""
    done = subprocess.run([sys.executable, "-c", MANY_OBJECTS, str(tmp_path / "data")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, peak_mib = (int(v) for v in done.stdout.split()[-2:])
    assert rows == 121 * 7
    assert peak_mib < 3500  # chunked; unchunked, the same run peaks at ~5.2 GB
