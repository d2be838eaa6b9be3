"""TFRecord quirks: plain-TF decoding with the documented spec, real GZIP, the record index."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_split, write
from fmtbench.errors import FormatError
from fmtbench.formats import get_case


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def record_starts(data: bytes) -> list[int]:
    """Byte offsets of every record's frame (length, crc, data, crc)."""
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        pos += 16 + struct.unpack_from("<Q", data, pos)[0]
    return starts


def test_listing_cases_does_not_import_tensorflow():
    code = "import sys, fmtbench.formats as f; f.cases(['tfrecord']); print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


@pytest.mark.parametrize("cid", ["tfrecord", "tfrecord/gzip"])
def test_records_parse_with_plain_tensorflow_and_the_documented_spec(tmp_path, cid, tf):
    split = make_split(n=40, shape=(6, 5, 3), seed=2)
    _, path = write(cid, tmp_path, split)
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "dtype": tf.io.FixedLenFeature([], tf.string),
    }
    compression = "GZIP" if cid.endswith("gzip") else ""
    records = list(tf.data.TFRecordDataset(str(path), compression_type=compression))
    assert len(records) == len(split)
    for i in (0, 1, 39):
        ex = tf.io.parse_single_example(records[i], spec)
        image = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), ex["shape"]).numpy()
        np.testing.assert_array_equal(image, split.images[i])
        assert ex["label"].numpy() == split.labels[i] and ex["dtype"].numpy() == b"|u1"
    first, second = (tf.train.Example.FromString(r.numpy()).features.feature for r in records[:2])
    assert list(first["count"].int64_list.value) == [40] and "count" not in second  # record 0 only


def test_gzip_case_is_one_gzip_stream_of_the_plain_bytes(tmp_path, split):
    _, plain = write("tfrecord", tmp_path, split)
    _, packed = write("tfrecord/gzip", tmp_path, split)
    data = packed.read_bytes()
    assert data[:2] == b"\x1f\x8b" and len(data) < plain.stat().st_size
    assert gzip.decompress(data) == plain.read_bytes()


def test_index_cost_is_reported(tmp_path, split):
    for cid in ("tfrecord", "tfrecord/gzip"):
        case, path = write(cid, tmp_path, split)
        with case.open(path) as r:
            assert r.index_seconds > 0
            inflaters = 40 * 1024 if cid.endswith("gzip") else 0  # one checkpoint: 300 records < 1 MiB
            assert r.index_bytes == len(split) * (8 + 8 + 4) + inflaters  # offset, length, crc32c


def test_gzip_reads_across_many_checkpoints(tmp_path, split, monkeypatch):
    from fmtbench.formats import tfrecord

    monkeypatch.setattr(tfrecord, "_CHUNK", 512)  # checkpoints fall between compressed chunks
    monkeypatch.setattr(tfrecord, "_SPACING", 3000)  # about every 3 records: batches span many
    case, path = write("tfrecord/gzip", tmp_path, split)
    idx = np.random.default_rng(5).choice(len(split), 200)  # unsorted, duplicates, > _BATCH_PARSE
    with case.open(path) as r:
        assert len(r._checkpoints) > 50
        for chosen in (idx, idx[:9], [len(split) - 1], [0]):
            images, labels = r.read(chosen)
            np.testing.assert_array_equal(images, split.images[chosen])
            np.testing.assert_array_equal(labels, split.labels[chosen])


def test_plain_file_cut_at_a_record_boundary_is_caught_by_the_count(tmp_path, split):
    case, path = write("tfrecord", tmp_path, split)
    data = path.read_bytes()
    path.write_bytes(data[: record_starts(data)[10]])  # exactly ten whole records
    with pytest.raises(FormatError, match="10 records of .* the first says 300"):
        case.open(path)


def test_scan_and_read_both_check_record_crcs(tmp_path, split):
    case, path = write("tfrecord", tmp_path, split)
    data = bytearray(path.read_bytes())
    data[record_starts(data)[5] + 500] ^= 0x01  # one bit inside the image of record 5
    path.write_bytes(bytes(data))
    with case.open(path) as r:
        with pytest.raises(FormatError, match="record 5 fails its crc32c"):
            r.read([5])
        with pytest.raises(FormatError, match="record 5 fails its crc32c"):
            r.read(np.arange(len(r)))  # the batch path (tf.io.parse_example) too
        np.testing.assert_array_equal(r.read([4, 6])[0], split.images[[4, 6]])  # the others read
        with pytest.raises(FormatError, match="DataLossError"):
            list(r.scan(64))
    assert case.detects("flipped") and get_case("tfrecord/gzip").detects("flipped")


