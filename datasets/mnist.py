"""MNIST: from a given path, the Keras cache, or downloaded the way Keras does it.

Search order: an explicit ``path`` (Keras' ``mnist.npz`` or a folder of the four IDX files),
then ``$KERAS_HOME/datasets/mnist.npz`` (``~/.keras`` when KERAS_HOME is unset), then a
download from Keras' URL, checked against Keras' sha256 and saved atomically into that cache.
``FMTBENCH_OFFLINE=1`` turns the download off. The helpers here are shared with Fashion-MNIST.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from fmtbench.atomic import atomic_path
from fmtbench.errors import DatasetNotFoundError

from . import idx
from ._base import Dataset, Split

NAME = "mnist"
KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
URL = KERAS_BASE_URL + "mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # as in keras.datasets.mnist
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DOWNLOAD_TIMEOUT_S = 15
HINT = (
    "To get it: copy mnist.npz (from {url}) into {cache}, or pass --dataset-path to an mnist.npz or to a "
    "folder holding the four IDX files (train-images-idx3-ubyte.gz, ...), or use the dataset "
    "'fashion-mnist', which Debian's package dataset-fashion-mnist installs for offline use."
)


def keras_datasets_dir() -> Path:
    """The folder where Keras caches datasets: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets"


def offline() -> bool:
    """Whether downloads are turned off (FMTBENCH_OFFLINE=1; the tests set it)."""
    return os.environ.get("FMTBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def download(url: str, target: Path, sha256: str | None = None) -> Path:
    """Fetch url into target atomically, checking sha256 when given; raises OSError or ValueError."""
    with atomic_path(target) as tmp:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise ValueError(f"{url}: sha256 {digest.hexdigest()} is not the expected {sha256}")
    return target


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_npz(path: Path) -> tuple[Split, Split]:
    """Train and test splits from a Keras-style npz (x_train, y_train, x_test, y_test); no pickle."""
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would guess pickle and advise allow_pickle
        raise ValueError(f"{path}: not an .npz archive (an .npz is a zip of .npy arrays, as np.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise ValueError(f"missing keys {missing}; found {sorted(npz.files)}")
            arrays = {k: npz[k] for k in NPZ_KEYS}
        return (Split("train", arrays["x_train"], arrays["y_train"]),
                Split("test", arrays["x_test"], arrays["y_test"]))
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        why = ("it holds Python objects (pickled arrays), which fmtbench never loads: store numeric arrays"
               if "allow_pickle" in str(e) else str(e))
        raise ValueError(f"{path}: not a readable MNIST-style npz ({why})") from e


def read_idx_folder(folder: Path) -> tuple[Split, Split] | None:
    """Train and test splits from the four IDX files in folder, or None when any is missing."""
    files = idx.find_files(folder)
    if files is None:
        return None
    train = idx.read_split(files[idx.TRAIN_IMAGES], files[idx.TRAIN_LABELS])
    test = idx.read_split(files[idx.TEST_IMAGES], files[idx.TEST_LABELS])
    return Split("train", *train), Split("test", *test)


def read_explicit(name: str, title: str, path: str | os.PathLike[str], hint: str) -> Dataset:
    """A dataset from a user-given npz file or IDX folder; DatasetNotFoundError if neither is there."""
    path = Path(path).expanduser()
    if path.is_dir():
        splits = read_idx_folder(path)
        if splits is not None:
            return Dataset(name, *splits, f"{title} IDX files from {path}", {"source": str(path)})
        looked = f"{path} (a folder without all of {', '.join(idx.FILES)}, each plain or .gz)"
    elif path.is_file():
        return Dataset(name, *read_npz(path), f"{title} from {path}", {"source": str(path)})
    else:
        looked = f"{path} (does not exist)"
    raise DatasetNotFoundError(name, [looked], hint)


def load(*, path: str | os.PathLike[str] | None = None) -> Dataset:
    """MNIST from path, the Keras cache or Keras' URL; DatasetNotFoundError lists every place tried."""
    cache = keras_datasets_dir() / "mnist.npz"
    hint = HINT.format(url=URL, cache=cache.parent)
    if path is not None:
        return read_explicit(NAME, "MNIST", path, hint)
    looked = []
    if cache.is_file():
        if file_sha256(cache) == SHA256:
            return Dataset(NAME, *read_npz(cache), f"MNIST from the Keras cache {cache} (sha256 verified)",
                           {"source": str(cache)})
        looked.append(f"{cache} (present, but its sha256 is not Keras' {SHA256[:12]}...)")
    else:
        looked.append(f"{cache} (Keras cache; KERAS_HOME moves it)")
    if offline():
        looked.append(f"download from {URL} (skipped: FMTBENCH_OFFLINE=1)")
        raise DatasetNotFoundError(NAME, looked, hint)
    try:
        download(URL, cache, SHA256)
    except (OSError, ValueError) as e:
        looked.append(f"download from {URL} (failed: {type(e).__name__}: {e})")
        raise DatasetNotFoundError(NAME, looked, hint) from e
    return Dataset(NAME, *read_npz(cache), f"MNIST downloaded from {URL} into {cache} (sha256 verified)",
                   {"source": str(cache)})


def locate() -> tuple[bool, str]:
    """Whether MNIST loads here without a path, and from where; never downloads."""
    cache = keras_datasets_dir() / "mnist.npz"
    if cache.is_file():
        if file_sha256(cache) == SHA256:
            return True, f"{cache} (Keras cache)"
        return False, f"{cache} has the wrong sha256; a download would replace it"
    if offline():
        return False, f"not in {cache}; download off (FMTBENCH_OFFLINE=1)"
    return False, f"download from {URL} (network needed)"
