"""The click-to-segment page in headless Chromium (Debian's system browser driven by Playwright's Python
package; never a downloaded browser): upload the sample image, click a point, see a mask drawn, download the
COCO JSON and check it against the library's own answer for the same click."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import require_peer
from PIL import Image

from robosam.masks import decode_rle

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    sync_api = require_peer("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} is missing in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_click_to_segment_page(browser_page, tiny_sam_dir, sample_image_path, tmp_path):
    from test_grounding_tiny import build_grounding_dino

    from robosam.segmenter import Segmenter
    from robosam.serve import ServeConfig, create_app
    from robosam.serve.background import BackgroundServer

    segmenter = Segmenter(tiny_sam_dir, device="cpu")
    page = browser_page
    (tmp_path / "dino").mkdir()
    config = ServeConfig(model=str(tiny_sam_dir), detector=str(build_grounding_dino(tmp_path / "dino")))
    with BackgroundServer(create_app(config, segmenter)) as url:
        page.goto(url + "/")
        page.set_input_files("#file", str(sample_image_path))
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('Ready')", timeout=30_000
        )
        canvas = page.locator("#view")
        before = np.asarray(
            Image.open(_png(canvas.screenshot(), tmp_path / "before.png")).convert("RGB"), float
        )
        box = canvas.bounding_box()
        # the click lands on image pixel (500, 375) of the 1800 x 1200 truck
        canvas.click(position={"x": 500 * box["width"] / 1800, "y": 375 * box["height"] / 1200})
        page.wait_for_function("document.getElementById('view').dataset.masks === '1'", timeout=30_000)
        after = np.asarray(
            Image.open(_png(canvas.screenshot(), tmp_path / "after.png")).convert("RGB"), float
        )
        changed = np.abs(after - before).max(axis=2) > 30
        with page.expect_download() as download_info:
            page.click("#download-json")
        saved = tmp_path / "masks.json"
        download_info.value.save_as(saved)
        with page.expect_download() as png_info:
            page.click("#download-png")
        png_path = tmp_path / "masks.png"
        png_info.value.save_as(png_path)
        page.click("#auto")
        page.wait_for_function("/mask\\(s\\) found/.test(document.getElementById('status').textContent)")
        found = int(page.text_content("#status").split()[0])
        assert page.locator("#view").get_attribute("data-masks") == str(found)
        page.fill("#text", "truck")
        page.click("#ground")
        page.wait_for_function("/match\\(es\\) for/.test(document.getElementById('status').textContent)")
        matches = int(page.text_content("#status").split()[0])
        assert page.locator("#view").get_attribute("data-masks") == str(matches)

    coco = json.loads(saved.read_text())
    (point,) = coco["robosam"]["points"]
    assert point == pytest.approx([500, 375], abs=2.0)
    mask = decode_rle(coco["annotations"][0]["segmentation"])
    expected = segmenter.decode(segmenter.embed(sample_image_path), points=[point], labels=[1]).best()
    assert np.logical_xor(mask, expected.masks[0]).mean() < 1e-3
    assert coco["annotations"][0]["score"] == pytest.approx(float(expected.scores[0]), abs=1e-4)
    # the overlay changed the drawn pixels where (and only roughly where) the mask is
    shown = np.asarray(Image.fromarray(mask).resize(changed.shape[::-1], Image.NEAREST))
    assert changed[shown].mean() > 0.5 and changed[~shown].mean() < 0.2
    png = np.asarray(Image.open(png_path).convert("L")) > 127
    assert png.shape == mask.shape and np.logical_xor(png, mask).mean() < 1e-3


def _png(data: bytes, path: Path) -> Path:
    path.write_bytes(data)
    return path
