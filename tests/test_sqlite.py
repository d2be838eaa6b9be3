"""SQLite quirks: a plain sqlite3 file with the documented schema, and no sidecar files."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from fmtbench.errors import FormatError, InvalidCaseError
from conftest import write  # noqa: E402
from fmtbench.formats import get_case


def test_file_opens_with_plain_sqlite3_and_matches_the_documented_schema(tmp_path, split):
    _, path = write("sqlite", tmp_path, split)
    with sqlite3.connect(path) as con:
        columns = [(c[1], c[2], c[3], c[5]) for c in con.execute("PRAGMA table_info(samples)")]
        assert columns == [("id", "INTEGER", 0, 1), ("label", "INTEGER", 1, 0), ("image", "BLOB", 1, 0)]
        meta = dict(con.execute("SELECT key, value FROM meta"))
        label, blob = con.execute("SELECT label, image FROM samples WHERE id = 7").fetchone()
    con.close()
    assert meta == {"shape": "[28, 28]", "dtype": "|u1", "rows": "300", "layout": "1"}
    assert json.loads(meta["shape"]) == [28, 28]
    assert label == split.labels[7]
    np.testing.assert_array_equal(np.frombuffer(blob, np.uint8).reshape(28, 28), split.images[7])


@pytest.mark.parametrize(("cid", "page_size"), [("sqlite/wal", 4096), ("sqlite/page65536", 65536)])
def test_written_file_is_self_contained(tmp_path, split, cid, page_size):
    _, path = write(cid, tmp_path, split)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no -wal, -shm, -journal
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert con.execute("PRAGMA page_size").fetchone()[0] == page_size
    con.close()


def test_reading_creates_and_changes_nothing(tmp_path, split):
    case, path = write("sqlite/wal", tmp_path, split)
    before = path.read_bytes()
    with case.open(path) as r:
        r.read([3, 1, 3])
        list(r.scan(100))
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert path.read_bytes() == before


def test_reads_bigger_than_one_query(tmp_path, split):
    case, path = write("sqlite", tmp_path, split)
    idx = np.random.default_rng(1).choice(len(split), 100)  # unsorted, with duplicates
    with case.open(path) as r:
        r._chunk = 7  # stand-in for SQLite's variable limit
        images, labels = r.read(idx)
    np.testing.assert_array_equal(images, split.images[idx])
    np.testing.assert_array_equal(labels, split.labels[idx])


def test_foreign_or_inconsistent_files_are_format_errors(tmp_path, split):
    case, path = write("sqlite", tmp_path / "ours", split)
    with sqlite3.connect(path) as con:
        con.execute("DELETE FROM samples WHERE id = 299")
    con.close()
    with pytest.raises(FormatError, match="do not match the 300 rows"):
        case.open(path)

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(FormatError, match="not an fmtbench sqlite file"):
        case.open(other)

    text = tmp_path / "text.sqlite"
    text.write_text("not a database at all " * 100)
    with pytest.raises(FormatError, match=str(text)):
        case.open(text)


def test_page_size_must_be_one_sqlite_accepts():
    with pytest.raises(InvalidCaseError, match="power of two"):
        get_case("sqlite/page1000")
    assert get_case("sqlite/wal-page65536").config == {"journal": "wal", "page_size": 65536}
    assert not get_case("sqlite").detects("flipped") and get_case("sqlite").detects("truncated")


@pytest.mark.parametrize("cid", ["sqlite", "sqlite/wal", "sqlite/page65536"])
@pytest.mark.parametrize("cut", [1, 100, 500, 4096])
def test_a_cut_file_is_a_format_error_at_open(tmp_path, split, cid, cut):
    """SQLite reads the missing tail of a cut last page as zeros: the size check at open
    catches what SQLite alone does not (a cut of 500 bytes read back zeroed pixels)."""
    case, path = write(cid, tmp_path, split)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with pytest.raises(FormatError, match=f"{len(data) - cut} bytes, but the header says .*: truncated"):
        case.open(path)


def test_a_file_that_is_not_as_its_header_says_is_a_format_error(tmp_path, split):
    case, path = write("sqlite", tmp_path, split)
    data = path.read_bytes()
    path.write_bytes(data + b"\0" * 4096)
    with pytest.raises(FormatError, match="bytes after its last page"):
        case.open(path)
    stale = bytearray(data)
    stale[92:96] = b"\xff" * 4  # "version-valid-for" no longer matches the change counter
    path.write_bytes(bytes(stale))
    with pytest.raises(FormatError, match="page count is stale"):
        case.open(path)
    path.write_bytes(data[:50])
    with pytest.raises(FormatError, match="no SQLite header"):
        case.open(path)


def test_a_file_in_wal_mode_is_refused(tmp_path, split):
    """In WAL mode the newest pages, the header's page count included, may sit in a -wal file."""
    case, path = write("sqlite", tmp_path, split)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode = wal").fetchone()[0] == "wal"
    con.close()
    with pytest.raises(FormatError, match="WAL mode"):
        case.open(path)
