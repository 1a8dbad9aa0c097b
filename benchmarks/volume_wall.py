"""A 3D case the way a user runs it: ``samia segment VOLUME --box3d ... (x5) --timings``, process
start to label map.

The volume: 100 slices of 128 x 128 with 5 ellipsoids (``samia.data.phantoms.volume_case``), each
given by its tight 3D box (the CVPR 2024 rule), the bundled LiteMedSAM run by ``--backend``
(default: auto, as a user gets it) after one untimed run that exports it. Prints the wall time, the
command's own stage timings, the encoder and decoder calls, the floor of those calls (torch-counted
FLOPs / this machine's matmul rate, measured in the same run: :mod:`_floor`) and each object's Dice;
``ratio = wall seconds / 45 s``, target <= 1 (issue 28, fp32).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from _floor import Machine, cpu_name, litemedsam_flops
from _results import Row, record
from _target import report

from samia.data.phantoms import volume_case
from samia.metrics import dice
from samia.volume import box3d_of_mask

DEPTH, OBJECTS, BUDGET_S = 100, 5, 45.0
CALLS = re.compile(r"(\d+) slices encoded, (\d+) decoded")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "openvino"])
    backend = parser.parse_args().backend
    volume, labels = volume_case(np.random.default_rng(0), depth=DEPTH, n_objects=OBJECTS)
    with tempfile.TemporaryDirectory() as folder:
        image_path, out = Path(folder) / "case.nii.gz", Path(folder) / "segs.nii.gz"
        image = sitk.GetImageFromArray(volume.array)
        image.SetSpacing(tuple(float(s) for s in volume.spacing[::-1]))
        sitk.WriteImage(image, str(image_path))
        command = [sys.executable, "-c", "import sys; from samia.cli.main import main; sys.argv[0] = 'samia'; main()"]
        command += ["segment", str(image_path), "--model", "litemedsam", "--backend", backend, "--out", str(out)]
        command += ["--timings"]
        for value in range(1, OBJECTS + 1):
            box = box3d_of_mask(labels == value)
            command += ["--box3d", *(str(v) for v in (box.x0, box.y0, box.z0, box.x1, box.y1, box.z1))]
        environment = {**os.environ, "SAMIA_CACHE": str(Path(folder) / "cache")}
        subprocess.run(command, check=True, capture_output=True, env=environment)  # exports, untimed
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, env=environment, text=True)
        wall = time.perf_counter() - started
        segs = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    scores = [dice(segs == value, labels == value) for value in range(1, OBJECTS + 1)]
    encoded, decoded = (int(v) for v in CALLS.search(done.stdout).groups())
    flops, machine = litemedsam_flops(), Machine.measure(with_bf16=False)
    floor = (encoded * flops.encoder_gflop + decoded * flops.decoder_gflop) / machine.rate("fp32")
    print(f"{cpu_name()}; {machine.describe()}")
    print(done.stderr.strip().splitlines()[-1])
    print(
        f"{backend}: {DEPTH} slices, {OBJECTS} boxes: {wall:.1f} s; {encoded} encoder and {decoded} decoder calls, "
        f"floor {floor:.1f} s (wall / floor {wall / floor:.2f}); Dice {', '.join(f'{d:.3f}' for d in scores)}"
    )
    record(
        "volume_wall",
        [
            Row(
                f"`samia segment` a {DEPTH}-slice volume, {OBJECTS} boxes ({backend})",
                f"{wall:.1f} s, Dice {min(scores):.2f}-{max(scores):.2f}",
                f"{wall / floor:.2f}x",
            )
        ],
    )
    return report(wall / BUDGET_S, "<=", 1.0)


if __name__ == "__main__":
    sys.exit(main())
