"""The trade-off report: loading, fronts, best per column, recommendations, claims, comparison, escaping."""
from __future__ import annotations

import csv
import json
from unittest import mock

import numpy as np
import pytest

from fmtbench.reports import analysis, claims, load, recommend, render, svg
from fmtbench.reports.analysis import Frame, best_per_column, frame, pareto_front
from fmtbench.metrics import readers_metric
from fmtbench.reports.compare import compare
from fmtbench.results import ResultStore

pytest.importorskip("jinja2")

N = 60000
DS, DIGEST = "synthetic", "d" * 64
# case: file MiB, write s, scan samples/s, random p50 s, random batch samples/s, train samples/s, data wait
CASES = {
    "npy": (47, 0.05, 9e6, 15e-6, 2e6, 60e3, 0.02),
    "csv": (120, 4.0, 5e4, 4e-3, 3e3, 2.5e3, 0.9),
    "parquet/rg1024-zstd": (9, 1.2, 2.5e6, 7.5e-4, 12e3, 9e3, 0.5),
    "parquet/rgall-snappy": (12, 0.5, 3e6, 3.9e-2, 1.9e3, 1.5e3, 0.95),
    "sqlite": (50, 1.0, 4e5, 1.5e-4, 3e4, 20e3, 0.3),
    "sqlite/wal": (50, 1.1, 3.8e5, 1.6e-4, 2.9e4, 19e3, 0.3),
    "tfrecord": (55, 2.0, 1.2e6, 6e-6, 3e5, 45e3, 0.05),
    "hdf5": (47, 0.08, 5e6, 3e-5, 9e4, 50e3, 0.04),
    "hdf5/chunk64": (47.1, 0.1, 4e6, 4e-5, 8e4, 48e3, 0.05),
    "hdf5/chunk1024": (47.05, 0.09, 4.5e6, 9e-5, 6e4, 46e3, 0.06),
    "hdf5/chunk64-gzip4": (10, 1.5, 6e5, 2e-4, 2e4, 15e3, 0.4),
    "hdf5/chunk1024-gzip4": (9, 1.3, 7e5, 1.6e-3, 5e3, 4e3, 0.8),
    "hdf5/chunk64-lzf": (14, 0.4, 1.5e6, 8e-5, 4e4, 30e3, 0.2),
    "hdf5/chunk1024-lzf": (13, 0.35, 1.8e6, 7e-4, 9e3, 8e3, 0.6),
    "hdf5/chunk64-gzip4-shuffle": (8.5, 1.6, 5.5e5, 2.1e-4, 1.9e4, 14e3, 0.4),
    "hdf5/chunk1024-gzip4-shuffle": (8, 1.4, 6.5e5, 1.7e-3, 4.8e3, 3.9e3, 0.8),
    "hdf5/chunk1024-gzip4-cache64m": (9, 1.3, 7.2e5, 1.2e-4, 2.4e5, 30e3, 0.2),
    "hdf5/chunk64-blosczstd-bitshuffle": (7.5, 0.3, 2e6, 6e-5, 5e4, 35e3, 0.15),
    "hdf5/chunk64-fletcher32": (47.2, 0.12, 3.8e6, 4.2e-5, 7.8e4, 47e3, 0.05),
}
SKIPPED = ("tfrecord/gzip", "random", "GZIP-compressed TFRecord cannot seek: no random access")


def _values(rng, median: float, n: int, noise: float) -> list[float]:
    return list(median * (1 + noise * rng.standard_normal(n)))


def build_store(folder, **kw) -> ResultStore:
    """A store shaped like a real default run: write, scan and random (warm and cold), train, a skip."""
    with mock.patch("fmtbench.results.os.fsync"):  # durability is not under test here; fsyncs cost seconds
        return _build_store(folder, **kw)


