"""Atomic output: write beside the target, fsync, then os.replace, so no reader sees half a file."""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from fmtbench.errors import DiskFullError, FmtbenchError

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


def remove(path: Path) -> None:
    """Remove a file or a folder, best effort: it never raises, so the error that made a cleanup
    necessary is the one seen."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(target: Path) -> list[Path]:
    """Remove the temporary siblings of `target` left by writers that died (SIGKILL leaves them:
    up to 63 MB each); a live writer's are kept. Returns what was removed."""
    gone = []
    prefix = _tmp_prefix(target)
    for tmp in target.parent.glob(f"{prefix}*") if target.parent.is_dir() else ():
        pid = tmp.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            remove(tmp)
            gone.append(tmp)
    return gone


_NAME_MAX = 255  # bytes in one path component on Linux filesystems
_TAIL = 7 + 1 + 8  # "<pid>-<8 hex>": a pid has at most 7 digits on Linux


def _tmp_prefix(target: Path) -> str:
    """'.NAME.fmtbench-tmp-', with NAME cut (on a character boundary) so the whole temporary
    name fits in one path component even when the target's name nearly fills it."""
    room = _NAME_MAX - 1 - len(TMP_MARK.encode()) - _TAIL
    name = target.name
    while len(name.encode()) > room:
        name = name[:-1]
    return f".{name}{TMP_MARK}"


def temp_name(target: Path) -> Path:
    """A hidden sibling of target that no glob for the target's suffix matches."""
    return target.with_name(f"{_tmp_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _check_replaceable(target: Path, directory: bool) -> None:
    """Refuse to replace what a write must never replace: a device, FIFO or socket (as root, a
    rename would silently swap /dev/null for a regular file), or a file where a folder goes and
    the other way round."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        return  # the link is replaced, its target untouched
    kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else None)
    if kind is None and directory != stat.S_ISDIR(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a file"
    if kind is not None:
        want = "a folder" if directory else "a file"
        raise FmtbenchError(f"{target} is {kind}; refusing to replace it with {want}: choose another path")


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_folder(new: Path, target: Path) -> None:
    """Put folder `new` at `target`, which holds an old folder: a kill at any moment leaves the
    old or the new one there. os.replace cannot replace a non-empty folder, so the two are
    swapped atomically and the old one, now at `new`, removed; where the filesystem cannot
    swap, the old one is moved aside first (a kill between the two renames leaves nothing)."""
    if _exchange(new, target):
        remove(new)
        return
    old = temp_name(target)
    os.replace(target, old)
    os.replace(new, target)
    remove(old)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces target, on error it is removed.

    With directory=True the temporary path is an empty folder (for formats that are several
    files). A process killed mid-write leaves only a hidden ``.name.fmtbench-tmp-PID-*``
    sibling, never a file at ``target``, and the next write to ``target`` removes it once PID
    is gone; an existing target stays intact until the final rename.
    """
    target = Path(target)
    _check_replaceable(target, directory)
    tmp = temp_name(target)
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(target)
            if directory:
                tmp.mkdir()
        except OSError as exc:
            raise _not_writable(exc, target) or exc
        yield tmp
        _fsync_tree(tmp)
        if directory and target.exists():
            _replace_folder(tmp, target)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        full = disk_full(exc, target, written=_size_or_none(tmp), cleanup=lambda: remove(tmp))
        if full is not None:
            raise full from exc
        if (denied := _not_writable(exc, target)) is not None:
            raise denied from exc
        raise


def _not_writable(exc: BaseException, target: Path) -> FmtbenchError | None:
    """One clear error for a folder fmtbench may not write in (read-only mount, permissions)."""
    if isinstance(exc, OSError) and not isinstance(exc, FmtbenchError) and exc.errno in (
            errno.EROFS, errno.EACCES, errno.EPERM):
        return FmtbenchError(f"cannot write {target}: {exc.strerror.lower()} ({exc.filename}); "
                             "choose a folder you can write to")
    return None


#: errno values of a full filesystem or quota
_FULL = {errno.ENOSPC, errno.EDQUOT}


def disk_full(exc: BaseException, path: str | os.PathLike[str], written: int | None = None,
              cleanup: Callable[[], None] | None = None) -> DiskFullError | None:
    """A DiskFullError naming `path` when `exc` is the filesystem running out of space, else None.

    Some writers lose the errno (numpy's ``tofile`` raises "N requested and M written"), so an
    OSError while under 1 MiB is free counts as a full disk too. `cleanup` (removing the
    partial file) runs after that check and before the free space the message reports.
    """
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = _free(folder)
    full = (isinstance(exc, OSError) and not isinstance(exc, FmtbenchError)
            and (exc.errno in _FULL or (free is not None and free < (1 << 20))))
    if cleanup is not None:
        cleanup()
    if not full:
        return None
    return DiskFullError(path, written, _free(folder), where=_mount_point(folder))


def _free(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mount_point(folder: Path) -> str:
    folder = folder.resolve()
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return str(folder)


def _size_or_none(path: Path) -> int | None:
    try:
        return path_size(path)
    except OSError:
        return None


def path_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
