"""Page-cache control and resource counters, without root.

`evict` drops a file's pages with posix_fadvise(DONTNEED) after an fsync (dirty pages cannot be
dropped); `residency` asks mincore(2) which pages of a read-only shared mapping are resident.
Neither needs privileges, and both act only on the files given — never a machine-wide
drop_caches. tmpfs keeps its pages in memory by design: there `evict` cannot drop anything and
`cold` reports residency near 1.0, which is how callers can tell.

`peak_rss_bytes` reads VmHWM from /proc/self/status. VmHWM, like getrusage's ru_maxrss, is a
high-water mark over the life of the process; `reset_peak_rss` writes "5" to
/proc/self/clear_refs (allowed for one's own process without root, Linux >= 4.0), which resets
VmHWM to the current RSS, so a peak can be measured per measurement. Where that is unavailable
the fallback is ru_maxrss: the lifetime peak, an upper bound.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import resource
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

PathArg = str | os.PathLike[str]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MAP_FAILED = ctypes.c_void_p(-1).value
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]


def files(paths: PathArg | Iterable[PathArg]) -> Iterator[Path]:
    """Every regular file named by `paths` (a path or several); folders expand to their files."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for item in items:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        else:
            yield path


def evict(paths: PathArg | Iterable[PathArg]) -> None:
    """Write back, then drop from the page cache, every file under `paths`."""
    for path in files(paths):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _resident_pages(path: Path) -> tuple[int, int]:
    size = path.stat().st_size
    if size == 0:
        return 0, 0
    pages = (size + _PAGE - 1) // _PAGE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, _MAP_FAILED):
            err = ctypes.get_errno()
            raise OSError(err, f"mmap failed: {os.strerror(err)}", str(path))
        try:
            vec = (ctypes.c_ubyte * pages)()
            if _libc.mincore(addr, size, vec) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"mincore failed: {os.strerror(err)}", str(path))
            resident = int(np.count_nonzero(np.frombuffer(vec, dtype=np.uint8) & 1))
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)
    return resident, pages


def residency(paths: PathArg | Iterable[PathArg]) -> float:
    """Fraction of the pages of the files under `paths` that are in the page cache (0.0 if none)."""
    resident = total = 0
    for path in files(paths):
        r, t = _resident_pages(path)
        resident, total = resident + r, total + t
    return resident / total if total else 0.0


def cold(paths: PathArg | Iterable[PathArg]) -> float:
    """Evict the files under `paths`, then return their residency (about 0.0 when eviction worked)."""
    evict(paths)
    return residency(paths)


_WARM_BLOCK = 1 << 20


def warm(paths: PathArg | Iterable[PathArg]) -> float:
    """Put the files under `paths` into one defined warm state and return their residency.

    Evict them, then read each once from start to end with plain read(2) calls. A file's pages
    then entered the page cache the same way whatever wrote or read it before: measured, a file
    just written by its library read 1.3-2x slower from the cache than a byte-identical copy.
    """
    evict(paths)
    buf = bytearray(_WARM_BLOCK)
    for path in files(paths):
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
    return residency(paths)


def io_counters() -> dict[str, int]:
    """This process's I/O counters from /proc/self/io (all threads); {} where unavailable.

    read_bytes/write_bytes count bytes fetched from or sent to storage (a page-cache hit reads
    0); rchar/wchar count bytes passed through read/write system calls, cached or not.
    """
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    keys = ("read_bytes", "write_bytes", "rchar", "wchar")
    return {k: int(fields[k]) for k in keys if k in fields}


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in bytes; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    """Resident memory of this process now (VmRSS), in bytes; None where unavailable."""
    return _status_bytes("VmRSS")


def machine_busy_seconds() -> float | None:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat); None if unknown.

    The difference over an interval, less what one's own processes used, is what the rest of
    the machine used meanwhile.
    """
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is in user)
    return busy / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes() -> int:
    """Peak resident memory of this process since start or the last `reset_peak_rss`, in bytes."""
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
