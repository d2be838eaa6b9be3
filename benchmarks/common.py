"""What the asv suite shares: the case ids, seeded data getters, and the files setup_cache writes.

The default set is the representative subset (``fmtbench cases --representative``) on a small
seeded synthetic split with the CLI's ``quick`` profile, so a run takes minutes.
``FMTBENCH_ASV_FULL=1`` selects the full grid, the real dataset (``FMTBENCH_ASV_DATASET``,
default fashion-mnist, which is always available offline) and the ``default`` profile.
``FMTBENCH_ASV_CASES`` (comma-separated ids, format names or globs) narrows the cases, for a
regression check on a few of them.

Only light modules are imported here: the forkserver preimports the whole suite, and a storage
library (or TensorFlow) imported at module level would sit in every benchmark's process.
"""
import os
from functools import lru_cache
from pathlib import Path

from fmtbench.formats import cases, get_case, import_libraries, missing_dependency
from fmtbench.profiles import get_profile

FULL = os.environ.get("FMTBENCH_ASV_FULL") == "1"
PROFILE = get_profile("default" if FULL else "quick")
SEED = 0
_PATTERNS = [p.strip() for p in os.environ.get("FMTBENCH_ASV_CASES", "").split(",") if p.strip()]
CASES = [c.case_id for c in cases(_PATTERNS or None, full=FULL)]


@lru_cache(maxsize=None)
def dataset():
    """The seeded dataset every benchmark reads (loaded once per process)."""
    from fmtbench import datasets

    if FULL:
        return datasets.load(os.environ.get("FMTBENCH_ASV_DATASET", "fashion-mnist"))
    return datasets.load("synthetic", n=PROFILE.n, seed=SEED)


def need(case_id, load=True):
    """The case's adapter with its libraries imported (outside any timing); n/a if one is missing."""
    case = get_case(case_id)
    missing = missing_dependency(case.name)
    if missing:
        raise NotImplementedError(missing)
    if load:
        import_libraries(case.name)
    return case


class Prepared:
    """Base of the benchmarks that read: one shared setup_cache writes every case's file once.

    asv runs it in a fresh temporary folder (the benchmarks' working directory, removed after
    the run) and hands its return value to setup and to each benchmark as ``files``.
    """

    params = CASES
    param_names = ["case"]

    def setup_cache(self):
        split = dataset().train
        written = {}
        for case in cases(_PATTERNS or None, full=FULL):
            if missing_dependency(case.name):
                continue  # its benchmarks say n/a in setup
            try:
                info = case.write(split, case.default_path(Path.cwd() / "data"))
                written[case.case_id] = {"path": str(info.path), "nbytes": info.nbytes}
            except Exception as exc:  # one broken case fails its own benchmarks, not the suite
                written[case.case_id] = {"error": f"{type(exc).__name__}: {exc}"}
        return {"raw_bytes": split.nbytes, "files": written}

    setup_cache.timeout = 1800

    def written(self, files, case_id):
        """The setup_cache entry of a case: n/a if its library is missing, an error if its write failed."""
        need(case_id, load=False)
        entry = files["files"][case_id]
        if "error" in entry:
            raise RuntimeError(f"setup_cache could not write {case_id}: {entry['error']}")
        return entry

    def open_reader(self, files, case_id):
        """Open the case's prepared file (index building and library imports happen here)."""
        entry = self.written(files, case_id)
        self.reader = need(case_id).open(entry["path"])
        return self.reader

    def teardown(self, files, case_id):
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.close()