def _build_store(folder, *, speed: float = 1.0, seed: int = 0, cases=CASES, dataset: str = DS,
                 cold: bool = True, train: bool = True, mismatch: tuple[str, ...] = (),
                 extras: bool = True) -> ResultStore:
    rng = np.random.default_rng(seed)
    store = ResultStore(folder)
    store.start_run({"cpu_model": "Test CPU", "logical_cores": 4, "memory_total_bytes": 16 << 30,
                     "libraries": {"h5py": "3.14.0", "hdf5": "1.14.6", "numpy": np.__version__},
                     "hdf5_chunk_cache": {"rdcc_nslots": 521, "rdcc_nbytes": 1 << 20, "rdcc_w0": 0.75}},
                    ["fmtbench", "run", "-p", "default"], {"name": "default", "repeats": 5}, dataset, DIGEST)
    add = lambda case, wl, metric, cache, vals, extra=None: store.add_measurement(  # noqa: E731
        case, wl, metric, cache, vals, dataset, DIGEST, extra)
    if train:
        add("memory", "train", "epoch_s", "warm", _values(rng, N / 70e3, 2, 0.01), {"weights_digest": "ab" * 32})
        add("memory", "train", "train_samples_per_s", "warm", _values(rng, 70e3, 2, 0.01))
    for case, (mib, write, scan, p50, batch, rate, wait) in cases.items():
        add(case, "write", "write_s", "n/a", _values(rng, write, 3, 0.02), {"rows": N})
        add(case, "write", "file_bytes", "n/a", [mib * 2**20])
        add(case, "write", "compression_ratio", "n/a", [47.0 / mib])
        for cache in ("warm", "cold") if cold else ("warm",):
            slow = (1 if cache == "warm" else 2.5) / speed
            extra = {"k": 1000, "read_bytes": [0 if cache == "warm" else 40_000] * 5,
                     "residency_before": [1.0 if cache == "warm" else 0.0] * 5}
            add(case, "scan", "scan_samples_per_s", cache, _values(rng, scan / slow, 5, 0.02), extra)
            add(case, "scan", "scan_mb_per_s", cache, _values(rng, scan / slow * 785e-6, 5, 0.02), extra)
            add(case, "random", "random_p50_s", cache, _values(rng, p50 * slow, 5, 0.02), extra)
            add(case, "random", "random_p99_s", cache, _values(rng, p50 * slow * 3, 5, 0.05), extra)
            add(case, "random", "batch_unsorted_samples_per_s", cache, _values(rng, batch / slow, 5, 0.02))
        if train:
            match = {"weights_digest": "cd" * 32 if case in mismatch else "ab" * 32,
                     "weights_match_baseline": case not in mismatch}
            add(case, "train", "epoch_s", "warm", _values(rng, N / rate / speed, 2, 0.01), match)
            add(case, "train", "train_samples_per_s", "warm", _values(rng, rate * speed, 2, 0.01), match)
            add(case, "train", "data_wait_share", "warm", _values(rng, wait, 2, 0.01), match)
            add(case, "train", "final_accuracy", "warm", [0.9123], match)
            if case in ("tfrecord", "hdf5"):
                add(case, "train", "native_samples_per_s", "warm", _values(rng, 4 * rate, 1, 0), {"order_identical": False})
        if extras and case in ("npy", "hdf5"):  # concurrent readers: npy scales, hdf5 serializes
            for mode in ("processes", "threads"):
                for n in (1, 2, 4):
                    gain = min(n, 2) if case == "npy" else 1
                    add(case, "readers", readers_metric("random", mode, n), "warm",
                        _values(rng, batch * gain, 3, 0.01), {"readers": n, "mode": mode, "p99_s": [p50 * 3]})
    if extras:  # checkpoints: the MLP through two Keras formats, warm and cold
        for variant, mib in (("keras", 1.19), ("h5", 1.18)):
            case = f"checkpoint/mlp/{variant}"
            for cache in ("warm", "cold"):
                ok = {"bit_exact": True, "params": 101_770}
                add(case, "checkpoint", "checkpoint_save_s", cache, _values(rng, 0.05, 3, 0.02), ok)
                add(case, "checkpoint", "checkpoint_load_s", cache, _values(rng, 0.03, 3, 0.02), ok)
                add(case, "checkpoint", "checkpoint_bytes", cache, [mib * 2**20], ok)
    store.add_skip(SKIPPED[0], SKIPPED[1], "warm", SKIPPED[2], dataset=dataset)
    return store


