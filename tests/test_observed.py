"""`Adapter.observed`: the options a file shows it was written with, read back from the file.

Every case of the full grid of every format with options writes a 3000-sample split; its own case then finds no mismatch and sees exactly the options the file
can show at that size, and every other case of the format sees each option it asks for
differently. (`fmtbench verify` fails on such a mismatch: the CLI test at the end.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmtbench.errors import FormatError
from fmtbench.formats import Adapter, cases, get_case, missing_dependency
from fmtbench.testing import make_split

N = 3000
NAMES = ("arrayrecord", "arrow", "hdf5", "jsonl", "lance", "lmdb", "parquet", "sqlite", "tfrecord", "zarr")
#: cases off the grid that show more: several shards, a compressed or multi-file Lance dataset.
EXTRA = {"zarr": ["zarr/chunk64-shard1024"],
         "lance": ["lance/zstd", "lance/file1024", "lance/v2.2"]}


def _format_cases(name: str) -> list[Adapter]:
    return cases([name]) + [get_case(c) for c in EXTRA.get(name, [])]


ALL = [c.case_id for name in NAMES for c in _format_cases(name)]


def _skip_missing(name: str) -> None:
    reason = missing_dependency(name)
    if reason:
        pytest.skip(reason)


def _shown(case: Adapter) -> set[str]:
    """The options a file this case writes of N samples shows (a size needs two groups)."""
    c = case.config
    return {
        "arrow": {"compression"} | ({"batch_rows"} if c.get("batch_rows", N) < N else set()),
        "jsonl": {"encoding", "compression", "index"},
        "zarr": {"compression", "crc32c"} | ({"chunk"} if (c.get("chunk") or N) < N else set())
                | ({"shard"} if c.get("shard") is None or c.get("shard") < N else set()),
        "lmdb": {"rows_per_value"} if c.get("rows_per_value", N) < N else set(),
        "lance": {"version", "compression"}
                 | ({"rows_per_file"} if c.get("rows_per_file", N) < N else set()),
        "arrayrecord": {"compression", "group", "example"}
                       | ({"level"} if c.get("compression") == "zstd" else set()),
        # the chunk cache only changes reading; a contiguous file shows chunk=None
        "hdf5": {"compression", "shuffle", "fletcher32"}
                | ({"chunk"} if c.get("chunk") is None or c.get("chunk") < N else set()),
        # page checksums leave no mark pyarrow shows
        "parquet": {"compression"} | ({"row_group"} if 0 < c.get("row_group", N) < N else set()),  # 0: rgall
        "sqlite": {"page_size"},  # the journal mode is a write-time choice the file forgets
        "tfrecord": {"compression"},
    }[case.name]


def _as_seen_by(written: Adapter, asked: Adapter, option: str):
    """The value of `option` that a file `written` wrote shows to case `asked`: the written
    value, except that Lance's "stable" is the library's stable version."""
    value = written.config[option]
    if written.name == "lance" and option == "version":
        from lance.file import stable_version

        if value == "stable" and asked.config[option] != "stable":
            return stable_version()
        if value == stable_version() and asked.config[option] == "stable":
            return "stable"
    return value


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """case id -> a file that case wrote, written on first use."""
    folder, split, written = tmp_path_factory.mktemp("observed"), make_split(n=N), {}

    def get(cid: str) -> Path:
        if cid not in written:
            case = get_case(cid)
            written[cid] = case.write(split, case.default_path(folder)).path
        return written[cid]

    return get


@pytest.mark.parametrize("cid", ALL)
def test_a_case_sees_its_own_options(cid, files):
    case = get_case(cid)
    _skip_missing(case.name)
    path = files(cid)
    found = case.observed(path)
    assert case.mismatches(path) == {}
    assert found, f"{cid}: a {N}-sample file shows nothing"
    assert set(found) == _shown(case)
    assert found == {k: case.config[k] for k in found}
    assert "no_readahead" not in found  # how a file is opened is not in the file


@pytest.mark.parametrize("name", NAMES)
def test_other_cases_see_what_they_asked_differently(name, files):
    _skip_missing(name)
    family = _format_cases(name)
    for written in family:
        path = files(written.case_id)
        told = []
        for asked in family:
            want = {}
            for k in _shown(written):
                seen = _as_seen_by(written, asked, k)
                if seen != asked.config[k]:
                    want[k] = (asked.config[k], seen)
            assert asked.mismatches(path) == want, (written.case_id, asked.case_id)
            told.append(bool(want))
        assert any(told), f"no other case of {name} tells {written.case_id}'s file from its own"


def test_zarr_chunk_and_shard_mismatches(files):
    _skip_missing("zarr")
    assert get_case("zarr").mismatches(files("zarr/chunk64")) == {"chunk": (1024, 64)}
    assert get_case("zarr/chunk64-shard2048").mismatches(files("zarr/chunk64-shard1024")) == {
        "shard": (2048, 1024)}
    assert get_case("zarr/chunk64-shard8192").mismatches(files("zarr/chunk64")) == {
        "shard": (8192, None)}


def test_lance_stable_is_the_library_stable_version(files):
    _skip_missing("lance")
    from lance.file import stable_version

    assert get_case("lance").observed(files("lance"))["version"] == "stable"
    assert get_case("lance/v2.0").observed(files("lance"))["version"] == stable_version()


@pytest.mark.parametrize("name", NAMES)
def test_unreadable_files_raise_format_error(name, files, tmp_path):
    _skip_missing(name)
    case = get_case(name)
    with pytest.raises(FormatError):
        case.observed(tmp_path / f"missing{case.suffix}")
    # the file (or every file of the folder) overwritten with bytes of no format
    src = files(name)
    junk = tmp_path / src.name
    members = [p for p in src.rglob("*") if p.is_file()] if src.is_dir() else [src]
    for p in members:
        target = junk / p.relative_to(src) if src.is_dir() else junk
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(range(256)) * (max(p.stat().st_size, 256) // 256))
    with pytest.raises(FormatError):
        case.observed(junk)


def test_verify_fails_on_a_file_written_with_other_options(tmp_path):
    _skip_missing("zarr")
    env = dict(os.environ, FMTBENCH_OFFLINE="1")

    def fmtbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True,
                              text=True, env=env, timeout=300)

    from fmtbench import datasets

    # written here: `convert -c zarr` would write every zarr case (a format name is a pattern)
    target = get_case("zarr").write(datasets.load("synthetic", n=N).split("train"),
                                    tmp_path / "train.zarr").path
    ok = fmtbench("verify", "-d", "synthetic", "--n", str(N), "-c", "zarr", str(target))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stderr
    wrong = fmtbench("verify", "-d", "synthetic", "--n", str(N), "-c", "zarr/chunk64", str(target))
    assert wrong.returncode == 1
    assert "written with chunk=1024, not 64" in wrong.stderr
