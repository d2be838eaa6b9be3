"""HDF5-only behaviour: option combinations, the on-disk layout, the chunk cache, chunked reads."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_split
from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, InvalidCaseError, UnknownNameError
from fmtbench.formats import cases, get_case, missing_dependency

pytestmark = pytest.mark.skipif(missing_dependency("hdf5") is not None, reason=str(missing_dependency("hdf5")))


@pytest.fixture(scope="module")
def split() -> Split:
    return make_split(n=300, seed=5)


def write(cid: str, split: Split, tmp_path) -> str:
    case = get_case(cid)
    return str(case.write(split, case.default_path(tmp_path)).path)


@pytest.mark.parametrize("cid", [
    "hdf5/gzip4", "hdf5/lzf", "hdf5/fletcher32", "hdf5/cache64m",  # filters and cache need chunks
    "hdf5/chunk64-bitshuffle", "hdf5/chunk64-gzip4-bitshuffle",  # bitshuffle is Blosc's
    "hdf5/chunk64-shuffle",  # a shuffle with no compressor
])
def test_invalid_combinations_are_rejected(cid):
    with pytest.raises(InvalidCaseError):
        get_case(cid)


def test_ids_round_trip_to_the_documented_config():
    assert get_case("hdf5").config == {
        "chunk": None, "compression": "none", "shuffle": "none", "cache": 1 << 20, "fletcher32": False}
    case = get_case("hdf5/chunk1024-gzip4-cache64m")
    assert (case.config["chunk"], case.config["compression"], case.config["cache"]) == (1024, "gzip4", 64 << 20)
    assert get_case("hdf5/chunk64-blosczstd-bitshuffle").config["shuffle"] == "bit"
    assert get_case("hdf5/chunk64-cache1048576").case_id == "hdf5/chunk64"  # the default shows no token


def test_the_contiguous_case_can_be_picked_alone():
    """'hdf5' as a pattern means every HDF5 case; 'hdf5/contiguous' is the one contiguous case."""
    assert len(cases(["hdf5"])) > 1
    assert [c.case_id for c in cases(["hdf5/contiguous"])] == ["hdf5"]
    assert get_case("hdf5/contiguous").case_id == "hdf5"  # the id itself stays short
    with pytest.raises(InvalidCaseError, match="given twice"):
        get_case("hdf5/chunk64-contiguous")


@pytest.mark.parametrize("cid, chunks, filters", [
    ("hdf5", None, {}),
    ("hdf5/chunk64", (64, 28, 28), {}),
    ("hdf5/chunk1024", (300, 28, 28), {}),  # capped at N rows
    ("hdf5/chunk64-gzip4-shuffle", (64, 28, 28), {"shuffle": (), "gzip": (4,)}),
    ("hdf5/chunk1-lzf", (1, 28, 28), {"lzf": ()}),
    ("hdf5/chunk64-blosczstd-bitshuffle", (64, 28, 28), {"32001": (5, 2, 5)}),  # clevel, bitshuffle, zstd
    ("hdf5/chunk64-blosclz4-shuffle", (64, 28, 28), {"32001": (5, 1, 1)}),  # clevel, shuffle, lz4
    ("hdf5/chunk64-gzip1-fletcher32", (64, 28, 28), {"gzip": (1,), "fletcher32": ()}),
])
def test_layout_and_filters_are_what_the_id_says(cid, chunks, filters, split, tmp_path):
    import h5py

    path = write(cid, split, tmp_path)
    with h5py.File(path, "r") as f:
        assert f.attrs["rows"] == 300 and f.attrs["case"].decode() == cid
        assert f.attrs["fmtbench_version"].decode()
        for name, data in (("images", split.images), ("labels", split.labels)):
            dset = f[name]
            assert dset.dtype == data.dtype and dset.shape == data.shape
            assert dset.chunks == (None if chunks is None else (chunks[0], *data.shape[1:]))
            found = _filters(dset)
            assert found.keys() == filters.keys()
            for key, want in filters.items():
                if key == "32001":  # hdf5plugin's Blosc cd_values end with (clevel, shuffle, compressor)
                    assert found[key][4:7] == want
                elif want:
                    assert found[key] == want


def _filters(dset) -> dict[str, tuple]:
    """{filter name or id: cd_values} of a dataset's pipeline, as plain h5py reports it."""
    dcpl = dset.id.get_create_plist()
    out = {}
    for i in range(dcpl.get_nfilters()):
        code, _flags, values, _name = dcpl.get_filter(i)
        out[{1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}.get(code, str(code))] = tuple(values)
    return out


