"""Scan: one full sequential pass in batches, the CLI's scan workload; time and peak memory."""
from fmtbench.workloads.scan import _full_pass

from .common import PROFILE, Prepared


class FullScan(Prepared):
    def setup(self, files, case):
        self.open_reader(files, case)

    def time_scan(self, files, case):
        _full_pass(self.reader, PROFILE.scan_batch)

    def peakmem_scan(self, files, case):
        _full_pass(self.reader, PROFILE.scan_batch)
