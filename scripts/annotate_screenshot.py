"""Rebuild docs/annotate.png, the annotation guide's picture of the page: `samia annotate` on the
bundled 2D sample with LiteMedSAM, one box on the left cerebellum, in Debian's Chromium.

    .venv/bin/python scripts/annotate_screenshot.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import expect, sync_playwright

from samia.data import sample_dataset_path
from samia.io import read_label

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def main() -> None:
    data = sample_dataset_path("colin27_aal_2d")
    truth = np.asarray(read_label(data / "masks" / "colin27_axial_025.png").array) == 9
    rows, cols = np.nonzero(truth)
    height, width = truth.shape
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "samia.cli.main", "annotate", str(data), "--out", out, "--port", "0"]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = next(m.group(1) for line in server.stdout if (m := re.search(r"open (http\S+)", line)))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 860})
                page.goto(url)
                expect(page.locator("#status")).to_contain_text("opened")
                page.locator("#objects li", has_text="Cerebellum_L").click()
                expect(page.locator("#draftinfo")).to_contain_text("object 9")
                box = page.locator("#canvas").bounding_box()

                def at(x: float, y: float) -> tuple[float, float]:
                    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height

                page.keyboard.press("b")
                page.mouse.move(*at(cols.min(), rows.min()))
                page.mouse.down()
                page.mouse.move(*at(cols.max(), rows.max()))
                page.mouse.up()
                expect(page.locator("#draftinfo")).to_contain_text("1 edit(s)")
                page.screenshot(path=str(ROOT / "docs" / "annotate.png"))
                browser.close()
        finally:
            server.kill()


if __name__ == "__main__":
    main()