def _frame(tmp_path, **kw) -> Frame:
    build_store(tmp_path / "s", **kw)
    return frame(load.load([tmp_path / "s"]))


def test_load_normalizes_rows_and_keeps_only_unresolved_problems(tmp_path):
    store = ResultStore(tmp_path)
    store.add_failure("csv", "scan", "warm", ValueError("bad row 3"), dataset=DS)
    store.add_skip("sqlite", "scan", "warm", "no sqlite", dataset=DS)
    store.add_measurement("sqlite", "scan", "scan_samples_per_s", "warm", [1.0, 2.0, 3.0], DS, DIGEST)
    res = load.load([tmp_path])
    (row,) = res.rows
    assert (row.case, row.better, row.unit, row.median, row.q1, row.q3) == ("sqlite", "higher", "samples/s", 2.0, 1.5, 2.5)
    assert [(p.kind, p.case, p.reason) for p in res.problems] == [("failure", "csv", "ValueError: bad row 3")]


def test_pareto_front_drops_dominated_points_with_directions_from_the_metrics_table():
    pts = {"small-slow": (1.0, 100.0), "big-fast": (2.0, 200.0), "big-middling": (3.0, 150.0)}
    # file size lower is better, scan throughput higher is better: big-middling is beaten by big-fast
    assert pareto_front(pts, ("file_bytes", "scan_samples_per_s")) == ["small-slow", "big-fast"]
    # same numbers as a latency (lower is better): small-slow now beats both
    assert pareto_front(pts, ("file_bytes", "random_p99_s")) == ["small-slow"]


def test_best_per_column_follows_direction_excludes_baseline_and_ignores_flat_columns(tmp_path):
    fr = _frame(tmp_path)
    best = best_per_column(fr)
    assert best[("file_bytes", "n/a")] == {"hdf5/chunk64-blosczstd-bitshuffle"}
    assert best[("scan_samples_per_s", "warm")] == {"npy"}
    assert best[("random_p50_s", "warm")] == {"tfrecord"}
    assert best[("train_samples_per_s", "warm")] == {"npy"}  # the in-memory baseline (70k/s) is not a case
    flat = Frame(DS, DIGEST, [r for r in fr.rows if r.metric == "compression_ratio"][:1] * 2)
    assert ("compression_ratio", "n/a") not in best_per_column(flat)


def test_recommendations_come_from_the_data(tmp_path):
    fr = _frame(tmp_path, mismatch=("npy",))  # npy trains fastest but its weights differ: not eligible
    recs = {r.use: r for r in recommend.recommend(fr)}
    assert recs["smallest file"].case == "hdf5/chunk64-blosczstd-bitshuffle"
    assert "7.50 MiB" in recs["smallest file"].reason
    assert recs["random single-sample serving"].case == "tfrecord"
    assert recs["shuffled training"].case == "hdf5"
    # streaming is its own question with its own pick: only tfrecord and hdf5 streamed here
    assert recs["streaming training"].case == max(("tfrecord", "hdf5"), key=lambda c: CASES[c][5])
    assert recs["balanced"].case is not None and "×" in recs["balanced"].reason


def test_training_recommendations_fall_back_to_reads_when_training_was_not_run(tmp_path):
    recs = {r.use: r for r in recommend.recommend(_frame(tmp_path, train=False))}
    assert "training not measured" in recs["shuffled training"].reason
    assert "by random-batch throughput" in recs["shuffled training"].reason
    assert recs["streaming training"].case == "npy"
    assert "by sequential scan throughput" in recs["streaming training"].reason


