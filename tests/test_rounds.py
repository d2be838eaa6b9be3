"""Rounds in the store and the report: a unit's rounds become one figure, ties are ties, figures
past the machine's limits are flagged and never picked, and the comparison knows its chance rate."""
from __future__ import annotations

import pytest

from fmtbench.reports import trust
from fmtbench.reports.analysis import best_per_column, frame
from fmtbench.reports.compare import compare, nominal_false_positive_rate
from fmtbench.reports.load import load, merge_extra
from fmtbench.reports.recommend import recommend
from fmtbench.results import ResultStore
from fmtbench.runner import round_order

DS, DIGEST = "synthetic", "d" * 64


def _store(folder, figures: dict[str, dict[str, list[float]]], limits: dict | None = None) -> ResultStore:
    """figures: case -> metric -> one value per round (stored as one record per round)."""
    store = ResultStore(folder)
    store.start_run({"limits": limits or {}}, ["fmtbench", "run"], "test", DS, DIGEST)
    workload = {"file_bytes": "write", "scan_samples_per_s": "scan", "scan_mb_per_s": "scan",
                "random_p50_s": "random", "train_samples_per_s": "train", "native_samples_per_s": "native"}
    for case, metrics in figures.items():
        for metric, values in metrics.items():
            cache = "n/a" if metric == "file_bytes" else "warm"
            for rnd, v in enumerate(values):
                store.add_measurement(case, workload[metric], metric, cache, [v], DS, DIGEST, round=rnd,
                                      extra={"inner": [[v, v]], "machine": [{"pid": rnd, "wall_s": 1.0}],
                                             "weights_match_baseline": True if case != "memory" else None})
    return store


def test_the_rounds_of_a_unit_become_one_figure(tmp_path):
    _store(tmp_path, {"npy": {"scan_samples_per_s": [3.0, 1.0, 2.0, 5.0, 4.0]}})
    row = frame(load([tmp_path])).get("npy", "scan_samples_per_s")
    assert row.n == 5 and row.median == 3.0 and (row.q1, row.q3) == (2.0, 4.0)
    assert (row.ci_low, row.ci_high) == (1.0, 5.0)
    assert row.extra["inner"] == [[v, v] for v in (3.0, 1.0, 2.0, 5.0, 4.0)]
    assert [m["pid"] for m in row.extra["machine"]] == [0, 1, 2, 3, 4]


def test_a_round_measured_again_replaces_the_earlier_one(tmp_path):
    store = _store(tmp_path, {"npy": {"scan_samples_per_s": [1.0, 2.0, 3.0]}})
    store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [10.0], DS, DIGEST, round=1)
    row = frame(load([tmp_path])).get("npy", "scan_samples_per_s")
    assert row.n == 3 and row.median == 3.0 and row.ci_high == 10.0  # rounds 0, 2 and the new round 1


def test_merge_extra_joins_lists_and_requires_every_round_to_hold():
    merged = merge_extra([{"a": [1], "ok": True, "k": 1, "base": None}, {"a": [2], "ok": False, "k": 2, "base": None}])
    assert merged == {"a": [1, 2], "ok": False, "k": 2, "base": None}
    assert merge_extra([{"ok": True}, {"ok": None}])["ok"] is None


def test_round_order_is_seeded_shuffled_and_puts_the_baseline_first():
    units = [("memory", "train", "warm")] + [(f"c{i}", "scan", "warm") for i in range(20)]
    orders = [round_order(units, seed=0, rnd=r) for r in range(3)]
    assert all(o[0] == ("memory", "train", "warm") and sorted(o) == sorted(units) for o in orders)
    assert orders[0] != orders[1] and orders[0] == round_order(units, seed=0, rnd=0)


def test_rounds_that_cannot_separate_two_cases_leave_the_pick_undecided(tmp_path):
    _store(tmp_path, {"npy": {"random_p50_s": [1.0, 1.2, 1.4]},
                      "hdf5": {"random_p50_s": [1.3, 1.5, 1.7]},  # median 1.5 > 1.2, but overlapping
                      "csv": {"random_p50_s": [9.0, 9.5, 10.0]}})
    fr = frame(load([tmp_path]))
    rec = {r.use: r for r in recommend(fr)}["random single-sample serving"]
    assert rec.case == "npy" and rec.tied == ["hdf5"] and rec.verdict == "undecided"
    assert rec.undecided == ["hdf5"] and "undecided against hdf5" in rec.reason
    assert rec.runner_up.verdict == "undecided" and rec.runner_up.coverage == pytest.approx(0.9)
    assert best_per_column(fr)[("random_p50_s", "warm")] == {"npy", "hdf5"}


