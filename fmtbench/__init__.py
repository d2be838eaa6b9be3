"""fmtbench: benchmark storage formats for machine-learning training data.

From Python (a notebook): ``fmtbench.benchmark(images, labels, cases=[...])`` runs what
`fmtbench run` runs and returns where the results and report went (`fmtbench.api`).
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Benchmark", "FmtbenchError", "benchmark"]


def __getattr__(name: str):
    # lazily: `import fmtbench` stays light (the CLI and workers import it first)
    if name in ("benchmark", "Benchmark"):
        from fmtbench import api

        return getattr(api, name)
    if name == "FmtbenchError":
        from fmtbench.errors import FmtbenchError

        return FmtbenchError
    raise AttributeError(f"module 'fmtbench' has no attribute {name!r}")
