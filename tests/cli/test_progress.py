"""Long commands show progress also when stderr is a log file: plain lines with an ETA."""

from __future__ import annotations

import io
import re

import numpy as np
import SimpleITK as sitk

from samia.cli.progress import PlainProgress
from samia.data.phantoms import ellipsoid_mask


def test_plain_lines_carry_every_counter_and_an_eta_of_the_first() -> None:
    stream = io.StringIO()
    plain = PlainProgress(stream, interval_s=0)
    plain.set_total("cases", 4)
    plain.advance("cases", 1, "case_a")
    plain.set_total("prompts", 10, "case_b slice 3")
    plain.advance("prompts", 5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("cases 1/4 (case_a); elapsed ") and ", ETA " in lines[0]
    assert lines[1].startswith("cases 1/4 (case_a); prompts 5/10 (case_b slice 3); elapsed ")


def test_a_long_interval_prints_the_first_line_and_the_last_only() -> None:
    stream = io.StringIO()
    plain = PlainProgress(stream, interval_s=1e9)
    for done in range(1, 51):
        plain.update("slices", done, 50)
    lines = stream.getvalue().splitlines()
    assert [line.split(";")[0] for line in lines] == ["slices 1/50", "slices 50/50"]


def test_evaluate_writes_progress_lines_into_a_log(cli, phantom_2d, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAMIA_PROGRESS_SECONDS", "0")
    code, _, stderr = cli(
        "evaluate", "--data", phantom_2d, "--model", "tiny_sam", "--strategy", "box", "--out", tmp_path / "run"
    )
    assert code == 0, stderr
    cases = re.findall(r"^cases (\d+)/(\d+)", stderr, re.M)
    assert ("3", "3") in cases and "prompts" in stderr and "ETA" in stderr
    assert "\x1b[" not in stderr  # no terminal escape codes in a log


def test_volume_segment_reports_slices_as_they_go(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAMIA_PROGRESS_SECONDS", "0")
    shape = (12, 36, 40)
    array = np.where(ellipsoid_mask(shape, (5.5, 12, 12), (4, 6, 7)), 220, 30).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "ct.nii.gz"))
    code, _, stderr = cli(
        "segment", tmp_path / "ct.nii.gz", "--model", "tiny_sam", "--box3d", 5, 6, 2, 19, 18, 9,
        "--out", tmp_path / "seg.nii.gz",
    )  # fmt: skip
    assert code == 0, stderr
    done = [(int(a), int(b)) for a, b in re.findall(r"^slices \(1 object\) (\d+)/(\d+)", stderr, re.M)]
    assert done and done[-1][0] == done[-1][1] and [d for d, _ in done] == sorted(d for d, _ in done)