def test_a_pick_is_better_equivalent_or_undecided_by_the_rounds(tmp_path):
    _store(tmp_path, {"npy": {"random_p50_s": [1.00, 1.01, 1.02], "scan_samples_per_s": [100, 101, 102]},
                      "lmdb": {"random_p50_s": [1.02, 1.03, 1.01], "scan_samples_per_s": [50, 51, 49]},
                      "csv": {"random_p50_s": [9.0, 9.5, 10.0], "scan_samples_per_s": [5, 6, 7]}})
    fr = frame(load([tmp_path]))
    recs = {r.use: r for r in recommend(fr)}
    serving, stream = recs["random single-sample serving"], recs["streaming training"]
    assert serving.verdict == "equivalent" and serving.equivalent == ["lmdb"] and serving.decided
    assert "equivalent within 5% to lmdb; better than the rest" in serving.reason
    assert stream.case == "npy" and stream.verdict == "better" and stream.runner_up.low > 1
    fr.margin = 0.001  # a margin tighter than the rounds' spread: no longer equivalent, undecided
    assert {r.use: r for r in recommend(fr)}["random single-sample serving"].verdict == "undecided"


def test_a_figure_past_the_baseline_or_the_machine_is_flagged_and_never_picked(tmp_path):
    limits = {"memcpy_mb_per_s": {"median": 10_000.0}, "page_cache_read_mb_per_s": {"median": 12_000.0}}
    _store(tmp_path, {"memory": {"train_samples_per_s": [40e3, 41e3, 42e3]},
                      "npy": {"train_samples_per_s": [60e3, 61e3, 62e3], "scan_mb_per_s": [30e3, 31e3, 32e3]},
                      "hdf5": {"train_samples_per_s": [30e3, 31e3, 32e3], "scan_mb_per_s": [900, 950, 1000]}},
           limits)
    results = load([tmp_path])
    fr = frame(results)
    assert trust.limits(results) == {"memcpy_mb_per_s": 10_000.0, "page_cache_read_mb_per_s": 12_000.0}
    found = {(f.case, f.metric) for f in trust.flags(fr, trust.limits(results))}
    assert found == {("npy", "train_samples_per_s"), ("npy", "scan_mb_per_s")}
    keys = trust.flagged_keys(fr, trust.limits(results))
    rec = {r.use: r for r in recommend(fr, keys)}["shuffled training"]
    assert rec.case == "hdf5"
    assert "npy" not in best_per_column(fr, keys).get(("train_samples_per_s", "warm"), set())
    assert "npy" in best_per_column(fr)[("train_samples_per_s", "warm")]  # unflagged, it would win


def test_streaming_is_held_to_the_streaming_baseline_and_an_all_flagged_pick_says_so(tmp_path):
    # shuffled figures against the shuffled baseline, streaming against streaming: hdf5 streams
    # faster than memory *shuffles* (no flag) but not faster than memory streams; npy's stream
    # beats memory's streaming (flagged)
    _store(tmp_path, {"memory": {"train_samples_per_s": [20e3, 21e3, 22e3], "native_samples_per_s": [40e3, 41e3, 42e3]},
                      "hdf5": {"native_samples_per_s": [30e3, 31e3, 32e3]},
                      "npy": {"native_samples_per_s": [60e3, 61e3, 62e3]}})
    fr = frame(load([tmp_path]))
    keys = trust.flagged_keys(fr, {})
    assert keys == {("npy", "native_samples_per_s", "warm")}
    assert {r.use: r for r in recommend(fr, keys)}["streaming training"].case == "hdf5"
    only_npy = {k for k in keys} | {("hdf5", "native_samples_per_s", "warm")}
    rec = {r.use: r for r in recommend(fr, only_npy)}["streaming training"]
    assert rec.case is None and "flagged" in rec.reason and "not measured" not in rec.reason


def test_units_on_a_busy_machine_are_named(tmp_path):
    store = ResultStore(tmp_path)
    busy = {"pid": 1, "wall_s": 2.0, "others_cpu_share": 0.6, "loadavg_before": 0.5}
    calm = {"pid": 2, "wall_s": 2.0, "others_cpu_share": 0.01, "loadavg_before": 0.5}
    short = {"pid": 3, "wall_s": 0.05, "others_cpu_share": 0.9, "loadavg_before": 0.5}  # ticks cannot tell
    # the load average trails a minute and holds this run's own earlier units: where the CPU
    # share was measured it decides; the load average only where the unit was too short
    after_readers = {"pid": 4, "wall_s": 2.0, "others_cpu_share": 0.02, "loadavg_before": 3.5}
    short_loaded = {"pid": 5, "wall_s": 0.05, "others_cpu_share": None, "loadavg_before": 3.5}
    for rnd, state in enumerate((busy, calm, short, after_readers, short_loaded)):
        store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [1.0], DS, DIGEST, round=rnd,
                              extra={"machine": [state]})
    found = trust.busy_units(frame(load([tmp_path])), cores=2)
    assert [(b["case"], b["round"]) for b in found] == [("npy", 0), ("npy", 4)]
    assert "60%" in found[0]["why"] and "load average 3.5" in found[1]["why"]


