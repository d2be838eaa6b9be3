"""Property-based attacks on the CLI's edges: whatever hypothesis makes of a case pattern, a
results store or a file to verify, fmtbench answers with its output or one `error:` line and a
non-zero exit, never a traceback.

The CLI runs in this process (`fmtbench.cli.run`, the console entry point, with its error
handling), so a Python exception that escapes it fails the example with its traceback.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmtbench import cli
from fmtbench.errors import FmtbenchError
from fmtbench.formats import formats, get_case, missing_dependency

ATTACKS = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def fmtbench(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `fmtbench ARGS`, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["fmtbench", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.run()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def assert_clean_failure(code: int, err: str, *, allowed=(1, 2)) -> None:
    assert code in allowed, (code, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.lower().startswith("error")]
    assert len(lines) == 1, err


# Tokens that case ids are made of, mixed with junk, so examples reach deep into option parsing.
TOKENS = st.sampled_from(["chunk64", "gzip4", "gzip99", "cache1024g", "cache0", "rg0", "rgall", "zstd",
                          "wal", "page3", "contiguous", "fletcher32", "shuffle", "rows0", "v9", "-", "", "*",
                          "chunk", "99999999999999999999"])
PATTERNS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda f, toks: f + "/" + "-".join(toks), st.sampled_from(sorted(formats()) + ["hdf9", ""]),
              st.lists(TOKENS, max_size=4)),
)


@ATTACKS
@given(pattern=PATTERNS)
def test_any_case_pattern_lists_cases_or_is_one_error_line(pattern):
    code, out, err = fmtbench("cases", "--", pattern) if pattern.startswith("-") else fmtbench("cases", pattern)
    if code == 0:
        assert out.strip()
        return
    assert_clean_failure(code, err)


@ATTACKS
@given(pattern=PATTERNS)
def test_get_case_raises_only_fmtbench_errors(pattern):
    try:
        get_case(pattern)
    except FmtbenchError:
        pass


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=8)
MEASUREMENT = st.fixed_dictionaries({
    "kind": st.sampled_from(["measurement", "failure", "skip", "done", "provenance", "other"]),
    "case": st.one_of(st.sampled_from(["npy", "hdf5/chunk64", "memory"]), JSON_VALUES),
    "metric": st.one_of(st.sampled_from(["scan_samples_per_s", "random_p50_s", "nope"]), JSON_VALUES),
    "cache": st.sampled_from(["warm", "cold", "n/a", "hot"]),
    "median": st.one_of(st.floats(allow_nan=False, allow_infinity=False), JSON_VALUES),
    "values": st.one_of(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3), JSON_VALUES),
    "round": st.one_of(st.integers(-2, 3), JSON_VALUES),
    "extra": JSON_VALUES,
}, optional={"config": JSON_VALUES, "workload": JSON_VALUES, "dataset": JSON_VALUES})
LINES = st.one_of(
    st.builds(json.dumps, MEASUREMENT),
    st.builds(json.dumps, JSON_VALUES),
    st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
    st.just("NaN"), st.just('{"median": NaN}'),
)


@ATTACKS
@given(lines=st.lists(LINES, min_size=1, max_size=8))
def test_any_results_store_renders_or_is_one_error_line(tmp_path, lines):
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    (store / "results.jsonl").write_text("\n".join(lines) + "\n")
    code, _, err = fmtbench("report", str(store), "-o", str(tmp_path / "r.html"))
    if code != 0:
        assert_clean_failure(code, err)


@pytest.fixture(scope="module")
def verify_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    return folder / "victim.bin"


@ATTACKS
@given(data=st.binary(max_size=4096), name=st.sampled_from(sorted(formats())))
def test_verify_of_any_bytes_is_one_error_line(verify_target, data, name):
    if missing_dependency(name):
        return
    verify_target.write_bytes(data)
    code, _, err = fmtbench("verify", "-d", "synthetic", "--n", "50", "-c", name, str(verify_target))
    assert_clean_failure(code, err)


def test_verify_names_the_format_a_file_really_is(tmp_path):
    path = tmp_path / "a.parquet"
    assert fmtbench("convert", "-d", "synthetic", "--n", "200", "-c", "parquet/rg1024", "--out", str(path))[0] == 0
    for name in ("hdf5", "sqlite", "npy"):
        code, _, err = fmtbench("verify", "-d", "synthetic", "--n", "200", "-c", name, str(path))
        assert_clean_failure(code, err)
        assert f"is not in {name} format: it opens as parquet" in err


def test_a_huge_scan_batch_and_a_closed_reader(tmp_path):
    """scan(10**12) reads everything in one batch; a closed reader says so, for every case."""
    from fmtbench.formats import cases
    from fmtbench.testing import make_split

    split = make_split(n=40)
    for case in cases(full=False):
        if missing_dependency(case.name):
            continue
        path = case.write(split, case.default_path(tmp_path)).path
        with case.open(path) as r:
            (images, labels), = list(r.scan(10**12))
            np.testing.assert_array_equal(images, split.images)
            checked = r.checked([0, 1])  # checked while open, read after close: still refused
        for call in (lambda: r.read([0]), lambda: next(r.scan(8)), lambda: r.checked([0]),
                     lambda: r.read_checked(checked), lambda: r.read_checked(checked[:1]),
                     lambda: r.fetch(checked), lambda: r.fetch(checked[:1])):
            with pytest.raises(FmtbenchError, match="closed"):
                call()
