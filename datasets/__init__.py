"""Datasets: real MNIST, Fashion-MNIST, synthetic data and user arrays, by name.

Each dataset is one module in this folder with ``load(**options) -> Dataset`` and
``locate() -> (available, where)``, plus one line in ``_REGISTRY``; modules are imported only
when used. Adding a dataset is that module and that line, nothing else.
"""
from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, NamedTuple

from fmtbench.errors import UnknownNameError

from ._base import Dataset, Split, digest_arrays

__all__ = ["Dataset", "Split", "Availability", "REGISTRY", "load", "names", "availability", "digest_arrays"]


class Entry(NamedTuple):
    """The module (relative to this package) that loads a dataset, and what the dataset is."""

    module: str
    summary: str


_REGISTRY = {
    "arrays": Entry("arrays", "your own images and labels: .npz, .npy pair or .h5 (--dataset-path)"),
    "fashion-mnist": Entry("fashion_mnist", "Zalando's Fashion-MNIST: 60000 + 10000 uint8 28x28, 10 classes"),
    "mnist": Entry("mnist", "MNIST handwritten digits: 60000 + 10000 uint8 28x28, 10 classes"),
    "synthetic": Entry("synthetic", "seeded MNIST-like data of any size, shape and dtype"),
}
REGISTRY = MappingProxyType(_REGISTRY)


@dataclass(frozen=True)
class Availability:
    """Whether a dataset loads on this machine with no further input, and from where."""

    name: str
    available: bool
    where: str


def _module(name: str) -> ModuleType:
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("dataset", name, _REGISTRY) from None
    return importlib.import_module(f".{entry.module}", __name__)


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(_REGISTRY)


def load(name: str, *, path: str | os.PathLike[str] | None = None, n: int | None = None,
         **options: Any) -> Dataset:
    """The dataset `name`, its train split cut to the first n samples (test to min(n, len)) if n.

    Loaders that generate data (synthetic) take n themselves and generate only that much; for
    the others the cut is recorded in the provenance line and in ``meta["n"]``.
    """
    module = _module(name)
    accepted = inspect.signature(module.load).parameters
    given = dict(options, **({"path": path} if path is not None else {}))
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        if "n" in accepted:
            given["n"] = int(n)
    for key in sorted(given):
        if key not in accepted:
            raise UnknownNameError(f"option of dataset {name!r}", key, accepted)
    dataset = module.load(**given)
    if n is None or "n" in accepted:
        return dataset
    return _first(dataset, int(n))


def _first(dataset: Dataset, n: int) -> Dataset:
    train, test = dataset.train.head(n), dataset.test.head(min(n, len(dataset.test)))
    provenance = f"{dataset.provenance}; first {len(train)} train and {len(test)} test samples"
    return Dataset(dataset.name, train, test, provenance, {**dataset.meta, "n": n})


def availability() -> list[Availability]:
    """For each dataset, whether it loads here without a path and from where; downloads nothing."""
    found = []
    for name in names():
        available, where = _module(name).locate()
        found.append(Availability(name, available, where))
    return found
