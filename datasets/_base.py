"""The dataset contract: images and labels as numpy arrays, split, named, sourced and digested."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

LABEL_DTYPE = np.dtype(np.int64)


def digest_arrays(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of images then labels: equal digests mean equal arrays."""
    h = hashlib.sha256()
    for arr in (images, labels):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.reshape(-1).view(np.uint8))  # works for empty arrays too
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Split:
    """One split: images (N, H, W[, C]) of a numeric dtype and int64 labels (N,)."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.ndim not in (3, 4):
            raise ValueError(f"split {self.name!r}: images must be (N, H, W[, C]), got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"split {self.name!r}: labels shape {labels.shape} does not match "
                f"{images.shape[0]} images"
            )
        if images.dtype.kind not in "biuf":
            raise ValueError(f"split {self.name!r}: images must be integers, floats or booleans, "
                             f"got dtype {images.dtype}")
        if 0 in images.shape[1:]:
            raise ValueError(f"split {self.name!r}: images of shape {images.shape[1:]} hold no pixels")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"split {self.name!r}: labels must be integers, got {labels.dtype}")
        object.__setattr__(self, "images", np.ascontiguousarray(images))
        object.__setattr__(self, "labels", np.ascontiguousarray(labels, dtype=LABEL_DTYPE))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.images.shape[1:])

    @property
    def nbytes(self) -> int:
        """Decoded bytes of images plus labels: the denominator of compression ratios."""
        return int(self.images.nbytes + self.labels.nbytes)

    @property
    def digest(self) -> str:
        return digest_arrays(self.images, self.labels)

    def head(self, n: int) -> Split:
        """The first n samples, for quick profiles and tests."""
        return Split(self.name, self.images[:n], self.labels[:n])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named dataset with train and test splits and where it came from."""

    name: str
    train: Split
    test: Split
    provenance: str
    meta: dict = field(default_factory=dict)

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            from fmtbench.errors import UnknownNameError

            raise UnknownNameError("split", name, ["train", "test"])
        return self.train if name == "train" else self.test

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for s in (self.train, self.test):
            h.update(s.digest.encode())
        return h.hexdigest()


#: a run holds a dataset's arrays at least twice at once (the runner's copy and a worker's)
COPIES = 2


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:,.1f} {unit}" if unit != "B" else f"{nbytes:,.0f} B"
        nbytes /= 1024
    return ""


def fits(nbytes: int, what: str) -> None:
    """Refuse, before anything is allocated, a dataset whose arrays (`nbytes`, held `COPIES`
    times by a run) cannot fit in this machine's available memory: a ValueError with the numbers."""
    available = _available_bytes()
    if available is not None and nbytes * COPIES > available:
        raise ValueError(f"{what} needs {_size(nbytes)} for its arrays ({COPIES}x that while a worker holds a "
                         f"copy); this machine has {_size(available)} available: choose a smaller --n")
