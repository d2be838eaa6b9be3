"""Concurrent readers: the CLI's readers points, n readers as threads or processes (own handles).

Tracked, not timed: a point is a fixed window in which every reader reads from one synchronized
start; its figure is the aggregate samples/s (``fmtbench.workloads.readers``, the same code the
CLI runs). The reader crew (processes forked before anything is opened, or threads with their
own handles) starts in setup. By default random batches with 1 and 4 readers (below and past
this machine's cores); ``FMTBENCH_ASV_FULL=1`` adds disjoint shards and takes the profile's counts.
"""
import time

from fmtbench.formats import get_case
from fmtbench.metrics import READER_MODES

from .common import FULL, PROFILE, SEED, Prepared, dataset

READERS = list(PROFILE.readers_counts) if FULL else [1, 4]


class ConcurrentReaders(Prepared):
    params = [Prepared.params, list(READER_MODES), READERS]
    param_names = ["case", "mode", "readers"]

    def setup(self, files, case, mode, readers):
        from fmtbench.workloads.readers import ProcessCrew, ThreadCrew

        path = self.written(files, case)["path"]  # n/a when the case's library is missing
        self.truth = dataset().train
        crew = ProcessCrew if mode == "processes" else ThreadCrew
        self.crew = crew(get_case(case), path, self.truth, readers)  # the libraries load in the readers

    def teardown(self, files, case, mode, readers):
        crew = getattr(self, "crew", None)
        if crew is not None:
            crew.close()

    def _point(self, pattern, readers):
        from fmtbench.workloads.readers import Work, summarize_point

        size = len(self.truth.labels)
        bs = PROFILE.random_batch_size if pattern == "random" else PROFILE.scan_batch
        works = [Work(pattern, readers, k, size, bs, SEED) for k in range(readers)]
        return summarize_point(self.crew.run(works, time.perf_counter() + 0.02,
                                             PROFILE.readers_window_s))["samples_per_s"]

    def track_random_batches(self, files, case, mode, readers):
        return self._point("random", readers)

    track_random_batches.unit = "samples/s"

    if FULL:  # the quick smoke skips shards: each parameter's setup forks a crew (~1 s)
        def track_disjoint_shards(self, files, case, mode, readers):
            return self._point("scan", readers)

        track_disjoint_shards.unit = "samples/s"