def test_claims_verdicts(tmp_path):
    verdicts = {c.claim: c.verdict for c in claims.check_claims(_frame(tmp_path))}
    assert verdicts == {
        "HDF5 partial reads avoid loading everything": "supported",
        "Chunking and compression make HDF5 files smaller and partial reads faster": "not supported",
        "gzip is slower than LZF": "supported",
        "TFRecord is better for streaming": "not supported",
        "A database (SQLite) is slower than HDF5": "supported",
        "Text formats (CSV) are far slower to read than HDF5": "supported",
        "Loading the data takes HDF5 about 2 s and JSON about a minute": "not measured",
    }


@pytest.mark.parametrize(("json_scan", "verdict"), [(2e4, "supported"), (1e6, "not supported")])
def test_the_json_claim_compares_reading_the_split(tmp_path, json_scan, verdict):
    store = build_store(tmp_path)
    rng = np.random.default_rng(1)
    store.add_measurement("jsonl", "scan", "scan_samples_per_s", "warm", _values(rng, json_scan, 5, 0.02), DS, DIGEST)
    store.add_measurement("jsonl", "write", "write_s", "n/a", _values(rng, 3.0, 5, 0.02), DS, DIGEST,
                          extra={"rows": 60000})
    claim = {c.claim: c for c in claims.check_claims(frame(load.load([tmp_path])))}[
        "Loading the data takes HDF5 about 2 s and JSON about a minute"]
    assert claim.verdict == verdict
    assert "reading 60,000 samples: JSON Lines" in claim.evidence[0] and "(hdf5" in claim.evidence[0]


def test_claims_without_data_are_not_measured_with_the_reason(tmp_path):
    store = ResultStore(tmp_path)
    store.add_failure("hdf5", "scan", "warm", OSError("unable to open"), dataset=DS)
    store.add_measurement("npy", "write", "file_bytes", "n/a", [1.0], DS, DIGEST)
    out = claims.check_claims(frame(load.load([tmp_path])))
    assert {c.verdict for c in out} == {"not measured"}
    assert any("OSError: unable to open" in e for c in out for e in c.evidence)


def test_cold_runs_that_were_not_cold_are_called_out(tmp_path):
    from fmtbench.reports import panels

    store = ResultStore(tmp_path)
    cold = {"parquet": ([1.0] * 3, [0] * 3), "sqlite": ([0.0] * 3, [0] * 3), "hdf5": ([0.0] * 3, [2 << 20] * 3)}
    for case, (resident, fetched) in cold.items():
        store.add_measurement(case, "write", "write_s", "n/a", [1.0], DS, DIGEST, {"rows": 1000})
        store.add_measurement(case, "write", "file_bytes", "n/a", [2 << 20], DS, DIGEST)
        for cache in ("warm", "cold"):
            store.add_measurement(case, "random", "random_p50_s", cache, [1e-4, 2e-4, 3e-4], DS, DIGEST,
                                  {"k": 200, "residency_before": resident, "read_bytes": fetched})
    fr = frame(load.load([tmp_path]))
    assert [c for c, _ in panels.warm_cold(fr)["not_cold"]] == ["parquet", "sqlite"]
    claim = claims.partial_reads(fr)  # 200 reads (20% of the rows) fetched the whole HDF5 file
    assert claim.verdict == "not supported" and "100%" in claim.evidence[0]


def test_comparison_flags_only_changes_beyond_the_noise(tmp_path):
    build_store(tmp_path / "old", seed=1)
    build_store(tmp_path / "new", seed=2, speed=1.5)
    old, new = (frame(load.load([tmp_path / p])) for p in ("old", "new"))
    flags = {(c.case, c.metric, c.cache): c.flag for c in compare(old, new).changes}
    assert flags[("npy", "scan_samples_per_s", "warm")] == "better"
    assert flags[("npy", "random_p50_s", "cold")] == "better"
    assert flags[("npy", "file_bytes", "n/a")] == ""  # same size
    same = compare(old, frame(load.load([tmp_path / "old"])))
    assert not same.flagged()


