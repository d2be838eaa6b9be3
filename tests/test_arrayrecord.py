"""ArrayRecord quirks: a plain ArrayRecord file, chunking and codecs follow the id, every byte is checked."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("array_record")
from array_record.python import array_record_data_source, array_record_module  # noqa: E402

from conftest import make_split, write  # noqa: E402
from fmtbench.errors import FormatError, InvalidCaseError  # noqa: E402
from fmtbench.formats import _riegeli, get_case  # noqa: E402


def test_file_opens_with_plain_array_record_and_grain(tmp_path, split):
    _, path = write("arrayrecord", tmp_path, split)
    r = array_record_module.ArrayRecordReader(str(path), "readahead_buffer_size:0")
    assert r.num_records() == len(split) + 1
    meta = json.loads(r.read(0, 1)[0])
    assert meta == {"fmtbench": "arrayrecord", "encoding": "raw", "shape": [28, 28], "dtype": "|u1",
                    "rows": len(split)}
    rec = r.read(7 + 1, 7 + 2)[0]
    assert int.from_bytes(rec[:8], "little", signed=True) == split.labels[7]
    image = np.frombuffer(rec[8:], meta["dtype"]).reshape(meta["shape"])
    np.testing.assert_array_equal(image, split.images[7])
    r.close()
    with array_record_data_source.ArrayRecordDataSource([str(path)]) as source:
        assert len(source) == len(split) + 1
        assert source[42 + 1][8:] == split.images[42].tobytes()


def test_example_records_parse_with_plain_tensorflow(tmp_path, split):
    tf = pytest.importorskip("tensorflow")
    _, path = write("arrayrecord/example", tmp_path, split)
    r = array_record_module.ArrayRecordReader(str(path))
    assert json.loads(r.read(0, 1)[0])["encoding"] == "example"
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    ex = tf.io.parse_single_example(r.read(3, 4)[0], spec)
    image = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), (28, 28)).numpy()
    np.testing.assert_array_equal(image, split.images[2])
    assert int(ex["label"]) == split.labels[2]


@pytest.mark.parametrize(("cid", "options"), [
    ("arrayrecord", "group_size:1,.*zstd:3"),
    ("arrayrecord/zstd9-group64", "group_size:64,.*zstd:9"),
    ("arrayrecord/uncompressed-group7", "group_size:7,.*uncompressed"),
    ("arrayrecord/snappy", "group_size:1,.*snappy"),
])
def test_the_writer_options_follow_the_id(tmp_path, split, cid, options):
    _, path = write(cid, tmp_path, split)
    r = array_record_module.ArrayRecordReader(str(path))
    assert __import__("re").search(options, r.writer_options_string()), r.writer_options_string()


def test_compression_and_chunking_change_the_size(tmp_path):
    split = make_split(n=600)
    sizes = {cid: write(cid, tmp_path / cid.replace("/", "_"), split)[1].stat().st_size
             for cid in ("arrayrecord/uncompressed", "arrayrecord", "arrayrecord/group64")}
    assert sizes["arrayrecord/group64"] < sizes["arrayrecord"] < sizes["arrayrecord/uncompressed"]


def test_a_zstd_level_needs_zstd():
    with pytest.raises(InvalidCaseError, match="zstd level"):
        get_case("arrayrecord/uncompressed-zstd9")
    assert get_case("arrayrecord/zstd3-group1").case_id == "arrayrecord"


@pytest.mark.parametrize("cid", ["arrayrecord/group7", "arrayrecord/group7-example", "arrayrecord/example"])
def test_reads_across_chunks_with_duplicates(tmp_path, cid):
    split = make_split(n=300, shape=(4, 3, 2), seed=5, dtype=np.float32)
    case, path = write(cid, tmp_path, split)
    idx = np.array([299, 0, 6, 7, 8, 150, 6, 299, 13, 14, 1] * 13)  # over 128: parse_example
    with case.open(path) as r:
        images, labels = r.read(idx)
        one = r.read([6])
        sizes = [len(b[1]) for b in r.scan(128)]
    np.testing.assert_array_equal(images, split.images[idx])
    np.testing.assert_array_equal(labels, split.labels[idx])
    np.testing.assert_array_equal(one[0], split.images[[6]])
    assert sizes == [128, 128, 44]


def test_highwayhash_matches_riegeli():
    sig = _riegeli._SIGNATURE
    for hashed, rest in ((sig[0:8], sig[8:24]), (sig[24:32], sig[32:64])):
        assert _riegeli._highwayhash(rest) == int.from_bytes(hashed, "little")
    assert _riegeli._highwayhash(b"") == int.from_bytes(sig[40:48], "little")  # empty data


def test_every_chunk_hash_in_a_file_is_what_our_highwayhash_computes(tmp_path):
    """Chunk data of many lengths: the hash's remainder paths (n % 32 in 1..31)."""
    path = tmp_path / "x.array_record"
    w = array_record_module.ArrayRecordWriter(str(path), "group_size:1,uncompressed")
    for n in range(70):
        w.write(bytes(range(n)))
    w.close()
    data, pos, checked = path.read_bytes(), 64, 0
    while pos < 4000:
        header_hash, size, data_hash = struct.unpack_from("<QQQ", data, pos)
        assert _riegeli._highwayhash(data[pos + 8:pos + 40]) == header_hash
        assert _riegeli._highwayhash(data[pos + 40:pos + 40 + size]) == data_hash
        pos, checked = _riegeli._chunk_end(pos, size, data[pos + 25]), checked + 1
    assert checked > 30


@pytest.mark.parametrize("where", ["signature", "padding before the postscript", "padding at the end"])
def test_bytes_the_library_never_reads_are_checked_at_open(tmp_path, split, where):
    case, path = write("arrayrecord", tmp_path, split)
    data = bytearray(path.read_bytes())
    post = len(data) - (1 << 16)
    offset = {"signature": 10, "padding before the postscript": post - 100,
              "padding at the end": len(data) - 5}
    data[offset[where]] ^= 0x01
    path.write_bytes(bytes(data))
    r = array_record_module.ArrayRecordReader(str(path), "readahead_buffer_size:0")
    assert len(r.read_all()) == len(split) + 1  # ArrayRecord itself reads the file unchanged
    with pytest.raises(FormatError, match="slack"):
        case.open(path)


def test_array_record_not_written_by_fmtbench_is_a_format_error(tmp_path):
    path = tmp_path / "other.array_record"
    w = array_record_module.ArrayRecordWriter(str(path), "group_size:1")
    for record in (b"hello", b"world"):
        w.write(record)
    w.close()
    with pytest.raises(FormatError, match="not an fmtbench ArrayRecord file"):
        get_case("arrayrecord").open(path)
