"""Where a run happened: machine, OS, filesystem, Python, library versions and the fmtbench commit.

Library versions come from package metadata, so nothing heavy is imported (tensorflow never
is); h5py is imported for the HDF5 library version and its chunk-cache defaults. Anything
missing is None, never an error.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import fmtbench

# distribution names to try, in order, for each library reported
_DISTRIBUTIONS = {
    "numpy": ("numpy",),
    "h5py": ("h5py",),
    "hdf5plugin": ("hdf5plugin",),
    "pyarrow": ("pyarrow",),
    "pandas": ("pandas",),
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tensorflow-intel", "tf-nightly"),
    "keras": ("keras",),
}


def _version(*distributions: str) -> str | None:
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.split(":", 1)[0].strip() in ("model name", "Processor", "cpu model"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def memory_total_bytes() -> int | None:
    """Physical memory of the machine in bytes."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def filesystem(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """Mount point, filesystem type and device holding `path` (longest match in /proc/mounts)."""
    target = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) >= len(best[0])):
            best = (mount, fstype, device)
    if best is None:
        return None
    return {"path": target, "mount_point": best[0], "fstype": best[1], "device": best[2]}


def hdf5_info() -> dict[str, Any]:
    """The HDF5 library version and h5py's default chunk-cache settings (None if no h5py)."""
    try:
        import h5py
    except ImportError:
        return {"version": None, "chunk_cache": None}
    mdc, nslots, nbytes, w0 = h5py.h5p.create(h5py.h5p.FILE_ACCESS).get_cache()
    return {"version": h5py.version.hdf5_version,
            "chunk_cache": {"mdc_nelmts": mdc, "rdcc_nslots": nslots, "rdcc_nbytes": nbytes,
                            "rdcc_w0": w0}}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any] | None:
    """Commit and dirty flag of the fmtbench checkout; None when fmtbench is not a tracked checkout."""
    folder = Path(fmtbench.__file__).resolve().parent
    # A wheel installed in a venv inside some checkout is not that checkout: require tracking.
    if _git(folder, "ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = _git(folder, "rev-parse", "HEAD")
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def collect(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything a reader needs to know where and with what a run was made."""
    hdf5 = hdf5_info()
    libraries = {name: _version(*dists) for name, dists in _DISTRIBUTIONS.items()}
    libraries["hdf5"] = hdf5["version"]
    libraries["sqlite"] = sqlite3.sqlite_version
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_bytes": memory_total_bytes(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "filesystem": None if data_dir is None else filesystem(data_dir),
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation()},
        "libraries": libraries,
        "hdf5_chunk_cache": hdf5["chunk_cache"],
        "git": git_state(),
        "fmtbench_version": fmtbench.__version__,
    }
