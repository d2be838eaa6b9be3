"""Riegeli's slack: the bytes of an ArrayRecord file that ArrayRecord itself never reads.

ArrayRecord checks the HighwayHash of every chunk it reads, but not the file's 64-byte
signature nor the padding chunks the writer puts before and after the postscript (64-128 KiB
of zeros: most of a small file). `check_slack` checks those, so that a flip anywhere in the
file is a FormatError (see formats/arrayrecord.py). Layout from the Riegeli/records format
(riegeli/doc/riegeli_records_file_format.md); the small pure-Python HighwayHash-64 below is
checked against the hashes in real files by tests/test_arrayrecord.py.
"""
from __future__ import annotations

import os
from pathlib import Path

# Riegeli/records format (riegeli/doc/riegeli_records_file_format.md): 64 KiB blocks, each
# starting with a 24-byte block header; chunks with a 40-byte header; hashes are HighwayHash-64
# keyed with 'Riegeli/records\n' twice.

_BLOCK, _BLOCK_HEADER, _CHUNK_HEADER = 1 << 16, 24, 40
_USABLE = _BLOCK - _BLOCK_HEADER
_SIGNATURE = bytes.fromhex(  # the fixed first 64 bytes of every Riegeli/records file
    "83af70d10d884a3f00000000000000004000000000000000"
    "91bac23c9287e1a90000000000000000e19f13c0e9b1c372" "73" + "00" * 15)
_PADDING = 0x70  # chunk type 'p'
_M64, _M32 = (1 << 64) - 1, 0xFFFFFFFF
_HH_INIT0 = (0xDBE6D5D5FE4CCE2F, 0xA4093822299F31D0, 0x13198A2E03707344, 0x243F6A8885A308D3)
_HH_INIT1 = (0x3BD39E10CB0EF593, 0xC0ACF169B5F18A8C, 0xBE5466CF34E90C6C, 0x452821E638D01377)
_HH_KEY = (0x2F696C6567656952, 0x0A7364726F636572) * 2


def _zipper(hi: int, lo: int) -> tuple[int, int]:
    """HighwayHash's ZipperMergeAndAdd: the (add to hi, add to lo) lanes."""
    add_lo = ((((lo & 0xFF000000) | (hi & 0xFF00000000)) >> 24)
              | (((lo & 0xFF0000000000) | (hi & 0xFF000000000000)) >> 16)
              | (lo & 0xFF0000) | ((lo & 0xFF00) << 32) | ((hi & 0xFF00000000000000) >> 8)
              | (lo << 56)) & _M64
    add_hi = ((((hi & 0xFF000000) | (lo & 0xFF00000000)) >> 24) | (hi & 0xFF0000)
              | ((hi & 0xFF0000000000) >> 16) | ((hi & 0xFF00) << 24)
              | ((lo & 0xFF000000000000) >> 8) | ((hi & 0xFF) << 48)
              | (lo & 0xFF00000000000000)) & _M64
    return add_hi, add_lo


def _highwayhash(data: bytes) -> int:
    """Riegeli's 64-bit HighwayHash of `data`, in plain Python (for a few 16-32 byte headers;
    checked against the hashes in the fixed signature and in real files)."""
    mul0, mul1 = list(_HH_INIT0), list(_HH_INIT1)
    v0 = [i ^ k for i, k in zip(_HH_INIT0, _HH_KEY)]
    v1 = [i ^ (((k >> 32) | (k << 32)) & _M64) for i, k in zip(_HH_INIT1, _HH_KEY)]

    def update(lanes: list[int]) -> None:
        for i in range(4):
            v1[i] = (v1[i] + mul0[i] + lanes[i]) & _M64
            mul0[i] ^= (v1[i] & _M32) * (v0[i] >> 32)
            v0[i] = (v0[i] + mul1[i]) & _M64
            mul1[i] ^= (v0[i] & _M32) * (v1[i] >> 32)
        for src, dst in ((v1, v0), (v0, v1)):
            for hi, lo in ((1, 0), (3, 2)):
                add_hi, add_lo = _zipper(src[hi], src[lo])
                dst[hi], dst[lo] = (dst[hi] + add_hi) & _M64, (dst[lo] + add_lo) & _M64

    def lanes(packet: bytes) -> list[int]:
        return [int.from_bytes(packet[i:i + 8], "little") for i in range(0, 32, 8)]

    full = len(data) & ~31
    for start in range(0, full, 32):
        update(lanes(data[start:start + 32]))
    n = len(data) & 31
    if n:
        for i in range(4):
            v0[i] = (v0[i] + (n << 32) + n) & _M64

        def rot(x: int) -> int:
            return ((x << n) | (x >> (32 - n))) & _M32

        v1[:] = [rot(x & _M32) | (rot(x >> 32) << 32) for x in v1]
        rest, mod4 = data[full:], n & 3
        packet = bytearray(32)
        packet[: n & ~3] = rest[: n & ~3]
        if n & 16:
            packet[28:32] = rest[(n & ~3) + mod4 - 4:(n & ~3) + mod4]
        elif mod4:
            tail = rest[n & ~3:]
            packet[16:19] = bytes((tail[0], tail[mod4 >> 1], tail[mod4 - 1]))
        update(lanes(bytes(packet)))
    for _ in range(4):
        swap = [((x >> 32) | (x << 32)) & _M64 for x in v0]
        update([swap[2], swap[3], swap[0], swap[1]])
    return (v0[0] + v1[0] + mul0[0] + mul1[0]) & _M64