@pytest.mark.parametrize("n, exact", [(3, 2 / 20), (5, 2 * 4 / 252)])
def test_the_nominal_false_positive_rate_matches_the_combinatorics(n, exact):
    # a flag needs the ratio's Mann-Whitney interval to exclude 1: it misses with 2 P(U <= k - 1)
    assert nominal_false_positive_rate(n, n) == pytest.approx(exact, abs=1e-12)


def test_comparison_says_how_many_flags_chance_alone_would_raise(tmp_path):
    same = {"npy": {"scan_samples_per_s": [1.0, 2.0, 3.0]}, "hdf5": {"scan_samples_per_s": [4.0, 5.0, 6.0]}}
    _store(tmp_path / "a", same)
    _store(tmp_path / "b", same)
    cmp = compare(frame(load([tmp_path / "a"])), frame(load([tmp_path / "b"])))
    assert not any(c.flag for c in cmp.changes)
    assert cmp.expected_by_chance() == pytest.approx(2 * 0.1, abs=0.04)


@pytest.mark.parametrize("line, message", [
    ('[1, 2]', "a record must be a JSON object"),
    ('{"kind": "measurement", "metric": "scan_samples_per_s"}', "'case' must be a non-empty string"),
    ('{"kind": "measurement", "case": "npy", "metric": "scan_samples_per_s", "median": "fast"}',
     "'median' must be a number or null"),
    ('{"kind": "measurement", "case": "npy", "metric": "scan_samples_per_s", "round": "1"}',
     "'round' must be a whole number"),
    ('{"schema": "2", "kind": "done"}', "schema must be a whole number"),
])
def test_a_malformed_store_is_one_clear_error_naming_the_file(tmp_path, line, message):
    from fmtbench.errors import FmtbenchError
    from fmtbench.reports.render import write_report

    (tmp_path / "results.jsonl").write_text(line + "\n")
    with pytest.raises(FmtbenchError, match=message) as info:
        write_report([tmp_path], tmp_path / "r.html")
    assert "results.jsonl" in str(info.value)


def test_nan_literals_and_unknown_metrics_do_not_break_the_report(tmp_path):
    from fmtbench.reports.render import write_report

    good = ('{"kind": "measurement", "case": "npy", "dataset": "s", "dataset_digest": "d", "workload": "scan", '
            '"metric": "scan_samples_per_s", "cache": "warm", "values": [NaN, 2.0], "median": NaN, "n": 2}')
    odd = good.replace("scan_samples_per_s", "warp_speed")
    (tmp_path / "results.jsonl").write_text(good + "\n" + odd + "\n")
    with pytest.warns(UserWarning, match="warp_speed"):
        done = write_report([tmp_path], tmp_path / "r.html")
    assert done.json.read_text() and "warp_speed" not in done.html.read_text()


def test_report_output_named_like_its_own_export_is_refused(tmp_path):
    from fmtbench.errors import FmtbenchError
    from fmtbench.reports.render import write_report

    _store(tmp_path / "s", {"npy": {"scan_samples_per_s": [1.0, 2.0, 3.0]}})
    for name in ("r.csv", "r.json"):
        with pytest.raises(FmtbenchError, match="would be overwritten by its own"):
            write_report([tmp_path / "s"], tmp_path / name)
        assert not (tmp_path / name).exists()


def test_a_figure_beating_the_baseline_by_more_than_its_spread_is_flagged_whatever_the_intervals(tmp_path):
    _store(tmp_path, {"memory": {"train_samples_per_s": [40e3, 45e3, 50e3]},  # spread 10k
                      "npy": {"train_samples_per_s": [30e3, 61e3, 62e3]},  # overlaps, but 16k past its median
                      "hdf5": {"train_samples_per_s": [44e3, 52e3, 53e3]}})  # 7k past: within the spread
    fr = frame(load([tmp_path]))
    assert {(f.case, f.metric) for f in trust.flags(fr, {})} == {("npy", "train_samples_per_s")}
