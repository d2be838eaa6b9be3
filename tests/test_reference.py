"""The plain-library reference readers (benchmarks/reference/) return exactly what fmtbench returns.

The fairness harness (``python -m benchmarks.fairness``) times each case's reader against its
format's reference on the same file; a ratio means something only if both return the same
bytes. Every format with a reference module is checked on its representative cases: a random
batch with duplicates, a single read and a whole scan.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import reference
from fmtbench.formats import cases, formats, import_libraries, missing_dependency


def _params():
    out = []
    for name in sorted(formats()):
        if reference.module(name) is None:
            continue
        out += [pytest.param(c.case_id, id=c.case_id) for c in cases([name], full=False)]
    return out


def _same(ours, ref, what):
    images, labels = ours
    ref_images, ref_labels = ref
    assert ref_images.dtype == images.dtype and ref_images.shape == images.shape, what
    assert ref_labels.dtype == labels.dtype == np.int64, what
    np.testing.assert_array_equal(ref_images, images, err_msg=what)
    np.testing.assert_array_equal(ref_labels, labels, err_msg=what)


def _concat(batches):
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


@pytest.mark.parametrize("ref_case", _params())
def test_reference_returns_what_fmtbench_returns(ref_case, split, tmp_path):
    from fmtbench.formats import get_case

    case = get_case(ref_case)
    if (why := missing_dependency(case.name)):
        pytest.skip(why)
    import_libraries(case.name)
    path = case.write(split, case.default_path(tmp_path)).path
    rng = np.random.default_rng(11)
    batch = rng.integers(0, len(split), size=64)
    batch[5] = batch[40] = batch[0]  # duplicates, unsorted
    single = rng.integers(0, len(split), size=1)
    # One reader at a time: LMDB refuses a second handle on one file in a process.
    seen = {}
    for who, open_ in (("fmtbench", lambda: case.open(path)), ("reference", lambda: reference.module(case.name).Reference(path))):
        reader = open_()
        try:
            seen[who] = (reader.read(batch), reader.read(single), reader.read(np.arange(len(split))),
                         _concat(list(reader.scan(97))))
        finally:
            reader.close()
    for what, ours, ref in zip(("batch", "single", "every sample", "scan"), seen["fmtbench"], seen["reference"]):
        _same(ours, ref, what)
    np.testing.assert_array_equal(seen["fmtbench"][3][0], split.images)


def test_fairness_times_the_reader_the_adapter_and_the_reference_on_one_file(split, tmp_path):
    """`benchmarks.fairness.compare`: all three readers return the same bytes (checked before
    timing), and every metric gets a median ratio inside its range and a time per reader."""
    from benchmarks.fairness import METRICS, compare

    case = cases(["npy"], full=False)[0]
    path = case.write(split, case.default_path(tmp_path)).path
    out = compare(case, path, len(split), repeats=3, singles=5, batches=2)
    assert set(out) == set(METRICS)
    for m in METRICS:
        row = out[m]
        assert row["low"] <= row["ratio"] <= row["high"] and row["adapter_ratio"] > 0
        assert all(row[f"{who}_us"] > 0 for who in ("fmtbench", "reference", "adapter"))


def test_the_fairness_page_marks_every_ratio_above_the_bar():
    """docs/fairness.md's renderer: one row per case, a ratio above 1.1 in bold and listed."""
    from benchmarks.fairness import METRICS, TARGET, markdown_page

    def cell(ratio):
        return {"ratio": ratio, "low": ratio - 0.05, "high": ratio + 0.05, "adapter_ratio": 1.0,
                "fmtbench_us": 10.0 * ratio, "reference_us": 10.0, "adapter_us": 10.0}

    table = {"npy": {m: cell(1.0) for m in METRICS},
             "sqlite": {**{m: cell(1.0) for m in METRICS}, "scan_us": cell(TARGET + 0.02)}}
    page = markdown_page(table, "synthetic", 500, 7, "python -m benchmarks.fairness --markdown x.md")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["npy", "sqlite"]
    assert "**1.12**" in rows[1] and "**" not in rows[0]
    assert page.rstrip().endswith("Above 1.1: sqlite scan.")
    assert "Above 1.1: none." in markdown_page({"npy": table["npy"]}, "synthetic", 500, 7, "cmd")
