"""Zarr quirks: a plain Zarr v3 group, codecs and shards as the id says, damage zarr itself misses."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr", minversion="3.1")

from conftest import make_split, write, reference_class  # noqa: E402
from fmtbench.errors import FormatError, InvalidCaseError  # noqa: E402
from fmtbench.formats import get_case  # noqa: E402


Reference = reference_class("zarr")


def test_plain_zarr_opens_the_group_without_fmtbench(tmp_path, split):
    _, path = write("zarr/chunk64-shard8192-crc32c", tmp_path, split)
    code = textwrap.dedent("""
        import json, sys, zarr
        g = zarr.open_group(sys.argv[1], mode="r")
        images, labels = g["images"], g["labels"]
        print(json.dumps([int(images[:].sum()), int(labels[:].sum()), list(images.shape),
                          str(images.dtype), str(labels.dtype), g.attrs["fmtbench"]]))
        assert "fmtbench" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    pixels, labels, shape, dtype, label_dtype, meta = json.loads(out.stdout)
    assert (pixels, labels) == (int(split.images.sum()), int(split.labels.sum()))
    assert (shape, dtype, label_dtype) == ([300, 28, 28], "uint8", "int64")
    assert meta["layout"] == 1 and meta["rows"] == 300 and meta["case"] == "zarr/chunk64-shard8192-crc32c"


def _codecs(path: Path, name: str) -> list:
    return json.loads((path / name / "zarr.json").read_text())["codecs"]