def test_plain_h5py_opens_the_file_without_fmtbench(split, tmp_path):
    gz = write("hdf5/chunk64-gzip4-shuffle", split, tmp_path / "a")
    blosc = write("hdf5/chunk64-blosclz4", split, tmp_path / "b")
    code = (
        "import sys, h5py\n"
        "f = h5py.File(sys.argv[1], 'r'); print(int(f['images'][:].sum()), int(f['labels'][:].sum()))\n"
        "import hdf5plugin\n"  # Blosc needs its filter registered
        "g = h5py.File(sys.argv[2], 'r'); print(int(g['images'][:].sum()), int(g['labels'][:].sum()))\n"
        "assert 'fmtbench' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code, gz, blosc], capture_output=True, text=True, check=True)
    want = f"{int(split.images.sum())} {int(split.labels.sum())}"
    assert out.stdout.split("\n")[:2] == [want, want]


@pytest.mark.parametrize("cid, nbytes", [("hdf5/chunk64", 1 << 20), ("hdf5/chunk1024-gzip4-cache64m", 64 << 20)])
def test_chunk_cache_option_is_applied(cid, nbytes, split, tmp_path):
    case = get_case(cid)
    with case.open(write(cid, split, tmp_path)) as reader:
        _mdc, nslots, rdcc_nbytes, _w0 = reader._file.id.get_access_plist().get_cache()
    assert rdcc_nbytes == nbytes
    assert nslots >= nbytes // 512 and all(nslots % p for p in range(2, int(nslots**0.5) + 1))


@pytest.mark.parametrize("cid", [
    "hdf5", "hdf5/chunk1", "hdf5/chunk64", "hdf5/chunk64-gzip4",
    "hdf5/chunk64-gzip4-cache1k",  # chunks bigger than the cache: one read per touched chunk
    "hdf5/chunk1024-blosclz4",
    "hdf5/chunk64-cache0", "hdf5/chunk1024-gzip4-cache0",  # no chunk cache: direct reads / a decode per chunk
    "hdf5/chunk64-lzf-cacheauto",  # every chunk stays cached
])
def test_reads_spanning_many_chunks_equal_numpy(cid, split, tmp_path):
    rng = np.random.default_rng(7)
    picks = [
        np.arange(300), np.arange(299, -1, -1), np.arange(10, 200, 3), np.arange(60, 70),
        rng.integers(0, 300, 500), np.sort(rng.choice(300, 150, replace=False)), np.array([5, 5, 5]),
        np.r_[0:5, 63:66, 127:129, 290:300], np.array([299, 0]),
    ]
    case = get_case(cid)
    with case.open(write(cid, split, tmp_path)) as reader:
        if cid.endswith(("cache1k", "gzip4-cache0")):
            assert reader._whole_chunk_runs
        for idx in picks:
            images, labels = reader.read(idx)
            np.testing.assert_array_equal(images, split.images[idx])
            np.testing.assert_array_equal(labels, split.labels[idx])
        for batch_size in (1, 63, 100, 1000):
            batches = list(reader.scan(batch_size))
            assert all(len(b[1]) == batch_size for b in batches[:-1])
            np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), split.images)


def test_empty_split_round_trips(tmp_path):
    empty = Split("train", np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.int64))
    case = get_case("hdf5/chunk64-gzip4")
    path = tmp_path / "empty.hdf5"
    case._write(empty, path)  # not case.write: Split.digest cannot hash empty arrays yet
    with case.open(path) as reader:
        assert len(reader) == 0 and list(reader.scan(8)) == []
        assert reader.read([])[0].shape == (0, 4, 4)


def _h5(path, **datasets) -> str:
    import h5py

    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f[name] = data
    return str(path)


@pytest.mark.parametrize("datasets, message", [
    ({"images": np.zeros((4, 2, 2), np.uint8)}, "no 'labels' dataset"),
    ({"images": np.zeros((4, 2, 2), np.uint8), "labels": np.zeros(3, np.int64)}, "4 images but 3 labels"),
    ({"images": np.zeros((4, 2), np.uint8), "labels": np.zeros(4, np.int64)}, "expected numeric"),
    ({"images": np.zeros((4, 2, 2), np.uint8), "labels": np.zeros((4, 1), np.int64)}, "expected integer"),
])
def test_wrong_layouts_are_format_errors(datasets, message, tmp_path):
    path = _h5(tmp_path / "bad.hdf5", **datasets)
    with pytest.raises(FormatError, match=message):
        get_case("hdf5").open(path)


