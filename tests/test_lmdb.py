"""LMDB quirks: a plain LMDB environment, sample keys in order, cut or broken files refused at open."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

lmdb = pytest.importorskip("lmdb")
pytest.importorskip("lmdb.verify")

from conftest import make_split, write, reference_class  # noqa: E402
from fmtbench.errors import FormatError, InvalidCaseError, UnknownNameError  # noqa: E402
from fmtbench.formats import get_case  # noqa: E402
from fmtbench.formats.lmdb import _Shared  # noqa: E402

PAGE = 4096


Reference = reference_class("lmdb")


def test_plain_lmdb_reads_what_the_docstring_says(tmp_path, split):
    _, path = write("lmdb", tmp_path, split)
    assert sorted(p.name for p in path.iterdir()) == ["data.mdb"]  # no lock.mdb
    code = textwrap.dedent("""
        import json, sys, lmdb, numpy as np
        env = lmdb.open(sys.argv[1], readonly=True, lock=False)
        with env.begin() as txn:
            meta = json.loads(txn.get(b"__fmtbench__"))
            v = txn.get((7).to_bytes(8, "big"))
            keys = [k for k, _ in txn.cursor()]
        image = np.frombuffer(v, meta["dtype"], 784).reshape(meta["shape"])
        print(json.dumps([meta, int(image.sum()), int.from_bytes(v[784:], "little", signed=True),
                          len(keys), keys[:2] == [(0).to_bytes(8, "big"), (1).to_bytes(8, "big")]]))
        assert "fmtbench" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    meta, pixels, label, nkeys, ordered = json.loads(out.stdout)
    assert meta == {"layout": 1, "shape": [28, 28], "dtype": "|u1", "rows": 300, "rows_per_value": 1}
    assert pixels == int(split.images[7].sum()) and label == split.labels[7]
    assert nkeys == 301 and ordered  # every sample, then the metadata key last


@pytest.mark.parametrize(("cid", "entries", "overflow"), [
    ("lmdb", 301, False), ("lmdb/rows64", 6, True), ("lmdb/rows2", 151, False), ("lmdb/rows1024", 2, True)])
def test_rows_per_value_is_what_the_id_says(tmp_path, split, cid, entries, overflow):
    _, path = write(cid, tmp_path, split)
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        stat = env.stat()
        assert stat["entries"] == entries
        assert (stat["overflow_pages"] > 0) == overflow  # values over half a page leave the leaves
        with env.begin() as txn:
            first = txn.get((0).to_bytes(8, "big"))
    finally:
        env.close()
    per = get_case(cid).config["rows_per_value"]
    assert first == split.images[:per].tobytes() + split.labels[:per].astype("<i8").tobytes()


def test_ids_round_trip_and_bad_options_are_refused():
    assert get_case("lmdb").config == {"rows_per_value": 1, "no_readahead": False}
    assert get_case("lmdb/rows64-noreadahead").config == {"rows_per_value": 64, "no_readahead": True}
    assert get_case("lmdb/rows1").case_id == "lmdb"
    with pytest.raises((UnknownNameError, InvalidCaseError)):
        get_case("lmdb/rows0")
    assert get_case("lmdb").detects("truncated") and not get_case("lmdb/rows64").detects("flipped")


@pytest.mark.parametrize("cid", ["lmdb", "lmdb/noreadahead", "lmdb/rows64", "lmdb/rows7"])
def test_reference_reader_returns_exactly_what_the_adapter_returns(tmp_path, cid):
    split = make_split(n=300, shape=(5, 4, 3), seed=4, dtype=np.float32)
    case, path = write(cid, tmp_path, split)
    idx = np.random.default_rng(2).integers(0, 300, 90)  # unsorted, duplicates
    with case.open(path) as r:
        ours = [r.read(idx), r.read([17]), *r.scan(64)]
        assert r._env.flags()["readahead"] is not case.config["no_readahead"]
    ref = Reference(path)  # one environment per process at a time: LMDB forbids two
    try:
        theirs = [ref.read(idx), ref.read(np.array([17])), *ref.scan(64)]
    finally:
        ref.close()
    assert len(ours) == len(theirs) == 2 + 5
    for (a_img, a_lab), (b_img, b_lab) in zip(ours, theirs):
        assert a_img.dtype == b_img.dtype and a_lab.dtype == b_lab.dtype == np.int64
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(ours[0][0], split.images[idx])


