"""TFRecord with TensorFlow and plain Python file reads: a record index, then ``pread`` + parse.

TensorFlow has no random access to a TFRecord file that Python can use at pread cost (its
random record reader fills a 16 MiB read-ahead buffer per record), so an expert indexes the
file once: at open, one sequential pass over the framing (uint64 length, its crc, data, the
data's crc) records each record's data offset and length (``struct``; GZIP files are inflated
with ``zlib`` and keep a copy of the inflater every 1 MiB of output, zran style). ``read``:
one ``os.pread`` per record (GZIP: sorted unique records, each checkpoint inflated once), then
``tf.train.Example.FromString`` under 128 records and ``tf.io.parse_example`` +
``decode_raw`` from there; GZIP reads restore the order asked with one gather. Like other
readers of plain file reads (Grain's TFRecord dataset reads length and data and leaves both
crcs unchecked) it does not verify the records' crc32c on random reads. ``scan``: ``TFRecordDataset -> batch ->
map(parse_example, decode_raw) -> prefetch``, which checks every crc itself.
"""
from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 16
_SPACING = 1 << 20
_BATCH_PARSE = 128


class Reference:
    def __init__(self, path: Path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        import numpy as np
        import tensorflow as tf

        self._np, self._tf, self._path = np, tf, str(path)
        self._fh = open(path, "rb")
        self._gzip = self._fh.read(2) == b"\x1f\x8b"
        self._fh.seek(0)
        self._spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
        z = zlib.decompressobj(31) if self._gzip else None
        self._checkpoints = [(0, 0, z.copy())] if z else []
        offsets, lengths, buf, base, cin, cout = [], [], bytearray(), 0, 0, 0
        while chunk := self._fh.read(_CHUNK):
            data = z.decompress(chunk) if z else chunk
            cin, cout = cin + len(chunk) - (len(z.unused_data) if z else 0), cout + len(data)
            buf += data
            pos = 0
            while len(buf) - pos >= 12:
                (n,) = struct.unpack_from("<Q", buf, pos)
                if len(buf) - pos < n + 16:
                    break
                offsets.append(base + pos + 12)
                lengths.append(n)
                pos += n + 16
            del buf[:pos]
            base += pos
            if z and not z.eof and cout - self._checkpoints[-1][1] >= _SPACING:
                self._checkpoints.append((cin, cout, z.copy()))
        self._offsets, self._lengths = np.array(offsets, np.int64), np.array(lengths, np.int64)
        self._marks = np.array([c[1] for c in self._checkpoints], np.int64)
        first = tf.train.Example.FromString(self._records(np.array([0]))[0]).features.feature
        self._shape = tuple(first["shape"].int64_list.value)
        self._dtype = np.dtype(first["dtype"].bytes_list.value[0].decode())

    def _records(self, rows) -> list[bytes]:
        starts, lengths = self._offsets[rows].tolist(), self._lengths[rows].tolist()
        if not self._gzip:
            fd = self._fh.fileno()
            return [os.pread(fd, n, s) for s, n in zip(starts, lengths)]
        which = (self._np.searchsorted(self._marks, self._offsets[rows], side="right") - 1).tolist()
        out, k = [], 0
        while k < len(rows):  # rows sorted: one inflate per checkpoint touched
            j = k
            while j < len(rows) and which[j] == which[k]:
                j += 1
            cin, cout, z = self._checkpoints[which[k]]
            z, need, parts = z.copy(), starts[j - 1] + lengths[j - 1] - cout, []
            self._fh.seek(cin)
            while need > 0:
                chunk = self._fh.read(_CHUNK)
                if not chunk:
                    raise EOFError(f"{self._path}: the gzip stream ends early")
                parts.append(z.decompress(chunk, need))
                need -= len(parts[-1])
            data = b"".join(parts)
            out.extend(data[s - cout:s - cout + n] for s, n in zip(starts[k:j], lengths[k:j]))
            k = j
        return out

    def _parse(self, records):
        np, tf = self._np, self._tf
        n = len(records)
        if n >= _BATCH_PARSE:
            ex = tf.io.parse_example(records, self._spec)
            raw, labels = tf.io.decode_raw(ex["image"], tf.uint8).numpy(), ex["label"].numpy()
        else:
            feats = [tf.train.Example.FromString(r).features.feature for r in records]
            raw = np.frombuffer(b"".join([f["image"].bytes_list.value[0] for f in feats]), np.uint8)
            labels = np.array([f["label"].int64_list.value[0] for f in feats], np.int64)
        return raw.view(self._dtype).reshape(n, *self._shape), labels

    def read(self, indices):
        if not self._gzip:
            if len(indices) == 1:  # one record: one pread, one parse
                i = int(indices[0])
                feature = self._tf.train.Example.FromString(
                    os.pread(self._fh.fileno(), self._lengths.item(i), self._offsets.item(i))).features.feature
                image = self._np.frombuffer(feature["image"].bytes_list.value[0], self._dtype)
                return image.reshape(1, *self._shape), self._np.array([feature["label"].int64_list.value[0]], self._np.int64)
            return self._parse(self._records(indices))
        rows, inverse = self._np.unique(indices, return_inverse=True)
        images, labels = self._parse(self._records(rows))
        return images[inverse], labels[inverse]

    def scan(self, batch_size: int) -> Iterator:
        tf = self._tf
        spec = self._spec

        @tf.autograph.experimental.do_not_convert
        def decode(batch):
            ex = tf.io.parse_example(batch, spec)
            return tf.io.decode_raw(ex["image"], tf.uint8), ex["label"]

        ds = tf.data.TFRecordDataset(self._path, compression_type="GZIP" if self._gzip else "")
        ds = ds.batch(batch_size).map(decode).prefetch(tf.data.AUTOTUNE)
        for raw, labels in ds.as_numpy_iterator():
            yield raw.reshape(-1).view(self._dtype).reshape(len(labels), *self._shape), labels

    def close(self) -> None:
        self._fh.close()
