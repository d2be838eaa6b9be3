"""Fashion-MNIST: from a given path, the system copy, the Keras cache, or downloaded like Keras.

Search order: an explicit ``path`` (an npz with x_train, y_train, x_test, y_test, or a folder
of the four IDX files), then the system copy that Debian's package ``dataset-fashion-mnist``
installs in ``/usr/share/datasets/fashion-mnist`` (``FMTBENCH_FASHION_MNIST_DIR`` moves it),
then the Keras cache ``$KERAS_HOME/datasets/fashion-mnist/``, then a download of Keras' four
files. Keras publishes no hash for them, and Debian's ``.gz`` bytes differ from upstream's, so
a download is checked on content instead: the arrays' digest must be ``DIGEST``.
"""
from __future__ import annotations

import os
from pathlib import Path

from fmtbench.atomic import atomic_path
from fmtbench.errors import DatasetNotFoundError

from . import idx
from ._base import Dataset
from .mnist import KERAS_BASE_URL, download, keras_datasets_dir, offline, read_explicit, read_idx_folder

NAME = "fashion-mnist"
TITLE = "Fashion-MNIST"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
SYSTEM_DIR_ENV = "FMTBENCH_FASHION_MNIST_DIR"
# Dataset.digest of the 60000 + 10000 published samples (uint8 images, int64 labels).
DIGEST = "cbe5b1a426ee5a6ff1c5fa9fe385e1b9d4a7fceee387cf4190d1e977bb5b00ae"
HINT = (
    "To get it: install Debian's package dataset-fashion-mnist (apt-get install "
    "dataset-fashion-mnist), or copy the four files {files} (from {url}) into {cache}, "
    "or pass --dataset-path to a folder holding them or to an npz with x_train, y_train, x_test, y_test."
)


def system_dir() -> Path:
    """Where the system copy lives: $FMTBENCH_FASHION_MNIST_DIR, else SYSTEM_DIR."""
    return Path(os.environ.get(SYSTEM_DIR_ENV) or SYSTEM_DIR)


def _places() -> list[tuple[str, Path]]:
    return [("system copy", system_dir()), ("Keras cache", keras_datasets_dir() / "fashion-mnist")]


def _download(cache: Path) -> Dataset:
    with atomic_path(cache, directory=True) as tmp:
        for name in idx.FILES:
            download(f"{KERAS_BASE_URL}{name}.gz", tmp / f"{name}.gz")
        splits = read_idx_folder(tmp)
        if splits is None:
            raise ValueError(f"download into {tmp} is incomplete")
        got = Dataset(NAME, *splits, "").digest
        if got != DIGEST:
            raise ValueError(f"downloaded arrays have digest {got}, not Fashion-MNIST's {DIGEST}")
    return Dataset(NAME, *splits, f"{TITLE} downloaded from {KERAS_BASE_URL} into {cache} "
                   "(content digest verified)", {"source": str(cache)})


def load(*, path: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST from path, the system copy, the Keras cache or Keras' URL; never pickles."""
    cache = keras_datasets_dir() / "fashion-mnist"
    hint = HINT.format(files=", ".join(f"{f}.gz" for f in idx.FILES), url=KERAS_BASE_URL, cache=cache)
    if path is not None:
        return read_explicit(NAME, TITLE, path, hint)
    looked = []
    for label, folder in _places():
        splits = read_idx_folder(folder)
        if splits is not None:
            return Dataset(NAME, *splits, f"{TITLE} IDX files from {folder} ({label})", {"source": str(folder)})
        looked.append(f"{folder} ({label}: not all four IDX files present)")
    if offline():
        looked.append(f"download from {KERAS_BASE_URL} (skipped: FMTBENCH_OFFLINE=1)")
        raise DatasetNotFoundError(NAME, looked, hint)
    try:
        return _download(cache)
    except (OSError, ValueError) as e:
        looked.append(f"download from {KERAS_BASE_URL} (failed: {type(e).__name__}: {e})")
        raise DatasetNotFoundError(NAME, looked, hint) from e


def locate() -> tuple[bool, str]:
    """Whether Fashion-MNIST loads here without a path, and from where; never downloads."""
    for label, folder in _places():
        if idx.find_files(folder) is not None:
            return True, f"{folder} (IDX, {label})"
    if offline():
        return False, f"not in {system_dir()} or the Keras cache; download off (FMTBENCH_OFFLINE=1)"
    return False, f"download from {KERAS_BASE_URL} (network needed)"
