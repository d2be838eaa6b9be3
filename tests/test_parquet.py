"""Parquet quirks: the file is plain Parquet, row groups follow the id, checksums catch flips."""
from __future__ import annotations

import json

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import make_split, write  # noqa: E402
from fmtbench.errors import FormatError, UnknownNameError  # noqa: E402
from fmtbench.formats import get_case  # noqa: E402


def test_file_opens_with_plain_pyarrow_and_pandas(tmp_path, split):
    _, path = write("parquet/rg64-zstd", tmp_path, split)
    table = pq.read_table(path)
    assert table.column_names == ["label", "image"]
    assert table.schema.field("image").type == pa.binary(28 * 28)
    assert pa.types.is_fixed_size_binary(table.schema.field("image").type)
    assert table.schema.field("label").type == pa.int64()
    meta = json.loads(table.schema.metadata[b"fmtbench"])
    assert meta == {"shape": [28, 28], "dtype": "|u1", "rows": len(split)}

    df = pytest.importorskip("pandas").read_parquet(path)
    np.testing.assert_array_equal(df["label"].to_numpy(), split.labels)
    first = np.frombuffer(df["image"].iloc[5], np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(first, split.images[5])


@pytest.mark.parametrize(
    ("cid", "groups"),
    [("parquet/rg64", [64, 64, 64, 64, 44]), ("parquet/rgall-snappy", [300]), ("parquet/zstd", [300])],
)
def test_row_groups_are_what_the_id_says(tmp_path, split, cid, groups):
    _, path = write(cid, tmp_path, split)
    md = pq.ParquetFile(path).metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == groups
    expected = {"parquet/rg64": "UNCOMPRESSED", "parquet/rgall-snappy": "SNAPPY"}.get(cid, "ZSTD")
    assert md.row_group(0).column(1).compression == expected


def test_row_group_ids_round_trip():
    assert get_case("parquet/rgall-snappy-checksum").config == {
        "row_group": 0, "compression": "snappy", "checksum": True}
    assert get_case("parquet/rg1048576").case_id == "parquet"  # pyarrow's own default
    with pytest.raises(UnknownNameError, match="rg<N>|rgall"):
        get_case("parquet/rg0")


def test_reads_across_many_row_groups(tmp_path):
    split = make_split(n=300, shape=(4, 3, 2), seed=5, dtype=np.float32)
    case, path = write("parquet/rg32-snappy", tmp_path, split)
    idx = np.array([299, 0, 31, 32, 33, 150, 31, 299, 64, 1])
    with case.open(path) as r:
        images, labels = r.read(idx)
        assert images.flags.writeable and images.dtype == np.float32
        sizes = [len(b[1]) for b in r.scan(50)]
        scanned = np.concatenate([b[0] for b in r.scan(45)])
    np.testing.assert_array_equal(images, split.images[idx])
    np.testing.assert_array_equal(labels, split.labels[idx])
    assert sizes == [50] * 6
    np.testing.assert_array_equal(scanned, split.images)


def _flip_inside_image_page(path):
    """XOR 64 bytes in the middle of the first image data page (past its header)."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)
    mid = chunk.data_page_offset + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    for i in range(mid, mid + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checksum_flag_writes_and_verifies_page_checksums(tmp_path, split):
    plain, plain_path = write("parquet/rg1024", tmp_path / "plain", split)
    summed, summed_path = write("parquet/rg1024-checksum", tmp_path / "summed", split)
    assert summed_path.stat().st_size > plain_path.stat().st_size  # a CRC32 per page header
    for path in (plain_path, summed_path):
        _flip_inside_image_page(path)
    with plain.open(plain_path) as r:  # without checksums the damage reads back silently
        assert not np.array_equal(r.read(np.arange(len(r)))[0], split.images)
    with pytest.raises(FormatError, match="(?i)checksum|crc"):
        with summed.open(summed_path) as r:
            r.read([0])
    assert summed.detects("flipped") and not plain.detects("flipped")
    assert not get_case("parquet/rg1024-zstd").detects("flipped")


def test_parquet_not_written_by_fmtbench_is_a_format_error(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    with pytest.raises(FormatError, match="not an fmtbench parquet file"):
        get_case("parquet").open(path)