@pytest.mark.parametrize("where, message", [
    (8, "the length of record 7 fails its crc32c"),  # the length's crc: checked at open
    (-1, "record 7 fails its crc32c"),  # the data's crc: checked on read
])
def test_both_crcs_of_a_record_are_checked(tmp_path, split, where, message):
    case, path = write("tfrecord", tmp_path, split)
    data = bytearray(path.read_bytes())
    starts = record_starts(data)
    data[starts[7] + where if where >= 0 else starts[8] + where] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=message):
        with case.open(path) as r:
            r.read([7])


def test_gzip_reads_check_record_crcs_too(tmp_path, split):
    """A well-formed gzip stream of a record with a wrong crc32c: only the record check sees it."""
    _, plain = write("tfrecord", tmp_path, split)
    data = bytearray(plain.read_bytes())
    data[record_starts(data)[9] + 300] ^= 0x10
    path = tmp_path / "repacked.tfrecord"
    path.write_bytes(gzip.compress(bytes(data)))
    with get_case("tfrecord/gzip").open(path) as r:
        np.testing.assert_array_equal(r.read([8, 10])[0], split.images[[8, 10]])
        with pytest.raises(FormatError, match="record 9 fails its crc32c"):
            r.read([9])


def test_crc32c_matches_a_plain_byte_loop():
    from fmtbench.formats import _crc32c

    assert _crc32c.crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C
    table = []
    for byte in range(256):  # the reflected CRC-32C table, from the polynomial
        for _ in range(8):
            byte = (byte >> 1) ^ 0x82F63B78 if byte & 1 else byte >> 1
        table.append(byte)

    def loop(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for b in data:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF

    rng = np.random.default_rng(3)
    frames = []
    for n in (1, 3, 4, 8, 100, 1023, 1024, 1025, 3000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert _crc32c.crc32c(data) == loop(data), n
        frames.append(data + struct.pack("<I", _crc32c.masked(loop(data))))
    assert _crc32c.bad_frames(frames) == [] and _crc32c.bad_frames(frames[4:5] * 3) == []
    broken = [f[:-5] + bytes([f[-5] ^ 1]) + f[-4:] for f in frames]
    assert _crc32c.bad_frames(broken) == list(range(len(frames)))
    assert [_crc32c.frame_ok(f) for f in broken + frames[:1]] == [False] * len(frames) + [True]
    assert _crc32c.bad_frames([b"", b"abcd", frames[0]]) == [0, 1]
    # the index unmasks every stored crc at once: the byte loop's values, back from the frames
    stored = b"".join(f[-4:] for f in frames)
    assert _crc32c.unmasked(stored).tolist() == [loop(f[:-4]) for f in frames]


def test_other_dtypes_round_trip(tmp_path):
    split = make_split(n=30, shape=(4, 3), seed=1, dtype=np.float32)
    case, path = write("tfrecord", tmp_path, split)
    with case.open(path) as r:
        np.testing.assert_array_equal(r.read(np.arange(30))[0], split.images)
        assert r.image_dtype == np.float32


def test_empty_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        write("tfrecord", tmp_path, make_split(n=0))


def test_the_same_data_writes_the_same_bytes_in_every_process(tmp_path, tf):
    """tf.train.Example holds its features in a protobuf map, whose order follows the process's
    string hashing unless serialized deterministically: then gzip sizes varied run to run."""
    code = ("import sys; from fmtbench.datasets import load; from fmtbench.formats import get_case; "
            "get_case('tfrecord/gzip').write(load('synthetic', n=50, seed=3).train, sys.argv[1])")
    digests = set()
    for hashseed in ("1", "2"):
        out = tmp_path / f"seed{hashseed}.tfrecord"
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env, timeout=120)
        digests.add(out.read_bytes())
    assert len(digests) == 1
