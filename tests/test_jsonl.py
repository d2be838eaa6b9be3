"""JSON Lines quirks: plain json, pandas and gzip read it, the index and the gzip members are
what the docstring says, every dtype round-trips, both parse paths check shapes, damage fails."""
from __future__ import annotations

import base64
import gzip
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from conftest import make_split, write, reference_class  # noqa: E402
from fmtbench.datasets._base import Split  # noqa: E402
from fmtbench.errors import FormatError  # noqa: E402
from fmtbench.formats import get_case, jsonl  # noqa: E402


Reference = reference_class("jsonl")


def read_all(case, path):
    with case.open(path) as r:
        scanned = list(r.scan(70))
        images, labels = r.read(np.arange(len(r)))
        few = r.read(np.arange(min(5, len(r))))  # json.loads, below the pyarrow threshold
    np.testing.assert_array_equal(np.concatenate([b[0] for b in scanned]), images)
    np.testing.assert_array_equal(few[0], images[:5])
    return images, labels


def gzip_members(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, text) of every member of a gzip file."""
    out, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        out.append((pos, inflater.decompress(data[pos:])))
        pos = len(data) - len(inflater.unused_data)
    return out


def test_naming_cases_does_not_import_pyarrow():
    code = ("import sys; from fmtbench.formats import adapter_class as a; "
            "[a('jsonl')(g).case_id for g in a('jsonl').grid]; print('pyarrow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


def test_lines_parse_with_plain_json_and_pandas(tmp_path, split):
    _, path = write("jsonl", tmp_path, split)
    assert sorted(p.name for p in path.iterdir()) == ["data.jsonl", "meta.json"]
    meta = json.loads((path / "meta.json").read_text())
    assert meta == {"shape": [28, 28], "dtype": "|u1", "rows": 300, "encoding": "list",
                    "compression": "none", "index": False}
    lines = (path / "data.jsonl").read_bytes().split(b"\n")
    assert len(lines) == 301 and lines[-1] == b""
    assert lines[0].startswith(b'{"label":%d,"image":[[0,' % split.labels[0]) and b" " not in lines[0]
    for i in (0, 1, 299):
        obj = json.loads(lines[i])
        np.testing.assert_array_equal(np.array(obj["image"], dtype=meta["dtype"]), split.images[i])
        assert obj["label"] == split.labels[i]
    df = pytest.importorskip("pandas").read_json(path / "data.jsonl", lines=True)
    np.testing.assert_array_equal(df["label"].to_numpy(), split.labels)
    np.testing.assert_array_equal(np.array(df["image"].iloc[7]), split.images[7])


def test_b64_images_are_raw_bytes(tmp_path):
    split = make_split(n=20, shape=(4, 3, 2), seed=2, dtype=np.float32)
    _, path = write("jsonl/b64", tmp_path, split)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["encoding"] == "base64" and meta["dtype"] == "<f4" and meta["shape"] == [4, 3, 2]
    obj = json.loads((path / "data.jsonl").read_bytes().split(b"\n")[3])
    image = np.frombuffer(base64.b64decode(obj["image"]), meta["dtype"]).reshape(meta["shape"])
    np.testing.assert_array_equal(image, split.images[3])


def test_gzip_is_whole_line_members_that_gzip_reads(tmp_path, split):
    _, plain = write("jsonl", tmp_path / "plain", split)
    _, packed = write("jsonl/gzip-idx", tmp_path / "packed", split)
    data = (packed / "data.jsonl.gz").read_bytes()
    text = (plain / "data.jsonl").read_bytes()
    assert gzip.decompress(data) == text and len(data) < len(text) // 3
    with gzip.open(packed / "data.jsonl.gz", "rb") as fh:  # line by line, as people read it
        assert fh.readlines() == text.splitlines(keepends=True)
    members = gzip_members(data)
    longest = max(map(len, text.splitlines(keepends=True)))
    assert len(members) > 5
    for k, (offset, member_text) in enumerate(members):
        assert data[offset:offset + 4] == b"\x1f\x8b\x08\x02"  # FHCRC: the header has a CRC-16
        assert member_text.endswith(b"\n") and len(member_text) < jsonl._MEMBER_TEXT + longest
        assert len(member_text) >= jsonl._MEMBER_TEXT or k == len(members) - 1  # ~64 KiB each

    table = np.fromfile(packed / "data.jsonl.gz.idx", "<u8").reshape(-1, 2)
    assert table.shape == (301, 2) and list(table[-1]) == [len(data), 0]
    starts = dict(members)
    for i in (0, 1, 150, 299):
        member, inner = table[i]
        line = starts[int(member)][inner:].split(b"\n")[0]
        assert json.loads(line)["label"] == split.labels[i]


def test_plain_index_holds_every_line_start_and_the_size(tmp_path, split):
    case, path = write("jsonl/idx", tmp_path, split)
    text = (path / "data.jsonl").read_bytes()
    table = np.fromfile(path / "data.jsonl.idx", "<u8")
    expected = [0] + [i + 1 for i, byte in enumerate(text) if byte == 10]
    assert table.tolist() == expected
    with case.open(path) as r:
        assert r.random_access == "native" and r.index_seconds == 0


@pytest.mark.parametrize("cid", ["jsonl", "jsonl/gzip"])
def test_without_idx_the_index_is_built_at_open(tmp_path, split, cid):
    case, path = write(cid, tmp_path, split)
    assert not list(path.glob("*.idx"))
    with case.open(path) as r:
        assert r.random_access == case.random_access == "index"
        assert r.index_seconds > 0 and r.index_bytes == (2 if "gzip" in cid else 1) * 8 * 301


@pytest.mark.parametrize("cid", ["jsonl", "jsonl/idx", "jsonl/gzip", "jsonl/gzip-idx",
                                 "jsonl/b64", "jsonl/b64-gzip-idx"])
def test_reference_reads_what_the_adapter_reads(tmp_path, split, cid):
    case, path = write(cid, tmp_path, split)
    idx = np.random.default_rng(1).choice(len(split), 90)
    ref = Reference(path)
    try:
        with case.open(path) as r:
            for asked in (idx, idx[:1], idx[:10], np.array([299, 0, 31, 32, 33])):
                for mine, theirs in zip(r.read(asked), ref.read(asked)):
                    assert mine.dtype == theirs.dtype
                    np.testing.assert_array_equal(mine, theirs)
            mine, theirs = list(r.scan(64)), list(ref.scan(64))
    finally:
        ref.close()
    assert [len(b[1]) for b in mine] == [len(b[1]) for b in theirs]
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("cid", ["jsonl", "jsonl/b64"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_finite_floats_round_trip_bit_exact(tmp_path, cid, dtype):
    bits = np.random.default_rng(0).integers(0, 256, 100 * 12 * np.dtype(dtype).itemsize, dtype=np.uint8)
    images = bits.view(dtype).reshape(100, 4, 3)  # every exponent, subnormals included
    images[~np.isfinite(images)] = -0.0
    images_back, _ = read_all(*write(cid, tmp_path, Split("train", images, np.arange(100))))
    assert images_back.dtype == dtype
    np.testing.assert_array_equal(images_back.view(np.uint8), images.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.uint64, ">u2", np.bool_])
def test_integers_and_booleans_round_trip(tmp_path, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        images = np.random.default_rng(3).random((100, 3, 2)) < 0.5
    else:
        info = np.iinfo(dtype)
        images = np.array([[[info.min, info.max], [0, 1]]] * 100, dtype=dtype)
    labels = np.arange(100) - 2**62
    images_back, labels_back = read_all(*write("jsonl", tmp_path, Split("train", images, labels)))
    assert images_back.dtype == dtype
    np.testing.assert_array_equal(images_back, images)
    np.testing.assert_array_equal(labels_back, labels)


def test_nan_and_infinity_are_refused_and_leave_nothing(tmp_path):
    images = np.zeros((3, 2, 2), np.float32)
    images[1, 0, 0] = np.nan
    target = get_case("jsonl").default_path(tmp_path)
    with pytest.raises(ValueError, match="no NaN or infinity"):
        get_case("jsonl").write(Split("train", images, np.zeros(3, np.int64)), target)
    assert not target.exists()


@pytest.mark.parametrize("lines", [5, 100])  # json.loads below 64 lines, pyarrow.json above
def test_an_image_of_another_shape_is_a_format_error(tmp_path, split, lines):
    case, path = write("jsonl/idx", tmp_path, split)
    data = (path / "data.jsonl").read_bytes()
    first = data.index(b"\n")
    short = data[:first].replace(b"[0,", b"[", 1)  # one pixel fewer in the first row of image 0
    data = short + b"  " + data[first:]  # the same length: the index still fits
    (path / "data.jsonl").write_bytes(data)
    with case.open(path) as r:
        np.testing.assert_array_equal(r.read([1])[0][0], split.images[1])
        with pytest.raises(FormatError, match="shape|inhomogeneous"):
            r.read(np.arange(lines))


@pytest.mark.parametrize("cid", ["jsonl", "jsonl/idx", "jsonl/gzip", "jsonl/gzip-idx"])
def test_a_file_cut_at_a_line_or_member_end_fails_at_open(tmp_path, split, cid):
    case, path = write(cid, tmp_path, split)
    data_file = path / ("data.jsonl.gz" if "gzip" in cid else "data.jsonl")
    data = data_file.read_bytes()
    cut = gzip_members(data)[-1][0] if cid.startswith("jsonl/gzip") else data.rindex(b"\n", 0, -1) + 1
    data_file.write_bytes(data[:cut])
    with pytest.raises(FormatError, match="lines, but meta.json counts 300|does not index this file"):
        case.open(path)


@pytest.mark.parametrize("where, message", [(4, "header crc mismatch"), (-8, "incorrect data check")])
@pytest.mark.parametrize("cid", ["jsonl/gzip-idx", "jsonl/gzip"])
def test_gzip_members_check_their_header_and_text(tmp_path, split, cid, where, message):
    case, path = write(cid, tmp_path, split)
    data = bytearray((path / "data.jsonl.gz").read_bytes())
    starts = [offset for offset, _ in gzip_members(bytes(data))]
    in_member_2 = sum(text.count(b"\n") for _, text in gzip_members(bytes(data))[:2])
    # member 2's time in its header, or its CRC-32 of its text
    data[starts[2] + where if where > 0 else starts[3] + where] ^= 0x01
    (path / "data.jsonl.gz").write_bytes(bytes(data))
    if cid == "jsonl/gzip":
        with pytest.raises(FormatError, match=message):
            case.open(path)  # building the index inflates every member
        return
    with case.open(path) as r:
        np.testing.assert_array_equal(r.read([0])[0][0], split.images[0])
        with pytest.raises(FormatError, match=message):
            r.read([in_member_2])
        with pytest.raises(FormatError, match=message):
            list(r.scan(64))
    assert case.detects("flipped") and not get_case("jsonl/b64-idx").detects("flipped")


def test_a_folder_opened_as_another_case_is_a_format_error(tmp_path, split):
    _, path = write("jsonl/gzip", tmp_path, split)
    with pytest.raises(FormatError, match="written with .*'gzip'.* opened as .*'none'"):
        get_case("jsonl").open(path)
    with pytest.raises(FormatError, match="missing meta.json"):
        get_case("jsonl").open(tmp_path)


def test_member_offsets_survive_a_split_read(tmp_path, split, monkeypatch):
    """Reads of members in any order, with the inflating reads cut into tiny pieces."""
    monkeypatch.setattr(jsonl, "_GZIP_READ", 97)
    case, path = write("jsonl/gzip", tmp_path, split)
    idx = np.random.default_rng(4).permutation(len(split))
    with case.open(path) as r:
        np.testing.assert_array_equal(r.read(idx)[0], split.images[idx])
        np.testing.assert_array_equal(np.concatenate([b[0] for b in r.scan(33)]), split.images)


def test_empty_split_round_trips(tmp_path):
    for cid in ("jsonl", "jsonl/b64-gzip-idx"):
        case, path = write(cid, tmp_path / cid.replace("/", "_"), make_split(n=0))
        with case.open(path) as r:
            assert len(r) == 0 and list(r.scan(8)) == [] and r.read([])[0].shape == (0, 28, 28)


def test_crc16_of_the_member_header_is_what_gzip_expects():
    header = jsonl._HEADER + jsonl._HEADER_CRC
    assert struct.unpack("<H", header[10:])[0] == zlib.crc32(header[:10]) & 0xFFFF
    assert gzip.decompress(jsonl._gzip_member(b"abc\n") * 2) == b"abc\nabc\n"


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.uint64, ">u2", np.bool_])
def test_integer_lines_are_what_json_dumps_writes(dtype):
    """Integer and boolean images go through pandas' encoder: the bytes must be json's."""
    images = make_split(n=40, shape=(3, 4, 2), seed=8).images.astype(dtype)
    labels = np.arange(40) * 7 - 2**62
    expected = "".join(json.dumps({"label": lab, "image": img}, separators=(",", ":")) + "\n"
                       for lab, img in zip(labels.tolist(), images.tolist())).encode()
    assert jsonl._json_lines(images, labels, "list") == expected
