"""Write: convert the split through each case (atomic, each write replacing the last)."""
import shutil
import tempfile

from .common import CASES, dataset, need


class Write:
    params = CASES
    param_names = ["case"]

    def setup(self, case):
        self.case = need(case)
        self.split = dataset().train
        self.folder = tempfile.mkdtemp(prefix="fmtbench-asv-write-")
        self.path = self.case.default_path(self.folder)

    def teardown(self, case):
        if getattr(self, "folder", None):
            shutil.rmtree(self.folder, ignore_errors=True)

    def time_write(self, case):
        self.case.write(self.split, self.path)

    def peakmem_write(self, case):
        self.case.write(self.split, self.path)