def test_comparison_within_noise_is_not_flagged(tmp_path):
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    a.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [90, 100, 110, 95, 105, 100], DS, DIGEST)
    b.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [95, 104, 112, 99, 108, 103], DS, DIGEST)
    b.add_measurement("npy", "write", "file_bytes", "n/a", [5], DS, DIGEST)
    a.add_measurement("npy", "write", "file_bytes", "n/a", [4], DS, DIGEST)
    a.add_measurement("npy", "random", "open_s", "warm", [1.0], DS, DIGEST)  # timed once: noise unknown
    b.add_measurement("npy", "random", "open_s", "warm", [2.0], DS, DIGEST)
    (x, y) = (frame(load.load([tmp_path / p])) for p in ("a", "b"))
    flags = {c.metric: c.flag for c in compare(x, y).changes}
    assert flags == {"scan_samples_per_s": "", "file_bytes": "worse", "open_s": ""}


def test_html_escapes_every_name_from_the_data(tmp_path):
    evil = "<script>alert(1)</script>"
    store = ResultStore(tmp_path / "s")
    store.start_run({"cpu_model": evil}, ["fmtbench", evil], "quick", evil, "0" * 64)
    for case in (f"npy/{evil}", "npy"):
        store.add_measurement(case, "write", "file_bytes", "n/a", [10.0 if case == "npy" else 5.0], evil, "0" * 64)
        store.add_measurement(case, "scan", "scan_samples_per_s", "warm", [1.0, 2.0, 3.0], evil, "0" * 64)
    store.add_skip(evil, "scan", "warm", evil, dataset=evil)
    out = render.write_report([tmp_path / "s"], tmp_path / "r.html")
    html = out.html.read_text()
    assert "alert(1)</script>" not in html and "<script>alert" not in html
    assert html.count("<script>") == 1  # only the page's own table-sorting script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_missing_data_says_not_measured_and_never_crashes(tmp_path):
    store = ResultStore(tmp_path / "s")
    store.add_measurement("npy", "write", "file_bytes", "n/a", [10.0], DS, DIGEST)
    html = render.write_report([tmp_path / "s"], tmp_path / "r.html").html.read_text()
    assert html.count("not measured in this run") >= 6
    empty = ResultStore(tmp_path / "e")
    assert "not measured in this run" in render.write_report([empty.folder], tmp_path / "e.html").html.read_text()


