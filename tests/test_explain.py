"""What the report explains: picks with their runner-up and gap, the balanced weights, what each
option did, the per-format cards, the section leads and what the run did not measure."""
from __future__ import annotations

import math

import pytest
from test_report import CASES, _frame, build_store

from fmtbench.metrics import METRICS
from fmtbench.reports import cards, effects, leads, recommend, sections
from fmtbench.reports.analysis import frame
from fmtbench.reports.load import load
from fmtbench.reports.render import context

pytest.importorskip("jinja2")


@pytest.fixture(scope="module")
def fr(tmp_path_factory):
    return _frame(tmp_path_factory.mktemp("explain"))


def test_every_use_has_a_pick_a_runner_up_with_its_gap_and_the_cost_elsewhere(fr):
    recs = {r.use: r for r in recommend.recommend(fr)}
    assert list(recs) == [u.name for u in recommend.USES] + ["balanced"]
    write = recs["fastest write"]
    assert write.case == min(CASES, key=lambda c: CASES[c][1])  # npy writes in 0.05 s
    assert write.runner_up.case == "hdf5"  # 0.08 s: 1.6x, far beyond 2% noise
    assert write.runner_up.times == pytest.approx(1.6, rel=0.1) and not write.runner_up.tie
    assert 1 < write.runner_up.low <= write.runner_up.times <= write.runner_up.high
    # npy is the best writer but not the smallest file (47 MiB against 7.5): the cost is said
    size = next(c for c in write.costs if c.use == "size")
    assert size.best == "hdf5/chunk64-blosczstd-bitshuffle" and size.times == pytest.approx(47 / 7.5, rel=0.01)
    assert "size ×6.27" in size.text()
    serving = recs["random single-sample serving"]
    assert serving.case == "tfrecord" and serving.value.endswith("µs")


def test_a_runner_up_inside_the_interval_is_a_tie(fr):
    recs = {r.use: r for r in recommend.recommend(fr)}
    # sqlite (50 MiB) and npy (47) differ; hdf5 and hdf5/chunk1024 are 47 vs 47.05 MiB: within 1%
    top = recs["smallest file"]
    assert top.runner_up.case == "hdf5/chunk1024-gzip4-shuffle" and not top.runner_up.tie
    g = recommend.runner_up(fr, "file_bytes", ["hdf5", "hdf5/chunk1024"], "hdf5")
    assert g.tie and g.times < 1.01


def test_the_balanced_weights_are_stated_and_change_the_pick(fr):
    default = recommend.balance(fr)
    data = recommend.balance_data(fr)
    assert len(data["metrics"]) >= 4  # every use this store measured for at least half the cases
    assert all(f"{METRICS[m].label} 1" in default.reason.split("weights: ")[1] for m in data["metrics"])
    only_size = recommend.balance(fr, weights={"file_bytes": 1.0})
    assert only_size.case == "hdf5/chunk64-blosczstd-bitshuffle"  # the smallest file, nothing else counts
    only_write = recommend.balance(fr, weights={"write_s": 1.0})
    assert only_write.case == "npy"
    assert recommend.balance(fr, weights={}).case is None
    s = recommend.scores(data, recommend.WEIGHTS)
    assert min(s, key=s.get) == default.case and math.isclose(min(s.values()), s[default.case])


def test_option_effects_compare_cases_that_differ_in_one_option(fr):
    found = {(e.option, e.old, e.new): e for e in effects.effects(fr, "hdf5", effects.configs(fr))}
    gz = found[("compression", "default", "gzip4")]  # chunk64 -> chunk64-gzip4 and chunk1024 -> chunk1024-gzip4
    assert sorted(gz.pairs) == [("hdf5/chunk1024", "hdf5/chunk1024-gzip4"), ("hdf5/chunk64", "hdf5/chunk64-gzip4")]
    assert gz.factors["file_bytes"] > 4 and gz.factors["random_p50_s"] < 1  # smaller, slower single reads
    assert "smaller file" in gz.text() and "slower single reads" in gz.text()
    sh = found[("shuffle", "default", "shuffle")]
    assert sh.factors["file_bytes"] > 1  # the byte shuffle made gzip smaller here (9 -> 8 MiB)
    # fletcher32 adds 0.1 MiB to 47 (0.2%): no effect on size claimed, but 1.2x slower writes are
    f32 = found[("fletcher32", "default", "fletcher32")]
    assert f32.pairs == [("hdf5/chunk64", "hdf5/chunk64-fletcher32")]
    assert "file_bytes" not in f32.factors and f32.factors["write_s"] == pytest.approx(0.1 / 0.12, rel=0.05)
    # sqlite vs sqlite/wal: the journal; reads 1.07x slower with wal, beyond 2% noise
    wal = {(e.option, e.new): e for e in effects.effects(fr, "sqlite", effects.configs(fr))}[("journal", "wal")]
    assert wal.factors["random_p50_s"] == pytest.approx(1.5 / 1.6, rel=0.05)


