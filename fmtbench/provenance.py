"""Where a run happened: machine, OS, filesystem, Python, library versions and the fmtbench code.

Library versions come from package metadata, so nothing heavy is imported (tensorflow never
is); h5py is imported for the HDF5 library version and its chunk-cache defaults. Anything
missing is None, never an error. The libraries are the core ones (numpy, h5py, pyarrow,
TensorFlow, ...), dask and distributed, and every registered format's: the distributions of its
adapter's `requires` (a plugin's included, with the plugin's own distribution) and what those
directly require, so zarr brings numcodecs and google-crc32c (`format_libraries`).

`code_fingerprint()` names the code that measured: the package version and the git commit (with
"+dirty" when tracked files of the package differ from it), or, outside a checkout, a hash of
the installed package's files. The results store stamps every record with it (`code`), so a
resumed run never counts units of other code as done, and a report never merges them.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import re
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
    # the --cluster executor (fmtbench.cluster): recorded whether or not this run used it
    "dask": ("dask",),
    "distributed": ("distributed",),
}
# the fmtbench packages: the code a fingerprint covers (formats/, workloads/... install under fmtbench)
_PACKAGES = ("fmtbench", "fmtbench.formats", "fmtbench.datasets", "fmtbench.workloads", "fmtbench.reports")


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


def _package_dirs() -> list[Path]:
    """The folders of fmtbench's packages (the checkout's formats/, workloads/... when editable)."""
    dirs = []
    for name in _PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if Path(loc).resolve() not in dirs:
                dirs.append(Path(loc).resolve())
    return dirs


def _files_hash(dirs: list[Path]) -> str:
    """A hash of every file under `dirs` (paths and bytes; caches left out)."""
    h = hashlib.sha256()
    for root in dirs:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                           and p.suffix not in (".pyc", ".pyo")):
            h.update(f"{root.name}/{path.relative_to(root)}\0".encode())
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"?")
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, Any]:
    """The code this process measures with, once per process: ``version``, ``commit`` and
    ``dirty`` (from git, when fmtbench is a tracked checkout; dirty = tracked files of the
    packages differ from the commit), else ``files`` (a hash of the installed package files),
    and ``id``, the one string a store record carries: "0.1.0 dfd3615a6441", "0.1.0
    dfd3615a6441+dirty" or "0.1.0 files:9f3c0e1b2a4d"."""
    version = fmtbench.__version__
    git = git_state()
    if git is not None and git.get("commit"):
        folder = Path(fmtbench.__file__).resolve().parent
        status = _git(folder, "status", "--porcelain", "--untracked-files=no", "--",
                      *(str(d) for d in _package_dirs()))
        dirty = bool(status) if status is not None else bool(git.get("dirty"))
        commit = git["commit"]
        return {"version": version, "commit": commit, "dirty": dirty, "files": None,
                "id": f"{version} {commit[:12]}{'+dirty' if dirty else ''}"}
    files = _files_hash(_package_dirs())
    return {"version": version, "commit": None, "dirty": None, "files": files, "id": f"{version} files:{files}"}


def code_id() -> str:
    """`code_fingerprint()["id"]`: what a store record names as its ``code``."""
    return code_fingerprint()["id"]


def _normal(dist: str) -> str:
    """A distribution's name as PEP 503 compares it: tensorflow_cpu and TensorFlow-CPU are tensorflow-cpu."""
    return re.sub(r"[-_.]+", "-", dist).lower()


@functools.lru_cache(maxsize=1)
def _import_to_distributions() -> dict[str, list[str]]:
    try:
        found = importlib.metadata.packages_distributions()
    except Exception:  # noqa: BLE001  (broken metadata somewhere: versions unknown, never an error)
        return {}
    return {module: list(dict.fromkeys(_normal(d) for d in dists)) for module, dists in found.items()}


def _direct_requirements(dist: str) -> list[str]:
    """The distributions `dist` requires to run here (extras left out, markers evaluated)."""
    try:
        reqs = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    out = []
    for text in reqs:
        try:
            from packaging.requirements import Requirement

            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            name = req.name
        except Exception:  # noqa: BLE001  (no packaging, or an odd line: name only, extras skipped)
            if "extra" in text.partition(";")[2]:
                continue
            name = text.split(";")[0].strip().split("[")[0]
            name = next((name[:i] for i, ch in enumerate(name) if ch in "<>=!~ ("), name).strip()
        if name and _normal(name) not in out:
            out.append(_normal(name))
    return out


def _core() -> set[str]:
    """The distributions of the core libraries (collect() lists them under their own keys)."""
    return {_normal(d) for dists in _DISTRIBUTIONS.values() for d in dists}


def format_libraries(name: str) -> dict[str, str | None]:
    """The distributions format `name` reads and writes through, with their installed versions:
    its adapter's `requires` (mapped from import name to distribution), what each of those
    directly requires (not for the core libraries, whose own dependencies are TensorFlow's
    dozens), and for a plugin its own distribution. A module no installed distribution provides
    is listed under its import name, None."""
    from fmtbench import formats

    out: dict[str, str | None] = {}
    try:
        cls = formats.adapter_class(name)
        origin = formats.origin(name)
    except Exception:  # noqa: BLE001  (a plugin that does not load: nothing known)
        return out
    if origin.startswith("plugin "):
        dist = _normal(origin.split(" ", 1)[1])
        out[dist] = _version(dist)
    core = _core()
    for module in cls.requires:
        dists = _import_to_distributions().get(module.split(".")[0]) or []
        if not dists:
            out[module] = None
        for dist in dists:
            out[dist] = _version(dist)
            if dist in core:
                continue
            for dep in _direct_requirements(dist):
                out.setdefault(dep, _version(dep))
    return out


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
    per_format = _formats()
    for libs in per_format.values():
        for dist, version in libs["libraries"].items():
            if dist not in _core():  # a core library (tensorflow-cpu) is listed under its own key
                libraries.setdefault(dist, version)
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
        "code": code_fingerprint(),
        "formats": per_format,
    }


def _formats() -> dict[str, dict[str, Any]]:
    """Every registered format: where it came from and the libraries it measures through."""
    from fmtbench import formats

    try:
        names = formats.formats()
    except Exception:  # noqa: BLE001  (a broken registry is reported where cases are listed)
        return {}
    return {name: {"origin": where, "libraries": format_libraries(name)} for name, where in names.items()}
