"""Checkpoint: the train workload's model saved (durable: fsynced) and loaded, over the
checkpoint workload's own code (``fmtbench.workloads.checkpoint``).

Cases are ``checkpoint/<model>/<variant>`` ids, not storage formats. By default two MLP
variants (Keras's own format and h5py gzip), so the smoke run stays short: every benchmark's
process imports TensorFlow and builds the model in setup (~5 s). ``FMTBENCH_ASV_FULL=1`` takes
the default profile's (MLP and CNN, the representative variants); checkpoint ids or globs in
``FMTBENCH_ASV_CASES`` pick others. Loads here are warm (the file was just written): the
workload (`fmtbench run -w checkpoint`) also times them cold.
"""
import shutil
import tempfile
from pathlib import Path

from fmtbench.workloads.checkpoint import is_checkpoint, select

from .common import _PATTERNS, FULL, PROFILE, SEED, dataset

_CHOSEN = [p for p in _PATTERNS if is_checkpoint(p)]
CASES = select(_CHOSEN, PROFILE) if _CHOSEN or FULL else ["checkpoint/mlp/keras", "checkpoint/mlp/h5-gzip4"]


class Checkpoint:
    params = CASES
    param_names = ["case"]
    timeout = 300

    def setup(self, case):
        try:
            import tensorflow  # noqa: F401
        except ImportError as exc:
            raise NotImplementedError(f"checkpoint needs tensorflow: {exc}") from None
        from fmtbench.workloads.checkpoint import parse, save, target_model, trained_model

        model, self.variant = parse(case)
        self.net = trained_model(model, dataset().train, SEED)
        self.target = None if self.variant.api == "model.save" else target_model(self.net)
        self.folder = Path(tempfile.mkdtemp(prefix="fmtbench-asv-checkpoint-")) / "ck"
        save(self.net, self.variant, self.folder)

    def teardown(self, case):
        if getattr(self, "folder", None):
            shutil.rmtree(self.folder.parent, ignore_errors=True)

    def time_save(self, case):
        from fmtbench.workloads.checkpoint import save

        save(self.net, self.variant, self.folder)

    def time_load(self, case):
        from fmtbench.workloads.checkpoint import load

        load(self.variant, self.folder, self.target)

    def track_checkpoint_bytes(self, case):
        from fmtbench.atomic import path_size

        return path_size(self.folder)

    track_checkpoint_bytes.unit = "bytes"