def test_a_card_per_format_with_its_best_cases_effects_and_damage(fr):
    by = {c.fmt: c for c in cards.cards(fr, sections.damage(fr))}
    assert {"npy", "csv", "hdf5", "parquet", "sqlite", "tfrecord"} <= set(by)
    npy = {b.use: b for b in by["npy"].best}
    assert npy["write"].top and npy["write"].standing.startswith("best of all")
    assert not npy["size"].top and "the best (hdf5/chunk64-blosczstd-bitshuffle)" in npy["size"].standing
    flipped = next(d for d in by["hdf5"].damage if d.startswith("flipped"))
    # only some HDF5 cases are sure to detect a flipped byte: gzip's Adler-32, not Fletcher-32 (see hdf5.py)
    assert "detected only by" in flipped and "hdf5/chunk64-gzip4" in flipped and "fletcher32" not in flipped
    assert any("tfrecord/gzip" in c and "skipped" in c for c in by["tfrecord"].caveats)
    assert by["hdf5"].effects and not by["csv"].effects  # one csv case: nothing to compare
    # own order against random order: this store streams hdf5 and tfrecord at 4x their shuffled rate
    assert by["hdf5"].orders.startswith("hdf5 trains at") and "streaming is ×" in by["hdf5"].orders
    assert float(by["hdf5"].orders.split("streaming is ×")[1].split()[0]) == pytest.approx(4.0, rel=0.02)
    assert by["npy"].orders == ""  # npy did not stream here


def test_two_options_that_only_change_together_are_reported_as_one_change(tmp_path):
    # parquet/rg1024-zstd and parquet/rgall-snappy differ in row group and compression, and no
    # pair of cases tells the two apart: the report names both rather than crediting one
    fr = _frame(tmp_path)
    (e,) = effects.effects(fr, "parquet", effects.configs(fr))
    assert e.option == "compression and row_group" and e.pairs == [("parquet/rg1024-zstd", "parquet/rgall-snappy")]
    assert e.factors["random_p50_s"] == pytest.approx(7.5e-4 / 3.9e-2, rel=0.05)  # 52x slower single reads


def test_section_leads_come_from_the_numbers(fr, tmp_path):
    ctx = context(load([_store(tmp_path)]))
    lead = ctx["leads"]
    assert "compression default → gzip4" in lead["hdf5"]
    assert "A shuffled pass from memory takes" in lead["training"]
    assert "tfrecord streams" in lead["training"] or "hdf5 streams" in lead["training"]
    assert "single-sample read costs a median ×2.50" in lead["warm_cold"]  # the store's cold reads are 2.5x
    rows = ctx["damage"]["rows"]
    flipped = sum(r["cells"][1]["label"] != "not detected" for r in rows)
    assert 0 < flipped < len(rows) and f"{flipped} of {len(rows)} cases are sure to raise an error on a flipped" \
        in lead["damage"]
    assert "on at least one of the 4 fronts" in lead["fronts"]


def test_what_the_run_did_not_measure_names_how_to_measure_it(tmp_path):
    warm_only = frame(load([build_store(tmp_path / "w", cold=False, train=False, extras=False).folder]))
    missing = {n["what"]: n for n in leads.not_measured(warm_only, 60000)}
    assert any("shuffled Keras training" in w for w in missing)
    assert "fmtbench run --cache both" in [n["how"] for n in missing.values()]
    assert any("GPU" in w for w in missing) and any("network" in w for w in missing)
    assert any(w.startswith("formats ") and "lance" in w for w in missing)
    full = frame(load([build_store(tmp_path / "f").folder]))
    assert not any("cold page cache" in w for w in (n["what"] for n in leads.not_measured(full)))


def _store(tmp_path):
    return build_store(tmp_path / "s").folder


def test_report_weights_from_the_command_line(tmp_path):
    import subprocess
    import sys

    folder = _store(tmp_path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "fmtbench", "report", str(folder), "-o",  # noqa: E731
                                     str(tmp_path / "r.html"), *a], capture_output=True, text=True, timeout=300)
    bad = run("--weights", "size=2,wrte=1")
    assert bad.returncode != 0 and bad.stderr.strip() == (
        "error: unknown balanced-weight use 'wrte'; valid: serving, shuffled, size, streaming, write")
    assert "Traceback" not in bad.stderr
    done = run("--weights", "size=1,streaming=0,shuffled=0,serving=0,write=0")
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").read_text()
    row = page[page.index('data-use="balanced"'):]
    assert "<code>hdf5/chunk64-blosczstd-bitshuffle</code>" in row[:1500]  # all weight on size: the smallest
    assert 'name="write_s" min="0" max="9" step="0.5" value="0.0"' in page


def test_a_cluster_run_shows_each_host_side_by_side_never_mixed(tmp_path):
    from fmtbench.reports.render import write_report
    from fmtbench.results import ResultStore

    store = ResultStore(tmp_path / "c")
    store.start_run({"cpu_model": "Test CPU"}, ["fmtbench", "run", "--cluster", "local:2"], {"name": "quick"},
                    "synthetic", "d" * 64)
    for host, scale in (("alpha", 1.0), ("beta", 2.0)):
        for rnd in range(3):
            store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [scale * (1e6 + rnd)], "synthetic",
                                  "d" * 64, round=rnd, host=host)
    store.add_measurement("hdf5", "scan", "scan_samples_per_s", "warm", [5e5], "synthetic", "d" * 64, host="alpha")
    ctx = context(load([store.folder]))
    h = ctx["hosts"]
    assert h["hosts"] == ["alpha", "beta"] and h["only_one"] == 1
    (row,) = h["rows"]
    assert row["case"] == "npy" and [c["ratio"] for c in row["cells"]] == ["", "2.00×"]
    # one median per host: 1.0 M and 2.0 M, never the mixed median of all six rounds
    assert [c["v"] for c in row["cells"]] == [pytest.approx(1e6 + 1), pytest.approx(2e6 + 2)]
    page = write_report([store.folder], tmp_path / "r.html").html.read_text()
    assert 'id="hosts"' in page and "Hosts side by side" in page
    single = context(load([_store(tmp_path)]))
    assert single["hosts"] is None
