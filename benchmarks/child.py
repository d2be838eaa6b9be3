"""One measurement in a fresh Python process: what the standalone benchmarks (training, fairness)
share, so no measurement inherits another's imports, thread pools, allocator or mappings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import click


def run(module: str, one: Any, options: dict[str, Any], what: str) -> dict:
    """``python -m <module> --one <JSON of one> --<option> <value> ...`` with TensorFlow's C++
    logging quiet; the child's last line of output, parsed as JSON. A failed child is one
    ClickException naming `what`, with the end of its stderr."""
    cmd = [sys.executable, "-m", module, "--one", json.dumps(one)]
    for name, value in options.items():
        cmd += [f"--{name}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise click.ClickException(f"{what} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
