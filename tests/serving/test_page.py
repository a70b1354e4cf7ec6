"""The search page in a real headless browser (Debian's chromium driven by playwright; no download).

CI installs chromium with apt-get and playwright with pip (.ci/run); the page must work offline,
so every request the browser makes is checked to stay on the service.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest
from conftest import demo_gallery

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
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
def browser():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="pxf-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_upload_a_query_and_see_its_label_in_the_grid(indexed, browser) -> None:
    paths, labels = demo_gallery()
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(indexed.url + "/")
    page.set_input_files("#file", paths[7])
    page.wait_for_selector(".hit .label", timeout=20_000)
    grid_labels = page.locator(".hit .label").all_inner_texts()
    assert grid_labels[0] == labels[7] and len(grid_labels) == 5
    assert page.locator("#verdict").inner_text() == f"Best match: {labels[7]}"
    assert page.locator(".hit img").count() == 5  # thumbnails of the gallery images
    assert " ms" in page.locator("#status").inner_text()
    assert all(url.startswith((indexed.url, "data:")) for url in requested), requested  # offline: no CDN
    page.close()


def test_unknown_verdict_and_errors_are_shown(predictor, gallery_index, tmp_path, browser) -> None:
    from conftest import start_server

    server = start_server(predictor, tmp_path / "i", default_index=str(gallery_index), score_threshold=1.01)
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.set_input_files("#file", demo_gallery()[0][0])
        page.wait_for_selector(".hit .label", timeout=20_000)
        assert page.locator("#verdict").inner_text().startswith("Unknown")
        bad = tmp_path / "not_an_image.jpg"
        bad.write_bytes(b"hello")
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("#status.error", timeout=20_000)
        assert "not an image" in page.locator("#status").inner_text()
        page.close()
    finally:
        server.stop()