def test_report_command_writes_html_csv_and_json(tmp_path):
    from click.testing import CliRunner

    from fmtbench.reports.cli import report_cmd

    build_store(tmp_path / "old", seed=1, cold=False)
    build_store(tmp_path / "new", seed=2, speed=1.5)
    res = CliRunner().invoke(report_cmd, [str(tmp_path / "old"), str(tmp_path / "new"), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text()
    assert "Comparison of two runs" in html and "skipped" in html and SKIPPED[2] in html
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert {"case", "metric", "cache", "median", "q1", "q3", "better"} <= set(rows[0])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert len(doc["rows"]) == len(rows)
    assert [c["claim"] for c in doc["claims"]] == [c.claim for c in claims.check_claims(frame(load.load([tmp_path / "new"])))]


def test_scatter_is_a_non_empty_svg_with_log_ticks():
    pts = [svg.Point("a", 1.0, 10.0), svg.Point("b", 100.0, 1000.0)]
    out = svg.scatter(pts, ["a"], "x (MiB, lower is better ←)", "y", "t", ("lower", "higher"))
    assert out.startswith("<svg") and out.count("<circle") == 2 and ">100<" in out and "better ↖" in out


def test_hdf5_configs_land_on_the_grid():
    """Guards the report against drift in the HDF5 adapter's option names."""
    from fmtbench.formats import get_case
    from fmtbench.reports.hdf5grid import cache_groups, layout, maps

    ids = ("hdf5", "hdf5/chunk64-gzip4-shuffle", "hdf5/chunk1024-gzip4", "hdf5/chunk1024-gzip4-cache64m",
           "hdf5/chunk64-blosczstd-bitshuffle", "hdf5/chunk1024-fletcher32")
    lays = {i: layout(get_case(i).config) for i in ids}
    assert lays["hdf5"].chunk is None and lays["hdf5"].compression == "none"
    lay = lays["hdf5/chunk64-gzip4-shuffle"]
    assert (lay.chunk, lay.compression, lay.shuffle, lay.other) == (64, "gzip4", "shuffle", ())
    assert lays["hdf5/chunk64-blosczstd-bitshuffle"].shuffle == "bitshuffle"
    assert lays["hdf5/chunk1024-fletcher32"].other == ("fletcher32",)
    grid = maps(lays)  # default cache and no extras only
    assert grid["none"] == {("contiguous", "none"): "hdf5", ("1024 rows", "gzip4"): "hdf5/chunk1024-gzip4"}
    (members,) = cache_groups(lays).values()
    assert [c for _, c in members] == ["hdf5/chunk1024-gzip4", "hdf5/chunk1024-gzip4-cache64m"]


def test_analysis_helpers():
    assert analysis.ratio(2.0, 0.0) is None and analysis.goodness("file_bytes", 4.0, 2.0) == 2.0
    assert analysis.goodness("scan_samples_per_s", 50.0, 100.0) == 2.0


def test_the_report_shows_each_case_damage_detection_as_its_adapter_declares(tmp_path):
    from fmtbench.formats import get_case

    store = ResultStore(tmp_path / "s")
    for case in ("npy", "tfrecord", "hdf5/chunk1024-fletcher32"):
        store.add_measurement(case, "write", "file_bytes", "n/a", [10.0], DS, DIGEST)
    html = render.write_report([tmp_path / "s"], tmp_path / "r.html").html.read_text()
    section = html[html.index('id="damage"'):html.index('id="method"')]
    for case in ("npy", "tfrecord", "hdf5/chunk1024-fletcher32"):
        row = section[section.index(f">{case}<"):].split("</tr>", 1)[0]
        for kind in ("truncated", "flipped"):
            assert get_case(case).detection(kind).label in row
    assert section.count("not detected") >= 2  # npy and fletcher32 do not detect flipped bytes


def test_reports_read_the_store_without_the_runner():
    # reports are a reader of stored results: they need neither the runner nor the executor
    import subprocess
    import sys

    code = ("import sys, fmtbench.reports.render; "
            "print(sorted(m for m in sys.modules if m in ('fmtbench.runner', 'fmtbench.executor', 'fmtbench.worker')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_store_reads_without_a_writer(tmp_path):
    from fmtbench.results import read_records

    build_store(tmp_path / "s")
    path = tmp_path / "s" / "results.jsonl"
    before = sorted(p.name for p in (tmp_path / "s").iterdir())
    recs = read_records(path)
    assert recs and {r["kind"] for r in recs} >= {"provenance", "measurement", "skip"}
    assert read_records(path, "skip") == [r for r in recs if r["kind"] == "skip"]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == before  # nothing created or claimed


# --- readable charts (issue 14 part 4) ---

def _label_boxes(chart: str) -> list[tuple[float, float, float, float]]:
    import re

    return [(float(x), float(y) - 10, float(x) + len(t) * svg._LABEL_W, float(y) + 2)
            for x, y, t in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" class="label">([^<]*)</text>', chart)]


def test_axes_label_at_least_four_ticks_where_the_data_sits_and_say_log():
    for values, log in (([25.4, 30.5, 45.3, 50.0, 120.0], True), ([0.5, 3.0], False), ([1e-5, 1e-1], True),
                        ([9.8, 10.4], True), ([1.0, 1e6], True)):
        axis = svg.Axis(values, 72, 576, log)
        shown = [t for t, text in axis.labelled() if text]
        inside = [t for t in shown if min(values) * 0.9 <= t <= max(values) * 1.1]
        assert len(shown) >= svg.MIN_TICKS and len(inside) >= 2, (values, shown)
    pts = [svg.Point("a", 25.4, 1.0), svg.Point("b", 120.0, 30.0)]
    chart = svg.scatter(pts, ["a"], "size (MiB)", "rate", "t", ("lower", "higher"))
    assert "size (MiB) · log scale" in chart and ">75<" in chart  # the old axis showed only 50 and 100


def test_front_labels_overlap_neither_each_other_nor_a_front_dot():
    # npy and tfrecord as the default run measured them: close on both axes (they overlapped)
    pts = [svg.Point("parquet/rg1024-zstd", 25.4, 932.0), svg.Point("arrayrecord/group64-example", 25.8, 135.0),
           svg.Point("arrayrecord", 30.5, 16.5), svg.Point("npy", 45.3, 10.5), svg.Point("tfrecord", 50.0, 10.1),
           *(svg.Point(f"grey{i}", 44 + i * 0.3, 12 + i) for i in range(8))]
    front = ["parquet/rg1024-zstd", "arrayrecord/group64-example", "arrayrecord", "npy", "tfrecord"]
    chart = svg.scatter(pts, front, "x", "y", "t", ("lower", "lower"))
    boxes = _label_boxes(chart)
    assert len(boxes) == len(front)  # every front dot labelled
    overlap = lambda a, b: a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]  # noqa: E731
    assert not any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    import re
    dots = [(float(x) - 5, float(y) - 5, float(x) + 5, float(y) + 5)
            for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="5"', chart)]
    assert len(dots) == len(front) and not any(overlap(a, d) for a in boxes for d in dots)


def test_bar_charts_past_the_cap_become_small_multiples_on_one_axis():
    fmts = ("hdf5", "parquet", "zarr", "jsonl")
    labels = [f"hdf5/chunk{c}-{z}" for c in (1, 64, 1024) for z in ("gzip1", "gzip4", "lzf", "blosclz4") * 5]
    labels = list(dict.fromkeys(labels)) + [f"hdf5/chunk{c}-x{i}" for c in (1, 64, 1024) for i in range(30)]
    labels += [f"{f}/v{i}" for f in fmts[1:] for i in range(12)]
    vals = [float(i + 1) for i in range(len(labels))]
    assert len(labels) > 110
    chart = svg.bars(labels, [("a", vals)], "x", "t")
    panels = chart.split('<g transform="')[1:]
    assert len(panels) >= 6  # one per format, HDF5 one per chunk size
    assert all(p.count("<rect ") <= svg.MAX_ROWS for p in panels)
    assert sum(p.count("<rect ") for p in panels) == len(labels)
    ticks = {tuple(__import__("re").findall(r'class="tick">([\d,.]+)</text>', p.split("<rect")[0])) for p in panels}
    assert len(ticks) == 1  # the same value axis in every panel
    small = svg.bars(labels[:30], [("a", vals[:30])], "x", "t")
    assert small.count('<g transform="') == 1  # one chart, as before


def test_heatmap_marks_a_wide_interval_and_shows_spread_on_hover():
    cells = {("64 rows", "none"): svg.Cell(10.0, "10", "IQR 9–11; 95% CI 7–13; n=3", True),
             ("64 rows", "gzip4"): svg.Cell(20.0, "20", "IQR 19.9–20.1; 95% CI 19.8–20.2; n=3", False)}
    chart = svg.heatmap(["64 rows"], ["none", "gzip4"], cells, "higher", "t", "chunk", "compression")
    assert chart.count('class="wide"') == 1 and "95% CI 7–13" in chart and "wider than 20% of the median" in chart


def test_report_heatmaps_carry_each_cells_interval(tmp_path):
    from fmtbench.reports import panels

    fr = _frame(tmp_path)
    charts = [c["svg"] for m in panels.hdf5(fr, None)["maps"] for c in m["charts"]]
    labelled = ("covers the median", "% interval of the median")
    assert charts and all(any(t in c for t in labelled) or "one round, no spread" in c for c in charts)  # size: n=1
    assert sum(any(t in c for t in labelled) for c in charts) >= len(charts) * 2 // 3


def test_plan_skips_writes_of_read_side_twins_and_the_write_front_leaves_them_out(tmp_path):
    from fmtbench.formats import get_case
    from fmtbench.reports.sections import front
    from fmtbench.runner import Plan

    ids = ["hdf5/chunk1024-gzip4", "hdf5/chunk1024-gzip4-cacheauto", "hdf5/chunk64-cache0", "hdf5/chunk64", "npy"]
    units = Plan([get_case(i) for i in ids], ("write", "scan"), ("warm",)).units()
    writes = {c for c, w, _ in units if w == "write"}
    assert writes == {"hdf5/chunk1024-gzip4", "hdf5/chunk64", "npy"}
    assert {c for c, w, _ in units if w == "scan"} == set(ids)
    alone = Plan([get_case("hdf5/chunk64-cache0")], ("write",), ("warm",)).units()
    assert alone == [("hdf5/chunk64-cache0", "write", "n/a")]  # no base planned: it writes

    twin = "hdf5/chunk1024-gzip4-cache64m"
    fr = _frame(tmp_path, cases={**CASES, twin: (9, 0.001, 7.2e5, 1.2e-4, 2.4e5, 30e3, 0.2)})  # a "fast write"
    assert twin not in [c for c in front(fr, "write_s", "file_bytes", "w")["front"]]
    assert front(fr, "write_s", "file_bytes", "w")["n"] == len(CASES) - 1
    no_write = Frame(fr.dataset, fr.digest, [r for r in fr.rows if not (r.case == twin and r.workload == "write")])
    scan = front(no_write, "file_bytes", "scan_samples_per_s", "s")
    assert scan["n"] == len(CASES) and f"{twin}: 9" in scan["svg"]  # the base's file size


def test_every_chart_gets_download_links_from_an_inline_script(tmp_path):
    build_store(tmp_path / "s")
    page = render.write_report([tmp_path / "s"], tmp_path / "r.html").html.read_text()
    assert "chart-links" in page and "XMLSerializer" in page and "toBlob" in page
    assert page.count('class="chart"') >= 8
    assert "fetch(" not in page and "XMLHttpRequest" not in page


def test_asv_history_page_draws_with_the_report_chart_code(tmp_path):
    from fmtbench.reports import asv_history

    machine = tmp_path / "results" / "m1"
    machine.mkdir(parents=True)
    for k, commit in enumerate(("a" * 40, "b" * 40, "c" * 40)):
        (machine / f"{commit[:8]}-env.json").write_text(json.dumps({
            "commit_hash": commit, "date": 1700000000000 + k * 86400000, "env_name": "env",
            "params": {"machine": "m1"}, "result_columns": ["result", "params"],
            "results": {"bench_scan.Scan.time_scan": [[0.01 * (k + 1), 2.0], [["'npy'", "'hdf5'"]]],
                        "bench_size.Size.track_bytes": [[1000.0 + k], [["'npy'"]]]}}))
    (tmp_path / "results" / "benchmarks.json").write_text(json.dumps(
        {"bench_scan.Scan.time_scan": {"unit": "seconds"}, "bench_size.Size.track_bytes": {"unit": "bytes"}}))
    calls = []
    real = svg.lines
    with mock.patch.object(svg, "lines", side_effect=lambda *a, **k: calls.append(a) or real(*a, **k)):
        out = asv_history.write_history(tmp_path / "results", tmp_path / "h.html")
    html = out.read_text()
    assert len(calls) == 2 and html.count('class="history-chart"') == 2 and "<script" not in html
    assert "log scale" in html  # 10 ms .. 2 s spans more than 10x
    assert ":root" in html  # the report's stylesheet
