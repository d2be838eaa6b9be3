"""Arrow IPC quirks: plain pyarrow and Feather open it, batches and codecs follow the id, the
reference reader agrees, and uncompressed reads come out of the map as copies."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
feather = pytest.importorskip("pyarrow.feather")

from conftest import make_split, write, reference_class  # noqa: E402
from fmtbench.errors import FormatError  # noqa: E402
from fmtbench.formats import get_case  # noqa: E402


Reference = reference_class("arrow")

LZ4_FRAME, ZSTD_FRAME = b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd"  # the frames' magic numbers


def test_naming_cases_does_not_import_pyarrow():
    code = ("import sys; from fmtbench.formats import adapter_class as a; "
            "[a('arrow')(g).case_id for g in a('arrow').grid]; print('pyarrow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


@pytest.mark.parametrize("cid", ["arrow", "arrow/rb64-zstd"])
def test_file_opens_with_plain_pyarrow_and_feather(tmp_path, split, cid):
    _, path = write(cid, tmp_path, split)
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    assert table.column_names == ["label", "image"]
    assert table.schema.field("image").type == pa.binary(28 * 28)
    assert not table.schema.field("image").nullable and table.schema.field("label").type == pa.int64()
    meta = json.loads(table.schema.metadata[b"fmtbench"])
    assert meta["shape"] == [28, 28] and meta["dtype"] == "|u1" and meta["rows"] == len(split)
    images = np.frombuffer(table["image"].combine_chunks().buffers()[1], meta["dtype"])
    np.testing.assert_array_equal(images.reshape(-1, *meta["shape"]), split.images)
    np.testing.assert_array_equal(table["label"].to_numpy(), split.labels)
    assert feather.read_table(path).equals(table)


@pytest.mark.parametrize(("cid", "batches", "magic"), [
    ("arrow", [300], None),
    ("arrow/rb64", [64, 64, 64, 64, 44], None),
    ("arrow/rb64-lz4", [64, 64, 64, 64, 44], LZ4_FRAME),
    ("arrow/zstd", [300], ZSTD_FRAME),
])
def test_batches_and_codec_are_what_the_id_says(tmp_path, split, cid, batches, magic):
    _, path = write(cid, tmp_path, split)
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    assert [reader.get_batch(b).num_rows for b in range(reader.num_record_batches)] == batches
    data = path.read_bytes()
    for frame in (LZ4_FRAME, ZSTD_FRAME):
        assert (frame in data) == (frame == magic), (cid, frame)
    if magic is None:
        assert len(data) > split.images.nbytes


@pytest.mark.parametrize("cid", ["arrow/rb64-lz4", "arrow/rb64-zstd"])
def test_compressed_frames_carry_no_checksum(tmp_path, split, cid):
    """Why no flip detection is claimed: LZ4 frame FLG bits 4 (block) and 2 (content checksum)
    and the zstd frame header's bit 2 (content checksum) are off in every frame."""
    _, path = write(cid, tmp_path, split)
    data = path.read_bytes()
    magic = LZ4_FRAME if cid.endswith("lz4") else ZSTD_FRAME
    flags = [data[p + 4] for p in range(len(data)) if data.startswith(magic, p)]
    assert len(flags) == 10  # a label and an image buffer in each of 5 batches
    assert all(f & 0b100 == 0 for f in flags)
    if magic == LZ4_FRAME:
        assert all(f & 0b10000 == 0 for f in flags)
    assert not get_case(cid).detects("flipped")


def test_ids_round_trip():
    assert get_case("arrow/rb1024-lz4").config == {"batch_rows": 1024, "compression": "lz4"}
    assert get_case("arrow/rb65536").case_id == "arrow"  # Feather's default batch size


@pytest.mark.parametrize("cid", ["arrow", "arrow/rb32", "arrow/rb32-lz4", "arrow/zstd"])
def test_reference_reads_what_the_adapter_reads(tmp_path, cid):
    split = make_split(n=300, shape=(4, 3, 2), seed=5, dtype=np.float32)
    case, path = write(cid, tmp_path, split)
    idx = np.random.default_rng(1).choice(len(split), 90)
    ref = Reference(path)
    try:
        with case.open(path) as r:
            for asked in (idx, idx[:1], np.array([299, 0, 31, 32, 33])):
                for mine, theirs in zip(r.read(asked), ref.read(asked)):
                    assert mine.dtype == theirs.dtype
                    np.testing.assert_array_equal(mine, theirs)
            for batch_size in (50, 64):
                mine = list(r.scan(batch_size))
                theirs = list(ref.scan(batch_size))
                assert [len(b[1]) for b in mine] == [len(b[1]) for b in theirs]
                for a, b in zip(mine, theirs):
                    np.testing.assert_array_equal(a[0], b[0])
                    np.testing.assert_array_equal(a[1], b[1])
    finally:
        ref.close()
    np.testing.assert_array_equal(np.concatenate([b[0] for b in mine]), split.images)


def test_uncompressed_reads_are_copies_out_of_the_map(tmp_path, split):
    """Rows are gathered from the memory map into new arrays: they stay valid after the reader
    closes, can be written, and scans touch (copy) every byte rather than hand out views."""
    case, path = write("arrow/rb64", tmp_path, split)
    with case.open(path) as r:
        images, labels = r.read([299, 3, 64, 63])
        scanned = list(r.scan(100))
    assert images.flags.writeable and labels.flags.writeable
    assert all(b[0].flags.writeable and b[1].flags.writeable for b in scanned)  # map views are not
    np.testing.assert_array_equal(images, split.images[[299, 3, 64, 63]])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in scanned]), split.images)


def test_arrow_not_written_by_fmtbench_is_a_format_error(tmp_path):
    path = tmp_path / "other.arrow"
    feather.write_feather(pa.table({"x": [1, 2, 3]}), path)
    with pytest.raises(FormatError, match="not an fmtbench arrow file"):
        get_case("arrow").open(path)


def test_batches_that_disagree_with_the_metadata_are_a_format_error(tmp_path, split):
    _, path = write("arrow/rb64", tmp_path, split)
    table = feather.read_table(path)
    meta = json.loads(table.schema.metadata[b"fmtbench"])
    lying = table.replace_schema_metadata({b"fmtbench": json.dumps({**meta, "batch_rows": 100})})
    feather.write_feather(lying, path, compression="uncompressed", chunksize=64)
    with pytest.raises(FormatError, match="do not match the metadata"):
        get_case("arrow/rb64").open(path)


def test_empty_split_round_trips(tmp_path):
    for cid in ("arrow", "arrow/rb64-zstd"):
        case, path = write(cid, tmp_path / cid.replace("/", "_"), make_split(n=0))
        with case.open(path) as r:
            assert len(r) == 0 and list(r.scan(8)) == []
            assert r.read([])[0].shape == (0, 28, 28)
