"""Size on disk of each case's file and its compression ratio (decoded bytes / file bytes)."""
from .common import Prepared


class FileSize(Prepared):
    def setup(self, files, case):
        self.entry = self.written(files, case)

    def track_file_bytes(self, files, case):
        return self.entry["nbytes"]

    track_file_bytes.unit = "bytes"

    def track_compression_ratio(self, files, case):
        return files["raw_bytes"] / self.entry["nbytes"]

    track_compression_ratio.unit = "ratio"
