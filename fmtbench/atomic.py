"""Atomic output: write beside the target, fsync, then os.replace, so no reader sees half a file."""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".fmtbench-tmp-"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _fsync_tree(child)
        _fsync_dir(path)
    else:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def temp_name(target: Path) -> Path:
    """A hidden sibling of target that no glob for the target's suffix matches."""
    return target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces target, on error it is removed.

    With directory=True the temporary path is an empty folder (for formats that are several
    files). A process killed mid-write leaves only a hidden ``.name.fmtbench-tmp-*`` sibling,
    never a file at ``target``; an existing target stays intact until the final rename.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        if directory and target.exists():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = temp_name(target)
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise


def path_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
