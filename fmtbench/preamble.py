"""The worker preamble: importing this module imports every library a unit may use, once, in the
zygote that every worker is forked from (see `fmtbench.executor`). Nothing else runs there.

TensorFlow's C++ runtime prints start-up notices straight to file descriptor 2 while it loads
(the absl "before InitializeLog" warning and the oneDNN notice, which TF_CPP_MIN_LOG_LEVEL does
not reach), once per zygote; they would break into the progress bar every round, so the imports
run with descriptor 2 pointed at /dev/null. A library that fails to import is skipped here and
fails, with its own message, in the unit that needs it.

Then everything the imports left is frozen out of the garbage collector's reach
(`fmtbench.harness.freeze_imports`): a full collection in a worker walked TensorFlow's ~300k
objects, ~130 ms that landed on whichever timed call triggered it; it now walks only what the
worker made.
"""
from __future__ import annotations

import importlib
import os

from fmtbench.executor import PREAMBLE
from fmtbench.harness import freeze_imports


def _import_all() -> None:
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        for name in PREAMBLE:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_all()
freeze_imports()
