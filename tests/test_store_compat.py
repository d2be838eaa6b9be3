"""Stores written by earlier versions keep loading, with the same rows (numcodecs-style fixtures).

``tests/fixtures/stores/`` holds real stores, each written by the fmtbench of its name
(``fmtbench run -d synthetic --n 300 -c npy -c hdf5/chunk64-gzip4 -c parquet/rg64-zstd
-w write,scan,random -p quick --rounds 2``): ``schema2-before-config`` by commit 6bb2ceb, before
records carried their case's configuration, ``schema2-with-config`` after; ``schema2-with-host``
(``-c npy -c hdf5/chunk64 -w write,scan``) by commit dfd3615, the last before records named their
code and settings (schema 3). ``expected_rows.json`` is what reports loaded from them when they
were added; a change to loading that alters a row fails here. Never regenerate a fixture to make
this pass: add a new one beside it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fmtbench.formats import get_case
from fmtbench.reports import load
from fmtbench.reports.render import write_report

STORES = Path(__file__).parent / "fixtures" / "stores"
EXPECTED = json.loads((STORES / "expected_rows.json").read_text())


def _rows(store: Path) -> list[list]:
    results = load.load([store])
    assert results.problems == []
    return sorted(([r.case, r.workload, r.metric, r.cache, r.n, r.median, r.config] for r in results.rows),
                  key=lambda x: x[:4])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_stored_store_loads_the_rows_it_always_did(name):
    assert _rows(STORES / name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_stored_store_renders_a_report(name, tmp_path):
    html = write_report([STORES / name], tmp_path / "r.html").html.read_text()
    cases = {row[0] for row in EXPECTED[name]} - {"memory"}
    assert len(cases) >= 2 and all(case in html for case in cases)


def test_records_carry_their_full_configuration():
    records = [json.loads(line) for line in (STORES / "schema2-with-config" / "results.jsonl").open()]
    measured = [r for r in records if r["kind"] == "measurement"]
    assert measured and all("config" in r for r in measured)
    for r in measured:
        assert r["config"] == ({} if r["case"] == "memory" else get_case(r["case"]).config)


def test_the_stored_configuration_wins_over_parsing_the_id(tmp_path):
    """An option renamed since the run: the id no longer parses, or parses to something else.
    The stored configuration is what was measured, so the report keeps it."""
    store = tmp_path / "renamed"
    shutil.copytree(STORES / "schema2-with-config", store)
    text = (store / "results.jsonl").read_text()
    (store / "results.jsonl").write_text(text.replace('"hdf5/chunk64-gzip4"', '"hdf5/rows64-gzip4"'))
    rows = [r for r in load.load([store]).rows if r.case == "hdf5/rows64-gzip4"]
    assert rows and all(r.config["chunk"] == 64 and r.config["compression"] == "gzip4" for r in rows)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_stored_store_reads_as_unknown_code_and_settings(name):
    """Records written before schema 3 named no code or settings: read as "unknown", one version."""
    results = load.load([STORES / name])
    assert results.rows and {r.code for r in results.rows} == {"unknown"}
    records = [json.loads(line) for line in (STORES / name / "results.jsonl").open()]
    assert all(r["schema"] <= 2 and "code" not in r and "settings" not in r for r in records)
