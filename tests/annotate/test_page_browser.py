"""End to end: ``samia annotate`` in its own process, the page driven in Debian's Chromium through
Playwright (no browser download): open a case, click, see the mask drawn, undo, draw a box, accept,
find the saved file equal to the page's mask; kill the server mid-object and find it resumed; an
unreadable case shows its error. The screenshot is kept in ``$SAMIA_ARTIFACTS_DIR`` when set, else
in the test's temporary folder."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from PIL import Image
from serving import serve
from test_app import write_dataset

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"Debian's chromium is not installed at {CHROMIUM}")

DRAFT_ALPHA = 170  # samia.annotate.server.overlay_rgba: the draft's opacity


def _canvas_point(page, x: int, y: int) -> tuple[float, float]:
    """Where image pixel ``(x, y)`` of the 64 x 48 case lies on the screen (its centre)."""
    box = page.locator("#canvas").bounding_box()
    return box["x"] + (x + 0.5) * box["width"] / 64, box["y"] + (y + 0.5) * box["height"] / 48


def _page_mask(page) -> np.ndarray:
    """The draft the page draws: the overlay image's pixels at the draft's opacity, ``(48, 64)``."""
    alpha = page.evaluate(
        """() => {
        const state = window.samiaView.overlay, canvas = document.createElement('canvas');
        canvas.width = state.naturalWidth; canvas.height = state.naturalHeight;
        const context = canvas.getContext('2d'); context.drawImage(state, 0, 0);
        return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, i) => i % 4 === 3));
    }"""
    )
    return np.array(alpha).reshape(48, 64) == DRAFT_ALPHA


RATER = ("--rater", "alice")


def test_the_page_annotates_saves_resumes_and_reports_errors(tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    data, out = write_dataset(tmp_path / "data"), tmp_path / "out"
    artifacts = Path(os.environ.get("SAMIA_ARTIFACTS_DIR") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    server, url = serve(data, out, tmp_path / "cache", options=RATER)
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda error: problems.append(str(error)))
                page.goto(url, wait_until="load")
                expect(page.locator("#status")).to_have_text("opened case_a")
                expect(page.locator("#cases li")).to_have_count(4)
                expect(page.locator("#mode")).to_have_text("SAM-assisted \u00b7 rater alice")

                # the first case opens ready: a typed name and a click start object 1, no "New" needed
                expect(page.locator("#draftinfo")).to_contain_text("click or draw to start an object")
                page.fill("#objectname", "lesion")
                page.mouse.click(*_canvas_point(page, 30, 20))
                expect(page.locator("#draftinfo")).to_contain_text("object 1: 1 edit(s)")
                expect(page.locator("#objects li").first).to_contain_text("lesion")
                clicked = _page_mask(page)
                shown = int(re.search(r"(\d+) px", page.locator("#draftinfo").inner_text()).group(1))
                assert clicked.any() and clicked.sum() == shown  # the mask the server made is drawn
                page.keyboard.press("Control+z")
                expect(page.locator("#draftinfo")).to_contain_text("0 edit(s)")
                assert not _page_mask(page).any()

                page.keyboard.press("b")
                page.mouse.move(*_canvas_point(page, 18, 10))
                page.mouse.down()
                page.mouse.move(*_canvas_point(page, 32, 20))
                page.mouse.move(*_canvas_point(page, 46, 32))
                page.mouse.up()
                expect(page.locator("#draftinfo")).to_contain_text("1 edit(s)")
                boxed = _page_mask(page)
                assert boxed.any()
                page.screenshot(path=str(artifacts / "annotate.png"))
                page.keyboard.press("Enter")
                expect(page.locator("#objects li .sub")).to_have_text("accepted")
                saved = np.asarray(Image.open(out / "case_a" / "labels.png"))
                np.testing.assert_array_equal(saved == 1, boxed)
                answers = np.asarray(Image.open(out / "case_a" / "model_answers.png"))
                np.testing.assert_array_equal(answers == 1, boxed)  # the box was the first and only prompt

                # a second object, then the server is killed in the middle of it and restarted
                page.keyboard.press("n")
                expect(page.locator("#draftinfo")).to_contain_text("object 2: 0 edit(s)")
                page.keyboard.press("p")
                page.mouse.click(*_canvas_point(page, 10, 40))
                expect(page.locator("#draftinfo")).to_contain_text("object 2: 1 edit(s)")
                before = _page_mask(page)
                assert problems == []
                server.send_signal(signal.SIGKILL)
                server.wait()
                server, url = serve(data, out, tmp_path / "cache", options=RATER)
                page.goto(url, wait_until="load")
                expect(page.locator("#status")).to_have_text("opened case_a")
                expect(page.locator("#draftinfo")).to_contain_text("object 2: 1 edit(s)")
                np.testing.assert_array_equal(_page_mask(page), before)
                # while the server was down, the page's heartbeat may have found nobody (however long
                # the restart took on this machine): the browser's own line for that, and nothing else
                assert all("ERR_CONNECTION_REFUSED" in problem for problem in problems)
                problems.clear()

                page.locator("#cases li", has_text="zz_corrupt").click()
                expect(page.locator("#status")).to_contain_text("zz_corrupt.png")
                expect(page.locator("#status")).to_have_class("error")
                expect(page.locator("#cases li.error")).to_have_count(1)
                page.locator("#cases li", has_text="case_b").click()
                expect(page.locator("#status")).to_have_text("opened case_b")
            finally:
                browser.close()
    finally:
        server.kill()
        server.wait()
    # the only console error: the browser's own line for the unreadable case's 422
    assert len(problems) == 1 and "422" in problems[0], problems
    assert (artifacts / "annotate.png").stat().st_size > 10_000


def test_new_asks_before_dropping_a_mask_and_a_second_browser_takes_the_case_over(tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    data, out = write_dataset(tmp_path / "data"), tmp_path / "out"
    server, url = serve(data, out, tmp_path / "cache")
    asked: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                first = browser.new_context().new_page()  # two contexts: two browsers, no shared state
                first.goto(url, wait_until="load")
                expect(first.locator("#status")).to_have_text("opened case_a")
                first.keyboard.press("n")
                expect(first.locator("#draftinfo")).to_contain_text("object 1: 0 edit(s)")
                first.mouse.click(*_canvas_point(first, 30, 20))
                expect(first.locator("#draftinfo")).to_contain_text("object 1: 1 edit(s)")
                drawn = _page_mask(first)

                first.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
                first.keyboard.press("n")  # Cancel: keep drawing object 1
                expect(first.locator("#status")).to_contain_text("object 1 has a mask of")
                expect(first.locator("#draftinfo")).to_contain_text("object 1: 1 edit(s)")
                assert not (out / "case_a" / "labels.png").exists()
                first.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
                first.keyboard.press("n")  # OK: accept it, then the new object
                expect(first.locator("#draftinfo")).to_contain_text("object 2: 0 edit(s)")
                saved = np.asarray(Image.open(out / "case_a" / "labels.png"))
                np.testing.assert_array_equal(saved == 1, drawn)
                assert len(asked) == 2 and all("that is not accepted" in text for text in asked)

                second = browser.new_context().new_page()
                second.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
                second.goto(url, wait_until="load")  # opens case_a, held by the first page: take it over
                expect(second.locator("#status")).to_have_text("opened case_a")
                assert "case case_a is open in another browser" in asked[-1]
                first.mouse.click(*_canvas_point(first, 10, 40))
                expect(first.locator("#status")).to_contain_text("case case_a was taken over by another browser")
                expect(first.locator("#status")).to_have_class("error")
            finally:
                browser.close()
    finally:
        server.kill()
        server.wait()
