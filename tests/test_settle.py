"""Settling: extra rounds for the units behind undecided picks (fmtbench.settle, Runner.settle)."""
from __future__ import annotations

import dataclasses

from fmtbench.datasets._base import Dataset
from fmtbench.executor import InlineExecutor
from fmtbench.formats import cases
from fmtbench.profiles import get_profile
from fmtbench.reports.analysis import frame
from fmtbench.reports.load import load
from fmtbench.reports.recommend import recommend
from fmtbench.reports.settling import annotate, extra_rounds
from fmtbench.results import ResultStore
from fmtbench.runner import Plan, Runner
from fmtbench.settle import undecided_units
from conftest import make_split

DS, DIGEST = "synthetic", "d" * 64


def _hand_store(folder, figures):
    store = ResultStore(folder)
    store.start_run({}, ["fmtbench", "run"], "test", DS, DIGEST)
    for case, (metric, workload, values) in figures.items():
        for rnd, v in enumerate(values):
            store.add_measurement(case, workload, metric, "warm", [v], DS, DIGEST, round=rnd)
    return store


def test_the_units_behind_an_undecided_pick_are_named_and_decided_ones_are_not(tmp_path):
    _hand_store(tmp_path, {"npy": ("random_p50_s", "random", [1.0, 1.2, 1.4]),
                           "hdf5": ("random_p50_s", "random", [1.3, 1.5, 1.7]),  # undecided against npy
                           "csv": ("random_p50_s", "random", [9.0, 9.5, 10.0])})  # clearly worse
    units, uses = undecided_units(tmp_path / "results.jsonl", DS)
    assert uses == ["random single-sample serving"]
    assert set(units) == {("npy", "random", "warm"), ("hdf5", "random", "warm")}


def test_settling_runs_extra_marked_rounds_until_nothing_is_undecided(tmp_path):
    ds = Dataset("synthetic", make_split(300), make_split(50, seed=1), "test data")
    profile = dataclasses.replace(get_profile("quick"), rounds=2, repeats=1)
    store = ResultStore(tmp_path)
    runner = Runner(ds, profile, store, tmp_path / "data", executor=InlineExecutor())
    runner.run(Plan(cases(["npy/", "lmdb/"]), ("scan",), ("warm",)))
    asked = iter([([("npy", "scan", "warm"), ("lmdb", "scan", "warm")], ["streaming training"]),
                  ([("npy", "scan", "warm")], ["streaming training"]), ([], [])])
    done = runner.settle(lambda: next(asked), budget_s=600)
    assert done["rounds"] == 2 and done["unit_rounds"] == 3 and done["undecided"] == []
    rows = {r.case: r for r in frame(load([tmp_path])).rows if r.metric == "scan_samples_per_s"}
    assert (rows["npy"].n, rows["lmdb"].n) == (4, 3)  # 2 planned rounds, then 2 and 1 settling rounds
    assert extra_rounds(frame(load([tmp_path])))[("npy", "scan_samples_per_s", "warm")] == 2
    settled = [r for r in store.records("measurement") if (r["extra"] or {}).get("settle")]
    assert sorted({(r["case"], r["round"]) for r in settled}) == [("lmdb", 2), ("npy", 2), ("npy", 3)]


def test_settling_stops_when_its_budget_is_spent_and_says_what_stayed_undecided(tmp_path):
    ds = Dataset("synthetic", make_split(300), make_split(50, seed=1), "test data")
    profile = dataclasses.replace(get_profile("quick"), rounds=1, repeats=1)
    runner = Runner(ds, profile, ResultStore(tmp_path), tmp_path / "data", executor=InlineExecutor())
    runner.run(Plan(cases(["npy/"]), ("scan",), ("warm",)))
    done = runner.settle(lambda: ([("npy", "scan", "warm")], ["streaming training"]), budget_s=0.0)
    assert done == {"rounds": 0, "unit_rounds": 0, "seconds": done["seconds"], "undecided": ["streaming training"]}


def test_a_pick_says_how_many_settling_rounds_it_took(tmp_path):
    store = _hand_store(tmp_path, {"npy": ("random_p50_s", "random", [1.0, 1.01, 1.02]),
                                   "lmdb": ("random_p50_s", "random", [2.0, 2.02, 2.04])})
    store.add_measurement("npy", "random", "random_p50_s", "warm", [1.0], DS, DIGEST, round=3,
                          extra={"settle": [True]})
    fr = frame(load([tmp_path]))
    recs = recommend(fr)
    annotate(recs, fr)
    serving = next(r for r in recs if r.use == "random single-sample serving")
    assert serving.verdict == "better" and serving.extra_rounds == "decided after 1 settling round"