def _chunk_end(begin: int, data_size: int, num_records: int) -> int:
    """Where a chunk starting at `begin` ends (the format spec's formula)."""
    size = _CHUNK_HEADER + data_size
    overhead = (size + (begin + _USABLE - 1) % _BLOCK) // _USABLE
    remaining = _BLOCK - 1 - (begin + num_records + _BLOCK - 1) % _BLOCK
    return max(begin + size + overhead * _BLOCK_HEADER,
               begin + num_records + max(remaining - (_USABLE - 1), 0))


def _without_block_headers(raw: bytes, begin: int) -> tuple[bytes, list[int]]:
    """The bytes of the chunk at file offset `begin` without the block headers that
    interrupt it, and the offsets of those headers."""
    parts, headers, pos, i = [], [], begin, 0
    while i < len(raw):
        if pos % _BLOCK == 0:
            headers.append(pos)
            i, pos = i + _BLOCK_HEADER, pos + _BLOCK_HEADER
            continue
        take = min(_BLOCK - pos % _BLOCK, len(raw) - i)
        parts.append(raw[i:i + take])
        i, pos = i + take, pos + take
    return b"".join(parts), headers


def _chunk_header(fd: int, begin: int) -> tuple[int, int, int]:
    """(data_size, chunk type, num_records) of the chunk at `begin` (hash checked by the reader)."""
    logical, _ = _without_block_headers(os.pread(fd, _CHUNK_HEADER + 2 * _BLOCK_HEADER, begin), begin)
    if len(logical) < _CHUNK_HEADER:
        raise ValueError(f"the chunk header at {begin} is cut off")
    data_size, kind = int.from_bytes(logical[8:16], "little"), int.from_bytes(logical[24:32], "little")
    return data_size, kind & 0xFF, kind >> 8


def _check_padding(fd: int, begin: int, end: int) -> None:
    """The padding chunk that fills [begin, end): hashes, type, size, zero data."""
    raw = os.pread(fd, end - begin, begin)
    logical, headers = _without_block_headers(raw, begin)
    for block in headers:  # block headers inside the padding: the reader never reads them
        head = raw[block - begin:block - begin + _BLOCK_HEADER]
        prev, nxt = int.from_bytes(head[8:16], "little"), int.from_bytes(head[16:24], "little")
        hashed = _highwayhash(head[8:]) == int.from_bytes(head[:8], "little")
        if not hashed or (prev, nxt) != (block - begin, end - block):
            raise ValueError(f"the block header at {block} is corrupt")
    header, data = logical[:_CHUNK_HEADER], logical[_CHUNK_HEADER:]
    if len(header) < _CHUNK_HEADER or _highwayhash(header[8:]) != int.from_bytes(header[:8], "little"):
        raise ValueError(f"the padding chunk header at {begin} fails its hash")
    fields = [int.from_bytes(header[i:i + 8], "little") for i in (8, 24, 32)]
    if fields != [len(data), _PADDING, 0] or data != bytes(len(data)):
        raise ValueError(f"the padding chunk at {begin} is corrupt")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def check_slack(path: Path) -> None:
    """Check the bytes ArrayRecord never reads: the signature and the padding chunks before
    and after the postscript (whose own hashes the reader has checked at open)."""
    with open(path, "rb") as fh:
        fd, size = fh.fileno(), os.fstat(fh.fileno()).st_size
        if size % _BLOCK or size < 2 * _BLOCK or os.pread(fd, len(_SIGNATURE), 0) != _SIGNATURE:
            raise ValueError("not a Riegeli file written by ArrayRecord (signature or size)")
        post = size - _BLOCK  # the postscript chunk begins at the last block
        data_size, _, records = _chunk_header(fd, post)
        data = os.pread(fd, data_size, post + _BLOCK_HEADER + _CHUNK_HEADER)
        if data[:1] != b"\0":
            raise ValueError("the postscript is compressed: cannot check it")
        sizes_size, pos = _varint(data, 1)
        first, _ = _varint(data, pos)
        record = data[pos + sizes_size:pos + sizes_size + first]
        if record[:1] != b"\x08":  # field 1 of RiegeliPostscript, varint: footer_offset
            raise ValueError("the postscript has no footer offset")
        footer, _ = _varint(record, 1)
        footer_end = _chunk_end(footer, *_chunk_header(fd, footer)[::2])
        if footer_end > post:
            raise ValueError(f"the footer runs into the postscript ({footer_end} > {post})")
        for begin, end in ((footer_end, post), (_chunk_end(post, data_size, records), size)):
            if begin < end:
                _check_padding(fd, begin, end)
