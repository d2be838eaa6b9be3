"""The report in headless Chromium: offline, no console errors, every chart drawn, the table sortable."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright is not installed (pip install 'fmtbench[report]')"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from test_report import build_store

    from fmtbench.reports.render import write_report

    root = tmp_path_factory.mktemp("browser")
    build_store(root / "old", seed=1)
    build_store(root / "new", seed=2, speed=1.5)
    return write_report([root / "old", root / "new"], root / "report.html").html


def _cases(page) -> list[str]:
    return page.eval_on_selector_all("#results-table tbody td.case", "tds => tds.map(td => td.textContent.trim())")


def test_report_renders_offline_with_charts_and_a_sortable_table(report):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            outside: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                       else (outside.append(route.request.url), route.abort()))
            page.goto(report.as_uri(), wait_until="load")

            assert errors == [] and outside == []
            charts = page.eval_on_selector_all("svg.chart", """els => els.map(e => {
                const b = e.getBBox();
                return {marks: e.querySelectorAll('circle, rect, polyline').length, w: b.width, h: b.height,
                        label: e.getAttribute('aria-label')};
            })""")
            assert len(charts) >= 10  # 4 fronts, HDF5 maps and cache bars, training, warm vs cold
            assert [c["label"] for c in charts if not (c["marks"] >= 1 and c["w"] > 100 and c["h"] > 50)] == []

            before = _cases(page)
            header = page.locator('#results-table th[data-metric="file_bytes"]')
            header.click()
            ascending = _cases(page)
            assert ascending != before and ascending[0] == "hdf5/chunk64-blosczstd-bitshuffle"
            header.click()
            assert _cases(page)[0] == "csv"  # the largest file; unmeasured rows stay last

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            assert page.locator("text=not measured in this run").count() == 0  # this store has every section
        finally:
            browser.close()
