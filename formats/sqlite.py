"""PLACEHOLDER: being written by a helper."""
from __future__ import annotations

from ._base import Adapter


class SqliteAdapter(Adapter):
    name = "sqlite"
    suffix = ".sqlite"

    def _write(self, split, path):
        raise NotImplementedError

    def _open(self, path):
        raise NotImplementedError