@pytest.mark.parametrize(("cid", "chunk", "names"), [
    ("zarr", 300, ["bytes", "zstd"]),  # 1024-row chunks, capped at N
    ("zarr/chunk64", 64, ["bytes", "zstd"]),
    ("zarr/none", 300, ["bytes"]),
    ("zarr/blosclz4", 300, ["bytes", "blosc"]),
    ("zarr/crc32c", 300, ["bytes", "zstd", "crc32c"]),
])
def test_chunks_and_codecs_are_what_the_id_says(tmp_path, split, cid, chunk, names):
    _, path = write(cid, tmp_path, split)
    for name, rest in (("images", [28, 28]), ("labels", [])):
        meta = json.loads((path / name / "zarr.json").read_text())
        assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [chunk, *rest]
        assert [c["name"] for c in meta["codecs"]] == names
        files = sorted(p for p in (path / name / "c").rglob("*") if p.is_file())
        assert len(files) == -(-300 // chunk)
    if "zstd" in names:
        zstd = next(c for c in _codecs(path, "images") if c["name"] == "zstd")
        assert zstd["configuration"] == {"level": 0, "checksum": False}  # zarr's own default
    if "blosc" in names:
        blosc = next(c for c in _codecs(path, "images") if c["name"] == "blosc")["configuration"]
        assert (blosc["cname"], blosc["clevel"], blosc["shuffle"]) == ("lz4", 5, "shuffle")


def test_shards_hold_whole_chunks_behind_a_checksummed_index(tmp_path):
    split = make_split(n=600)
    _, path = write("zarr/chunk64-shard256-crc32c", tmp_path, split)
    (codec,) = _codecs(path, "images")
    assert codec["name"] == "sharding_indexed"
    conf = codec["configuration"]
    assert conf["chunk_shape"] == [64, 28, 28] and conf["index_location"] == "end"
    assert [c["name"] for c in conf["codecs"]] == ["bytes", "zstd", "crc32c"]
    assert [c["name"] for c in conf["index_codecs"]] == ["bytes", "crc32c"]
    meta = json.loads((path / "images" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [256, 28, 28]
    assert len([p for p in (path / "images" / "c").rglob("*") if p.is_file()]) == 3  # 600 / 256
    # A shard bigger than the data is cut to the chunks the data fills (5 x 64 >= 300).
    _, small = write("zarr/chunk64-shard8192", tmp_path / "small", make_split(n=300))
    grid = json.loads((small / "images" / "zarr.json").read_text())["chunk_grid"]
    assert grid["configuration"]["chunk_shape"] == [320, 28, 28]


def test_ids_round_trip_and_shards_must_hold_whole_chunks():
    assert get_case("zarr").config == {"chunk": 1024, "compression": "zstd", "shard": None, "crc32c": False}
    case = get_case("zarr/chunk64-none-shard8192-crc32c")
    assert case.config == {"chunk": 64, "compression": "none", "shard": 8192, "crc32c": True}
    assert get_case("zarr/chunk1024-zstd").case_id == "zarr"
    for bad in ("zarr/chunk64-shard100", "zarr/chunk64-shard64", "zarr/shard1000"):
        with pytest.raises(InvalidCaseError, match="whole chunks"):
            get_case(bad)


@pytest.mark.parametrize("cid", ["zarr", "zarr/chunk64", "zarr/chunk64-shard8192-crc32c", "zarr/none"])
def test_reference_reader_returns_exactly_what_the_adapter_returns(tmp_path, cid):
    split = make_split(n=300, shape=(5, 4, 3), seed=4, dtype=np.float32)
    case, path = write(cid, tmp_path, split)
    idx = np.random.default_rng(2).integers(0, 300, 90)  # unsorted, duplicates
    ref = Reference(path)
    with case.open(path) as r:
        ours = [r.read(idx), r.read([17]), r.read(np.arange(40, 60)), *r.scan(64)]
    theirs = [ref.read(idx), ref.read(np.array([17])), ref.read(np.arange(40, 60)), *ref.scan(64)]
    ref.close()
    assert len(ours) == len(theirs) == 3 + 5
    for (a_img, a_lab), (b_img, b_lab) in zip(ours, theirs):
        assert a_img.dtype == b_img.dtype == np.float32 and a_lab.dtype == b_lab.dtype == np.int64
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(ours[0][0], split.images[idx])


def test_scan_reads_whole_chunks_of_at_least_8_mib(tmp_path):
    split = make_split(n=3000, shape=(32, 32, 3))  # 3 KiB images: 8 MiB is 2731 rows
    case, path = write("zarr/chunk1024", tmp_path, split)
    with case.open(path) as r:
        assert r._scan_rows == 3072
        sizes = [len(b[1]) for b in r.scan(1000)]
        np.testing.assert_array_equal(np.concatenate([b[0] for b in r.scan(7)]), split.images)
    assert sizes == [1000, 1000, 1000]


def _chunk_files(path: Path, name: str) -> list[Path]:
    return sorted(p for p in (path / name / "c").rglob("*") if p.is_file())


@pytest.mark.parametrize("cid", ["zarr/chunk64-shard8192", "zarr/chunk64"])
def test_an_empty_or_missing_chunk_file_is_refused_at_open(tmp_path, split, cid):
    """zarr reads an empty shard, and any missing chunk, as fill values without an error."""
    case, path = write(cid, tmp_path, split)
    victim = _chunk_files(path, "images")[0]
    data = victim.read_bytes()
    victim.write_bytes(b"")
    g = zarr.open_group(str(path), mode="r")
    if "shard" in cid:  # what plain zarr does reading the whole shard: zeros
        assert not g["images"][:].any()
    with pytest.raises(FormatError, match="is empty"):
        case.open(path)
    victim.unlink()
    assert not g["images"][:64].any()
    with pytest.raises(FormatError, match="is missing"):
        case.open(path)
    victim.write_bytes(data)
    case.open(path).close()


def test_a_cut_shard_fails_its_index_checksum(tmp_path, split):
    case, path = write("zarr/chunk64-shard8192", tmp_path, split)
    victim = _chunk_files(path, "images")[0]
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(FormatError, match="checksum"):
        with case.open(path) as r:
            r.read([0])


def test_crc32c_catches_a_flip_that_zstd_alone_misses(tmp_path, split):
    plain, plain_path = write("zarr", tmp_path / "plain", split)
    summed, summed_path = write("zarr/crc32c", tmp_path / "summed", split)
    for path in (plain_path, summed_path):
        (victim,) = _chunk_files(path, "images")
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit inside a zstd literal section
        victim.write_bytes(bytes(data))
    try:
        with plain.open(plain_path) as r:
            assert not np.array_equal(r.read(np.arange(300))[0], split.images)
    except FormatError:
        pass  # some single flips do break the zstd frame; the claim is only "not sure"
    with pytest.raises(FormatError, match="checksum"):
        with summed.open(summed_path) as r:
            r.read(np.arange(300))
    assert summed.detects("flipped") and not plain.detects("flipped")


def test_blosc_reads_a_chunk_cut_by_a_byte_as_if_whole(tmp_path, split):
    """Why blosclz4 claims no truncation detection: Blosc trusts its header's sizes."""
    case, path = write("zarr/blosclz4", tmp_path, split)
    (victim,) = _chunk_files(path, "images")
    victim.write_bytes(victim.read_bytes()[:-1])
    with case.open(path) as r:
        images, _ = r.read(np.arange(300))
    assert images.shape == split.images.shape
    assert not case.detects("truncated") and get_case("zarr/blosclz4-crc32c").detection("truncated").p > 0.99


def test_groups_that_are_not_ours_are_format_errors(tmp_path):
    g = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    g.create_array("images", shape=(4, 2, 2), dtype="u1", chunks=(2, 2, 2))
    with pytest.raises(FormatError, match="no 'labels' array"):
        get_case("zarr").open(tmp_path / "other.zarr")
    g.create_array("labels", shape=(3,), dtype="i8", chunks=(3,))
    with pytest.raises(FormatError, match="4 images, 3 labels"):
        get_case("zarr").open(tmp_path / "other.zarr")
    (tmp_path / "text.zarr").mkdir()
    (tmp_path / "text.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(FormatError, match="text.zarr"):
        get_case("zarr").open(tmp_path / "text.zarr")
