"""PLACEHOLDER: being written by a helper."""
from __future__ import annotations

from ._base import Adapter


class TFRecordAdapter(Adapter):
    name = "tfrecord"
    suffix = ".tfrecord"

    def _write(self, split, path):
        raise NotImplementedError

    def _open(self, path):
        raise NotImplementedError
