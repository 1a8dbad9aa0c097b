"""End to end: ``samia evaluate`` (tiny_sam, masks saved), ``samia report``, then the page in headless Chromium.

Uses Debian's ``chromium`` through Playwright (no browser download). The screenshot is kept in
``$SAMIA_ARTIFACTS_DIR`` when set, else in the test's temporary folder.
"""

import os
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from typer.testing import CliRunner

from samia.cli.main import app

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"Debian's chromium is not installed at {CHROMIUM}")


def test_report_of_a_real_run_renders_without_errors(tiny_sam_run, tmp_path):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(tiny_sam_run), "--out", str(out), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    figures = sorted((out / "figures").glob("*.png"))
    artifacts = Path(os.environ.get("SAMIA_ARTIFACTS_DIR") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
            page.goto((out / "report.html").as_uri(), wait_until="load")

            widths = page.eval_on_selector_all("img", "images => images.map(image => image.naturalWidth)")
            assert len(widths) == len(figures) and all(width > 0 for width in widths)  # every plot decoded
            assert page.locator("img[src^='data:image/png;base64,']").count() == len(figures)
            assert page.locator(".gallery img").count() == 2 * 2  # best and worst of box and point1
            assert page.locator("table[data-table='headline'] tbody tr").count() == 2 * 3  # strategies x selections
            for name in ("runs", "compare_strategies", "compare_selections", "by_modality", "by_object", "targets"):
                assert page.locator(f"table[data-table='{name}']").count() == 1, name
            assert page.locator("img[data-figure='oracle_gap']").is_visible()
            page.screenshot(path=str(artifacts / "report.png"), full_page=False)
        finally:
            browser.close()
    assert problems == []
    assert (artifacts / "report.png").stat().st_size > 10_000
