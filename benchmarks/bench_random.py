"""Random access: the CLI's seeded single-sample reads and random batches (unsorted and sorted)."""
import numpy as np

from fmtbench.workloads.random import _batches, batch_indices, checked, checked_singles, single_indices

from .common import PROFILE, SEED, Prepared


class RandomRead(Prepared):
    def setup(self, files, case):
        reader = self.open_reader(files, case)
        n = len(reader)
        self.singles = checked_singles(reader, single_indices(n, PROFILE.random_singles, SEED))
        self.unsorted = checked(reader, batch_indices(n, PROFILE.random_batches, PROFILE.random_batch_size, SEED))
        self.sorted = [np.sort(b) for b in self.unsorted]

    def time_single_reads(self, files, case):
        _batches(self.reader, self.singles)

    def time_batches_unsorted(self, files, case):
        _batches(self.reader, self.unsorted)

    def time_batches_sorted(self, files, case):
        _batches(self.reader, self.sorted)
