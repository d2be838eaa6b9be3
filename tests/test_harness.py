"""Statistics, page-cache control and the timing harness. No test asserts a timing."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import time

import numpy as np
import pytest

from fmtbench import cache, harness
from fmtbench.provenance import filesystem
from fmtbench.stats import percentiles, summarize


# --- stats -------------------------------------------------------------------------------------

def test_summarize_known_values():
    s = summarize([5, 1, 4, 2, 3])
    assert (s.n, s.median, s.q1, s.q3, s.iqr, s.min, s.max) == (5, 3.0, 2.0, 4.0, 2.0, 1.0, 5.0)
    assert s.values == [5.0, 1.0, 4.0, 2.0, 3.0]  # order of the repeats kept
    assert s.ci_low <= s.median <= s.ci_high


def test_summarize_binomial_ci_is_order_statistics():
    s = summarize(range(1, 10))  # n=9: P(X <= 1) = 10/512 < 2.5% < P(X <= 2), so x(2)..x(8)
    assert (s.median, s.ci_low, s.ci_high) == (5.0, 2.0, 8.0)
    big = summarize(np.arange(1001, dtype=float))
    assert big.ci_low < big.median < big.ci_high
    assert 460 <= big.ci_low <= 470 and 530 <= big.ci_high <= 540  # ~ 500 +- 1.96 * sqrt(1000)/2


def test_summarize_small_n_is_deterministic_and_single_value_is_a_point():
    assert summarize([1.0, 2.0, 10.0]) == summarize([1.0, 2.0, 10.0])
    one = summarize([0.25])
    assert (one.median, one.ci_low, one.ci_high, one.iqr) == (0.25, 0.25, 0.25, 0.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def test_percentiles():
    p = percentiles(np.arange(1001, dtype=float))
    assert list(p) == [50.0, 95.0, 99.0, 99.9]
    assert list(p.values()) == pytest.approx([500.0, 950.0, 990.0, 999.0])
    assert percentiles([2.0], ps=(50,)) == {50.0: 2.0}


# --- page cache --------------------------------------------------------------------------------

def _on_tmpfs(folder: Path) -> bool:
    fs = filesystem(folder)
    return fs is not None and fs["fstype"] in ("tmpfs", "ramfs")


@pytest.fixture
def evictable_dir(tmp_path):
    """A folder on a filesystem whose pages fadvise can drop (tmpfs keeps them by design)."""
    if not _on_tmpfs(tmp_path):
        yield tmp_path
        return
    for folder in (Path("/var/tmp"), Path(__file__).resolve().parent):
        if folder.is_dir() and os.access(folder, os.W_OK) and not _on_tmpfs(folder):
            with tempfile.TemporaryDirectory(dir=folder, prefix=".fmtbench-test-") as d:
                yield Path(d)
            return
    pytest.skip("every candidate folder is on tmpfs, which cannot evict pages")


def _write(path: Path, nbytes: int) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, nbytes, dtype=np.uint8).tobytes())
    return path


def test_residency_before_and_after_eviction(evictable_dir):
    f = _write(evictable_dir / "data.bin", 4 << 20)
    f.read_bytes()
    assert cache.residency(f) > 0.9
    after = cache.cold(f)
    if after > 0.5:
        pytest.skip(f"filesystem at {evictable_dir} keeps pages after POSIX_FADV_DONTNEED")
    assert after < 0.05
    assert cache.residency([f]) == after
    f.read_bytes()
    assert cache.residency(f) > 0.9


def test_folders_expand_and_empty_files_count_as_zero(evictable_dir):
    sub = evictable_dir / "case"
    sub.mkdir()
    (sub / "empty").write_bytes(b"")
    assert cache.residency(sub / "empty") == 0.0
    assert cache.residency(sub) == 0.0
    _write(sub / "a.bin", 1 << 20).read_bytes()
    assert [p.name for p in cache.files(sub)] == ["a.bin", "empty"]
    assert cache.residency(sub) > 0.9
    cache.evict(sub)
    assert cache.residency(sub) < 0.05 or pytest.skip("filesystem cannot evict")


def test_io_counters_and_peak_rss():
    io = cache.io_counters()
    if not io:
        pytest.skip("/proc/self/io not available")
    assert set(io) == {"read_bytes", "write_bytes", "rchar", "wchar"}
    assert all(isinstance(v, int) and v >= 0 for v in io.values())
    assert cache.peak_rss_bytes() > 0
    block = np.ones(64 << 20, dtype=np.uint8)  # touch 64 MiB
    with_block = cache.peak_rss_bytes()
    del block
    if not cache.reset_peak_rss():
        pytest.skip("/proc/self/clear_refs cannot reset the peak here")
    assert cache.peak_rss_bytes() < with_block - (32 << 20)


# --- harness -----------------------------------------------------------------------------------

def test_measure_runs_before_each_before_every_call():
    events: list[str] = []

    def fn():
        events.append("call")
        return len(events)

    m = harness.measure(fn, repeats=4, warmup=2, before_each=lambda: events.append("hook"))
    assert events == ["hook", "call"] * 6
    assert m.seconds.n == 4 and len(m.seconds.values) == 4
    assert all(v >= 0 for v in m.seconds.values)
    assert m.results == [6, 8, 10, 12]  # warm-up results are not recorded
    assert len(m.peak_rss) == len(m.read_bytes) == 4 and m.residency == []
    assert m.peak_rss_bytes == max(m.peak_rss) >= 0


def test_measured_memory_is_what_the_call_added_not_what_the_process_held():
    if not cache.reset_peak_rss() or cache.rss_bytes() is None:
        pytest.skip("peak RSS cannot be reset or read here")
    held = np.ones(96 << 20, dtype=np.uint8)  # the process already holds 96 MiB

    def allocate():
        return int(np.ones(48 << 20, dtype=np.uint8).sum())

    m = harness.measure(allocate, repeats=2, warmup=0)
    assert (40 << 20) < m.peak_rss_bytes < (80 << 20)  # the call's 48 MiB, not the 96 MiB held
    idle = harness.measure(lambda: None, repeats=2, warmup=0)
    assert idle.peak_rss_bytes < (8 << 20)
    del held


def test_warm_reads_an_evicted_file_back_into_the_page_cache(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(np.random.default_rng(0).bytes(4 << 20))
    if cache.cold(path) > 0.05:
        pytest.skip("this filesystem cannot evict (tmpfs?)")
    assert cache.warm(path) > 0.99


def test_measure_without_warmup_or_hook_and_argument_checks():
    m = harness.measure(lambda: {"samples": 3}, repeats=2, warmup=0)
    assert m.results == [{"samples": 3}, {"samples": 3}]
    with pytest.raises(ValueError):
        harness.measure(lambda: None, repeats=0)


def test_measure_records_residency_after_eviction(evictable_dir):
    f = _write(evictable_dir / "data.bin", 1 << 20)
    m = harness.measure(f.read_bytes, repeats=3, warmup=1, before_each=lambda: cache.evict(f), files=f)
    if max(m.residency) > 0.5:
        pytest.skip("filesystem cannot evict")
    assert len(m.residency) == 3 and max(m.residency) < 0.05
    warm = harness.measure(f.read_bytes, repeats=2, files=[f])
    assert min(warm.residency) > 0.9


def test_harness_overhead_reports_both_figures():
    o = harness.harness_overhead(repeats=3, n=2048)
    assert o.harness.n == o.raw.n == 3
    assert o.seconds_per_call == pytest.approx(o.harness.median - o.raw.median)
    assert o.bookkeeping_s >= 0 and o.timer_floor_s >= 0
    assert np.isfinite(o.fraction)


def test_files_lists_plain_paths_as_given(tmp_path):
    assert list(cache.files(str(tmp_path / "x"))) == [tmp_path / "x"]
    assert list(cache.files([tmp_path / "a", os.fspath(tmp_path / "b")])) == [tmp_path / "a", tmp_path / "b"]


def test_calibration_repeats_a_short_call_until_a_value_lasts_min_time():
    events: list[str] = []

    def fn():
        events.append("call")
        time.sleep(0.002)

    m = harness.measure(fn, repeats=3, warmup=1, before_each=lambda: events.append("hook"), min_time=0.03)
    assert 10 <= m.loops <= 16  # ~2-3 ms a call: the fewest calls that reach 30 ms
    assert events == ["hook", "call"] * (1 + 3 * m.loops)  # every call after its own hook: cold stays cold
    assert all(0.002 <= v < 0.03 for v in m.seconds.values)  # a value is the mean per call
    assert [len(o) for o in m.outputs] == [m.loops] * 3 and len(m.results) == 3


def test_calibration_extends_the_first_repeat_when_the_warmup_misled_it():
    durations = iter([0.05] + [0.004] * 1000)  # a slow first call (warm-up), then fast ones
    m = harness.measure(lambda: next(durations), repeats=2, warmup=1, min_time=0.02, timed=float)
    assert m.loops == 5 and m.seconds.values == [pytest.approx(0.004)] * 2


def test_calibration_counts_only_what_the_call_says_it_timed():
    m = harness.measure(lambda: 0.001, repeats=1, warmup=1, min_time=0.01, timed=float)
    assert m.loops == 10 and m.seconds.values == [pytest.approx(0.001)]
    assert harness.loops_for(None, 0.1) == 1 and harness.loops_for(0.5, 0.1) == 1
    assert harness.loops_for(1e-9, 0.1) == harness.MAX_LOOPS
