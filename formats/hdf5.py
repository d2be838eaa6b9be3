"""PLACEHOLDER: being written by a helper."""
from __future__ import annotations

from ._base import Adapter


class HDF5Adapter(Adapter):
    name = "hdf5"
    suffix = ".hdf5"

    def _write(self, split, path):
        raise NotImplementedError

    def _open(self, path):
        raise NotImplementedError