def test_not_an_hdf5_file_is_a_format_error(tmp_path):
    path = tmp_path / "junk.hdf5"
    path.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(FormatError, match="junk.hdf5"):
        get_case("hdf5/chunk64").open(path)


def test_damage_claims():
    # Fletcher-32 is no claim: see test_fletcher32_cannot_see_a_zero_word_turned_ffff.
    for cid in ("hdf5", "hdf5/chunk64", "hdf5/chunk64-lzf", "hdf5/chunk64-blosczstd",
                "hdf5/chunk1024-fletcher32", "hdf5/chunk64-blosclz4-fletcher32"):
        assert get_case(cid).detects("truncated") and not get_case(cid).detects("flipped")
    for cid in ("hdf5/chunk64-gzip1", "hdf5/chunk1024-gzip4-fletcher32"):
        assert get_case(cid).detects("flipped")
        assert get_case(cid).detection("flipped").label == "detected with probability 1 - 2^-32"


def test_fletcher32_cannot_see_a_zero_word_turned_ffff(split, tmp_path):
    """Fletcher-32 sums 16-bit words mod 65535, where 0x0000 and 0xFFFF are one value: two zero
    pixels set to 0xFF read back silently. One changed byte, though, it always catches."""
    path = write("hdf5/chunk1024-fletcher32", split, tmp_path)
    pristine = open(path, "rb").read()
    row, col = next((r, c) for r, c in zip(*np.nonzero(split.images[150] == 0))
                    if c % 2 == 0 and c + 1 < 28 and split.images[150, r, c + 1] == 0)
    chunk = pristine.index(split.images.tobytes())  # one unfiltered chunk: the images as they are
    at = chunk + 150 * 784 + row * 28 + col  # an even offset into the chunk: one 16-bit word
    damaged = bytearray(pristine)
    damaged[at : at + 2] = b"\xff\xff"
    open(path, "wb").write(bytes(damaged))
    with get_case("hdf5/chunk1024-fletcher32").open(path) as r:
        image = r.read([150])[0][0]
    assert image[row, col] == image[row, col + 1] == 255  # wrong pixels, and no error
    damaged[at + 1] = 0
    open(path, "wb").write(bytes(damaged))
    with get_case("hdf5/chunk1024-fletcher32").open(path) as r, pytest.raises(FormatError):
        r.read([150])


@pytest.mark.parametrize("cid, nbytes", [
    ("hdf5/chunk64-cache0", 0),
    ("hdf5/chunk64-cacheauto", 5 * 64 * (784 + 8)),  # 300 rows in 5 chunks of 64: images and labels
    ("hdf5/chunk1024-gzip4-cacheauto", 300 * (784 + 8)),  # one chunk, capped at the 300 rows
])
def test_no_cache_and_working_set_cache_read_bit_exact(cid, nbytes, split, tmp_path):
    case = get_case(cid)
    path = write(cid, split, tmp_path)
    assert case.mismatches(path) == {}  # the cache is read-side: the file shows the base case's options
    idx = np.random.default_rng(3).integers(0, 300, 200)
    with case.open(path) as reader:
        for _ in range(2):  # a second pass after drop_caches keeps the resolved size
            assert reader._file.id.get_access_plist().get_cache()[2] == nbytes
            images, labels = reader.read(idx)
            np.testing.assert_array_equal(images, split.images[idx])
            np.testing.assert_array_equal(labels, split.labels[idx])
            np.testing.assert_array_equal(np.concatenate([b[0] for b in reader.scan(64)]), split.images)
            reader.drop_caches()


def test_cache_ids_round_trip():
    for cid, cache in (("hdf5/chunk64-cache0", 0), ("hdf5/chunk1024-gzip4-cacheauto", "auto")):
        case = get_case(cid)
        assert case.config["cache"] == cache and case.case_id == cid
        assert type(case)({**case.config}).case_id == cid
    assert get_case("hdf5/chunk64-cache0k").case_id == "hdf5/chunk64-cache0"


