"""Train: one epoch of the CLI's Keras model fed from each case, in the shared seeded order.

Tracked, not timed: ``train_case`` builds and traces the model before ``fit`` and evaluates
after it, which would swamp the epoch; the workload itself times the epoch alone (``epoch_s``).
TensorFlow is imported in setup, so no other benchmark's process pays for it.
"""
from .common import PROFILE, SEED, Prepared, dataset


class TrainEpoch(Prepared):
    timeout = 600

    def setup(self, files, case):
        try:
            import tensorflow  # noqa: F401
        except ImportError as exc:
            raise NotImplementedError(f"train needs tensorflow: {exc}") from None
        self.open_reader(files, case)
        self.test = dataset().test

    def track_epoch_seconds(self, files, case):
        from fmtbench.workloads.train import train_case

        result = train_case(self.reader, self.test, model=PROFILE.train_model, epochs=1,
                            batch_size=PROFILE.train_batch, steps_per_epoch=PROFILE.train_steps,
                            seed=SEED)
        return result.epoch_s[0]

    track_epoch_seconds.unit = "seconds"
