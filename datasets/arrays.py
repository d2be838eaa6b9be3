"""User arrays: your own images and labels from an .npz, a pair of .npy files, or an .h5 file.

Accepted layouts (``--dataset-path``):

- ``data.npz`` with keys ``images`` and ``labels``, or ``x_train`` and ``y_train`` (plus
  ``x_test`` and ``y_test`` when there is a test split), as ``np.savez`` writes them.
- ``images.npy`` with its labels in a sibling ``.npy`` file: the images file's name with its
  last ``images`` replaced by ``labels`` (``images.npy`` -> ``labels.npy``,
  ``train_images.npy`` -> ``train_labels.npy``), else ``<stem>_labels.npy``
  (``x.npy`` -> ``x_labels.npy``).
- ``data.h5`` / ``.hdf5`` with datasets ``images`` and ``labels`` (or ``x_train`` ...) at the root.

Images are (N, H, W) or (N, H, W, C) of any numeric dtype, kept as stored; labels are
integers (N,) or (N, 1). Without a test split, the last 10% of samples (at least one) become
the test split and the rest the train split. Nothing is unpickled.
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from fmtbench.errors import DatasetNotFoundError

from ._base import Dataset, Split

NAME = "arrays"
SUFFIXES = (".npz", ".npy", ".h5", ".hdf5")
TEST_FRACTION = 10  # hold out the last 1/10 when the file has no test split
HINT = ("Pass --dataset-path to an .npz (keys images, labels or x_train, y_train[, x_test, y_test]), an images "
        ".npy with a sibling labels .npy, or an .h5 with datasets images, labels (or x_train, ...).")


def labels_path(images: Path) -> Path:
    """The labels .npy that belongs to an images .npy (see the module docstring for the rule)."""
    stem = images.stem
    if "images" in stem:
        head, _, tail = stem.rpartition("images")
        return images.with_name(f"{head}labels{tail}.npy")
    return images.with_name(f"{stem}_labels.npy")


def _splits(path: Path, keys: list[str], get: Callable[[str], np.ndarray]) -> tuple[Split, Split, str]:
    if {"x_train", "y_train"} <= set(keys):
        x, y = get("x_train"), get("y_train")
        if {"x_test", "y_test"} <= set(keys):
            return _split("train", x, y), _split("test", get("x_test"), get("y_test")), "given test split"
    elif {"images", "labels"} <= set(keys):
        x, y = get("images"), get("labels")
    else:
        raise ValueError(f"{path}: needs images and labels (or x_train and y_train[, x_test, y_test]); "
                         f"found {sorted(keys)}")
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} images but {len(y)} labels")
    if len(x) < 2:
        raise ValueError(f"{path}: needs at least 2 samples to hold out a test split, found {len(x)}")
    cut = len(x) - max(1, len(x) // TEST_FRACTION)
    return (_split("train", x[:cut], y[:cut]), _split("test", x[cut:], y[cut:]),
            f"last {len(x) - cut} of {len(x)} samples held out as test")


def _split(name: str, images: np.ndarray, labels: np.ndarray) -> Split:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:  # Keras-style (N, 1) labels
        labels = labels[:, 0]
    return Split(name, images, labels)


def _read_npz(path: Path) -> tuple[Split, Split, str]:
    if not zipfile.is_zipfile(path):  # np.load would guess pickle and advise allow_pickle
        raise ValueError(f"{path}: not an .npz archive (an .npz is a zip of .npy arrays, as np.savez writes)")
    with np.load(path, allow_pickle=False) as npz:
        return _splits(path, list(npz.files), npz.__getitem__)


def _read_npy(path: Path) -> tuple[Split, Split, str]:
    labels = labels_path(path)
    if not labels.is_file():
        raise DatasetNotFoundError(NAME, [f"{path} (images)", f"{labels} (labels: missing)"], HINT)
    found: Mapping[str, Path] = {"images": path, "labels": labels}
    return _splits(path, list(found), lambda key: np.load(found[key], allow_pickle=False))


def _read_h5(path: Path) -> tuple[Split, Split, str]:
    import h5py

    with h5py.File(path, "r") as f:
        keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
        return _splits(path, keys, lambda key: f[key][()])


READERS = {".npz": _read_npz, ".npy": _read_npy, ".h5": _read_h5, ".hdf5": _read_h5}


def load(*, path: str | os.PathLike[str] | None = None) -> Dataset:
    """Images and labels from the user's file at path; errors name the file and the keys found."""
    if path is None:
        raise DatasetNotFoundError(NAME, ["no --dataset-path given"], HINT)
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(NAME, [f"{path} (not a file)"], HINT)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    try:
        train, test, how = reader(path)
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e})") from e
    except ValueError as e:
        if str(path) in str(e):
            raise
        if "allow_pickle" in str(e):  # numpy's advice to unpickle is not ours to give
            raise ValueError(f"{path}: holds Python objects (pickled arrays), which fmtbench never "
                             "loads: store numeric arrays") from e
        raise ValueError(f"{path}: {e}") from e
    return Dataset(NAME, train, test, f"user arrays from {path} ({how})", {"source": str(path)})


def locate() -> tuple[bool, str]:
    """User arrays need a file: available only with --dataset-path."""
    return False, "needs --dataset-path FILE (.npz, .npy pair or .h5)"