@pytest.mark.parametrize("cid, error, message", [
    ("hdf5/chunk64-cache-auto", UnknownNameError, "'cache'; valid: cache<N[k|m|g]>|cache0|cacheauto"),
    ("hdf5/chunk64-cachefoo", UnknownNameError, "'cachefoo'; valid: cache<N[k|m|g]>|cache0|cacheauto"),
    ("hdf5/chunk64-cache-1", UnknownNameError, "'cache'; valid: cache<N"),
    ("hdf5/cacheauto", InvalidCaseError, "cache need a chunked layout"),
    ("hdf5/cache0", InvalidCaseError, "cache need a chunked layout"),
    ("hdf5/chunk64-cache0-cacheauto", InvalidCaseError, "'cache' given twice"),
])
def test_bad_cache_values_are_one_line_errors(cid, error, message):
    with pytest.raises(error, match=re.escape(message)) as info:
        get_case(cid)
    assert "\n" not in str(info.value)


def test_the_grid_pairs_each_main_point_with_its_expert_cache():
    """The library default stays a case; the main chunk x compression points get the expert's
    twin: no cache for unfiltered chunks, the working set for compressed ones."""
    ids = {c.case_id for c in cases(["hdf5"])}
    for rows in (64, 1024):
        assert {f"hdf5/chunk{rows}", f"hdf5/chunk{rows}-cache0"} <= ids
        for comp in ("gzip4", "lzf", "blosclz4"):
            assert {f"hdf5/chunk{rows}-{comp}", f"hdf5/chunk{rows}-{comp}-cacheauto"} <= ids
    twins = [c for c in ids if "-cache" in c]
    assert all(c.endswith(("-cache0", "-cacheauto")) for c in twins) and len(twins) == 8
    rep = [c.case_id for c in cases(["hdf5"], full=False) if "-cache" in c.case_id]
    assert rep == ["hdf5/chunk1024-gzip4-cacheauto"] and "hdf5/chunk1024-gzip4" in {
        c.case_id for c in cases(["hdf5"], full=False)}


def _cache_store(folder, cases_: dict) -> None:
    from fmtbench.results import ResultStore

    store = ResultStore(folder)
    store.start_run({}, ["fmtbench", "run"], {"name": "default"}, "synthetic", "d" * 64)
    for case, (p50, batch, scan) in cases_.items():
        for metric, wl, value in (("random_p50_s", "random", p50), ("batch_sorted_samples_per_s", "random", batch),
                                  ("scan_mb_per_s", "scan", scan), ("write_s", "write", 1.0)):
            cache = "n/a" if wl == "write" else "warm"
            store.add_measurement(case, wl, metric, cache, [value * (1 + d) for d in (-0.02, -0.01, 0, 0.01, 0.02)],
                                  "synthetic", "d" * 64)


def test_the_report_says_what_the_cache_setting_is_worth(tmp_path):
    """Two stores, a default-cache case in one and its expert twin in the other: the HDF5
    section's table gives each metric with both caches and the ratio, noise-aware."""
    pytest.importorskip("jinja2")
    from fmtbench.reports import render

    _cache_store(tmp_path / "a", {"hdf5/chunk1024-gzip4": (2.7e-3, 370.0, 225.0)})
    _cache_store(tmp_path / "b", {"hdf5/chunk1024-gzip4-cacheauto": (1.2e-5, 2300.0, 225.0)})
    html = render.write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "r.html").html.read_text()
    section = html[html.index('<section id="hdf5">'):]
    table = section[section.index("What the chunk-cache setting is worth"):section.index("Effect of the chunk-cache")]
    assert "chunk 1024 · gzip4" in table and "the working set" in table and "1 MiB" in table
    assert "×225 faster" in table and "×6.22 faster" in table and "same within noise" in table


@pytest.mark.parametrize("cid, runs", [
    ("hdf5/chunk1-gzip4", [(0, 2), (2, 3), (3, 4)]),  # 12-14 would be read and inflated for nothing
    ("hdf5/chunk64", [(0, 3), (3, 4)]),  # rows 10, 11 and 15 sit in one chunk: one read
])
def test_a_run_never_reads_through_a_chunk_none_of_its_rows_is_in(cid, runs, split, tmp_path):
    """Sorted rows closer than 16 KiB share one read, unless a chunk holding none of them lies
    between (with 1-row chunks, every row between is a chunk to read and decode)."""
    with get_case(cid).open(write(cid, split, tmp_path)) as r:
        assert r._merge_gap >= 5 and 40 - 15 > r._merge_gap  # 784-byte rows: 20 rows share a read
        uniq = np.array([10, 11, 15, 40])
        assert [(a, b) for a, b, *_ in r._runs(uniq)] == runs
        images, labels = r.read(uniq)
        np.testing.assert_array_equal(images, split.images[uniq])
        np.testing.assert_array_equal(labels, split.labels[uniq])