def test_readers_of_one_file_share_one_environment(tmp_path, split):
    case, path = write("lmdb", tmp_path, split)
    before = dict(_Shared._envs)
    a, b = case.open(path), case.open(path)
    assert a._env is b._env
    a.drop_caches()  # the other reader still holds it: the environment stays open
    np.testing.assert_array_equal(a.read([3])[0], split.images[[3]])
    a.close()
    b.close()
    assert _Shared._envs == before
    ref = Reference(path)  # all readers gone: plain lmdb may open it again
    ref.close()


def test_reading_creates_and_changes_nothing(tmp_path, split):
    case, path = write("lmdb/rows64", tmp_path, split)
    before = (path / "data.mdb").read_bytes()
    with case.open(path) as r:
        r.read([5, 1, 5])
        list(r.scan(100))
        r.drop_caches()
    assert sorted(p.name for p in path.iterdir()) == ["data.mdb"]
    assert (path / "data.mdb").read_bytes() == before


@pytest.mark.parametrize("cid", ["lmdb", "lmdb/rows64"])
@pytest.mark.parametrize("cut", [1, 100, PAGE, 3 * PAGE + 5])
def test_a_cut_file_is_refused_at_open(tmp_path, split, cid, cut):
    """LMDB maps the file and would take SIGBUS on a page past its end; the size check at open
    turns every cut into a FormatError."""
    case, path = write(cid, tmp_path, split)
    data = (path / "data.mdb").read_bytes()
    (path / "data.mdb").write_bytes(data[:-cut])
    with pytest.raises(FormatError, match="truncated|damaged LMDB structure"):
        case.open(path)
    (path / "data.mdb").write_bytes(data + b"\0" * PAGE)
    with pytest.raises(FormatError, match="bytes after its last page"):
        case.open(path)


def _branch_page(data: bytes) -> int:
    """The number of a branch page (LMDB 0.9 page header: pgno u64, pad u16, flags u16, ...)."""
    for pgno in range(2, len(data) // PAGE):
        if int.from_bytes(data[pgno * PAGE + 10:pgno * PAGE + 12], sys.byteorder) & 0x01:
            return pgno
    raise AssertionError("no branch page")


def test_a_broken_page_pointer_is_a_format_error_not_a_crash(tmp_path):
    """A flipped node offset in a branch page made LMDB read past the map (SIGBUS, found by
    fuzzing); py-lmdb's structural verifier at open refuses the file instead. Run in a child,
    so a regression fails this test rather than killing the test run."""
    case, path = write("lmdb", tmp_path, make_split(n=2000))
    data = bytearray((path / "data.mdb").read_bytes())
    page = _branch_page(data)
    data[page * PAGE + 16 + 3] ^= 0x7F  # high byte of node 1's offset inside the page
    (path / "data.mdb").write_bytes(bytes(data))
    code = textwrap.dedent(f"""
        import numpy as np
        from fmtbench.errors import FormatError
        from fmtbench.formats import get_case
        try:
            with get_case("lmdb").open({str(path)!r}) as r:
                r.read(np.arange(len(r)))
                list(r.scan(64))
            print("read")
        except FormatError as exc:
            print("FormatError", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"the reader died: rc={out.returncode} {out.stderr[-500:]}"
    assert out.stdout.startswith("FormatError") and "damaged LMDB structure" in out.stdout


def test_foreign_or_inconsistent_environments_are_format_errors(tmp_path, split):
    foreign = tmp_path / "foreign.lmdb"
    env = lmdb.open(str(foreign), lock=False)
    with env.begin(write=True) as txn:
        txn.put(b"x", b"y")
    env.close()
    with pytest.raises(FormatError, match="not an fmtbench LMDB"):
        get_case("lmdb").open(foreign)

    case, path = write("lmdb", tmp_path / "ours", split)
    env = lmdb.open(str(path), lock=False)
    with env.begin(write=True) as txn:
        txn.delete((299).to_bytes(8, "big"))
    env.close()
    with pytest.raises(FormatError, match="300 samples in values of 1 need 300"):
        case.open(path)

    with pytest.raises(FormatError, match="no data.mdb"):
        case.open(tmp_path)
