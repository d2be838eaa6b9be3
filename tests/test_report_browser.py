"""The report in headless Chromium: offline, no console errors, every chart drawn, the table sortable."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
# Screenshots go to a temporary folder, or to FMTBENCH_ARTIFACTS when set (to look at them).
ARTIFACTS = os.environ.get("FMTBENCH_ARTIFACTS")

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


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_report_renders_offline_with_charts_and_a_sortable_table(report, tmp_path):
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

            page.screenshot(path=str(_artifacts(tmp_path) / "report.png"), full_page=True)
            assert page.locator("text=not measured in this run").count() == 0  # this store has every section
        finally:
            browser.close()


def test_the_first_screen_shows_every_pick_as_a_person_sees_it(report, tmp_path):
    # what a reader sees without scrolling on a laptop screen: the picks of this run's numbers
    from playwright.sync_api import sync_playwright

    from fmtbench.reports.load import load
    from fmtbench.reports.render import context

    # the picks the page was rendered from (flagged figures never picked)
    picks = {r.use: r.case for r in context(load([report.parent / "old", report.parent / "new"]))["recommendations"]}
    assert all(picks.values()) and {"shuffled training", "streaming training"} <= set(picks)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(report.as_uri(), wait_until="load")
            rows = page.locator("#recommendations tr.pick-row")
            seen = {}
            for i in range(rows.count()):
                row = rows.nth(i)
                use = row.get_attribute("data-use")
                seen[use] = row.locator("td.pick code").inner_text().strip()
                box = row.locator("td.pick").bounding_box()
                assert box and box["width"] > 60, f"the {use!r} pick is not drawn"
                if use != "balanced":  # runner-up and gap, or a tie, as a person reads them
                    assert row.locator("td.gap").inner_text().strip(), f"the {use!r} pick has no runner-up"
            assert seen == picks
            last = rows.nth(rows.count() - 1).bounding_box()
            assert last["y"] < 768, "the last pick is below the first screen"
            page.screenshot(path=str(_artifacts(tmp_path) / "first-screen.png"))
        finally:
            browser.close()


def test_the_balanced_weights_change_the_pick_in_the_page(report):
    # the weights are stated and adjustable: all weight on one use makes that use's pick the balanced one
    from playwright.sync_api import sync_playwright

    from fmtbench.reports.load import load
    from fmtbench.reports.recommend import WEIGHTS, balance
    from fmtbench.reports.render import context

    ctx = context(load([report.parent / "old", report.parent / "new"]))
    data = ctx["balance"]["data"]
    assert data and len(data["metrics"]) >= 2
    only = {m: (1.0 if m == "file_bytes" else 0.0) for m in WEIGHTS}
    expected = balance(ctx["frame"], set(), only).case  # the Python scorer with the same weights
    assert expected is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri(), wait_until="load")
            row = page.locator('#recommendations tr.pick-row[data-use="balanced"]')
            before = row.locator("td.pick code").inner_text()
            for m in data["metrics"]:
                page.fill(f'#balance-weights input[name="{m}"]', "1" if m == "file_bytes" else "0")
            after = row.locator("td.pick code").inner_text()
            assert errors == []
            assert after == expected
            assert "size best" in row.locator("td.costs").inner_text()
            assert before == ctx["recommendations"][-1].case
        finally:
            browser.close()
