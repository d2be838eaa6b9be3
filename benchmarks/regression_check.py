#!/usr/bin/env python
"""Performance-regression check: benchmark BASE and HEAD with asv, pass or fail on the ratios.

Exit status: 0 no benchmark got slower than FACTOR, 1 a regression (names and ratios printed),
2 an error: a benchmark failed at HEAD, or asv, git or the build did not work.

How each commit's own code is measured. asv always uses the benchmark suite of the working
tree; what differs per commit is the fmtbench it imports.

* ``--python same`` (default, fast): asv cannot install commits into an existing environment
  (``asv continuous --python=same`` refuses a commit range). So for each of BASE and HEAD this
  script builds that commit's wheel (``git archive`` + ``pip wheel --no-deps``), unpacks it
  into a folder, and runs ``asv run --python=same --set-commit-hash SHA`` with
  ``ASV_PYTHONPATH`` set to that folder; asv's runner puts it first on ``sys.path`` of every
  discovery and benchmark process, so ``import fmtbench`` loads the commit's code while the
  dependencies come from the current environment. ``--rounds`` runs alternate the commits.
* ``--python X.Y``: ``asv continuous`` in a virtualenv that asv builds and fills from the
  package registry (per asv.conf.json), installing each commit's wheel; slow the first time,
  fully isolated, rounds of the two commits interleaved.

Either way the results land in ``--results-dir`` and ``asv compare --split`` decides, with
asv's own statistics: a benchmark is a regression when HEAD/BASE > FACTOR and the difference
is significant. Only benchmarks where lower is better belong in the selection (time_, peakmem_).
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DEFAULT_BENCH = [r"^bench_(scan|random)\.\w+\.time_"]
WORSE_TITLE = "Benchmarks that have got worse:"


class CheckError(Exception):
    """Something other than a benchmark result went wrong (exit status 2)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description="Run the asv suite on BASE and HEAD and fail when HEAD is slower by more than FACTOR.",
        epilog="Exit status: 0 pass, 1 regression found, 2 error or a benchmark failed at HEAD.")
    p.add_argument("base", nargs="?", default="main", help="commit, branch or tag to compare against (default: main)")
    p.add_argument("head", nargs="?", default="HEAD", help="commit to check (default: HEAD)")
    p.add_argument("-f", "--factor", type=float, default=1.5,
                   help="slowdown ratio HEAD/BASE that counts as a regression (default: 1.5)")
    p.add_argument("-b", "--bench", action="append", default=None, metavar="REGEX",
                   help="asv benchmark regex, repeatable; matched against 'name(params)' "
                        f"(default: {DEFAULT_BENCH[0]})")
    p.add_argument("--cases", default=None,
                   help="comma-separated case ids, format names or globs (sets FMTBENCH_ASV_CASES)")
    p.add_argument("--python", default="same",
                   help="'same' (current environment, each commit's wheel on ASV_PYTHONPATH) or a "
                        "version such as 3.11 (asv builds a virtualenv; default: same)")
    p.add_argument("--rounds", type=int, default=2,
                   help="with --python same: asv runs per commit, alternating BASE and HEAD (default: 2)")
    p.add_argument("--config", default="asv.conf.json", help="asv configuration (default: asv.conf.json)")
    p.add_argument("--results-dir", default=".asv/regression",
                   help="where this check's asv results go; earlier results of BASE and HEAD there "
                        "are replaced (default: .asv/regression)")
    p.add_argument("--machine", default=platform.node() or "ci", help="asv machine name (default: host name)")
    p.add_argument("--quiet", action="store_true", help="do not show the benchmarks' stderr")
    return p.parse_args(argv)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo`; its stdout, stripped."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def write_config(config: Path, results_dir: Path, head: str, out: Path) -> Path:
    """A copy of the asv config with absolute paths, `head` as its branch and our results folder."""
    from asv.util import load_json  # asv's own reader: asv.conf.json has // comments

    conf = load_json(str(config), js_comments=True)
    root = config.parent
    for key in ("repo", "benchmark_dir", "env_dir", "html_dir"):
        conf[key] = str((root / conf.get(key, ".")).resolve())
    conf["results_dir"] = str(results_dir.resolve())
    conf["branches"] = [head]  # asv run --set-commit-hash needs a branch that resolves here
    conf.pop("version", None)
    path = out / "asv.conf.json"
    path.write_text(json.dumps({"version": 1, **conf}, indent=2))
    return path


def asv(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run one asv command with this interpreter; its output goes straight through."""
    cmd = [sys.executable, "-m", "asv", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, env=env, cwd=cwd).returncode


def machine_args(name: str) -> list[str]:
    """`asv machine` options: this machine's details under the name `name`.

    asv fills in the details by itself only when the name is the host name.
    """
    from asv.machine import Machine

    info = {**Machine.get_defaults(), "machine": name}
    return [f"--{key}={value}" for key, value in info.items()]


def build_overlay(repo: Path, sha: str, work: Path) -> Path:
    """Unpack the wheel of commit `sha` into a folder that can go first on sys.path."""
    src, wheels, site = (work / f"{kind}-{sha[:12]}" for kind in ("src", "wheel", "site"))
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)]
    # Without isolation when the build backend is already here (fast, offline); else isolated.
    if subprocess.run(pip[:4] + ["--no-build-isolation"] + pip[4:], capture_output=True).returncode:
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode:
            raise CheckError(f"cannot build a wheel of {sha[:12]}:\n{done.stdout}{done.stderr}")
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    # cwd outside any checkout: `python -c` puts the cwd first on sys.path (asv's runner does not).
    probe = subprocess.run([sys.executable, "-c", "import fmtbench.formats as f; print(f.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(site)}, cwd=work, capture_output=True,
                           text=True)
    if probe.returncode or not probe.stdout.strip().startswith(str(site)):
        raise CheckError(f"the wheel of {sha[:12]} does not shadow the installed fmtbench: "
                         f"{probe.stdout.strip()} {probe.stderr.strip()}")
    return site


def result_files(results_dir: Path, machine: str, sha: str) -> list[Path]:
    """The asv result files of commit `sha` on `machine`."""
    return [Path(p) for p in glob.glob(str(results_dir / machine / f"{sha[:8]}-*.json"))]


def failures(results_dir: Path, machine: str, sha: str) -> list[str]:
    """'name(params)' of every benchmark whose result is missing (failed) at `sha`."""
    import itertools

    failed = []
    for path in result_files(results_dir, machine, sha):
        data = json.loads(path.read_text())
        columns = data["result_columns"]
        for name, row in sorted(data["results"].items()):
            entry = dict(zip(columns, row))
            combos = [", ".join(c) for c in itertools.product(*entry.get("params") or [])] or [""]
            values = entry["result"] if isinstance(entry["result"], list) else [entry["result"]] * len(combos)
            failed += [f"{name}({c})" if c else name for c, v in zip(combos, values) if v is None]
    return failed


def worse_rows(compare_output: str) -> list[tuple[str, str, str, str, str]]:
    """(mark, before, after, ratio, name) of each row under asv compare's 'got worse' title."""
    rows, in_worse = [], False
    for line in compare_output.splitlines():
        if line.startswith("Benchmarks that"):
            in_worse = line.strip() == WORSE_TITLE
        elif in_worse and line.startswith("|") and not re.match(r"^\|\s*(Change|-+)\s*\|", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0] in ("+", "!"):
                rows.append(tuple(cells))
    return rows


def run_commits(o: argparse.Namespace, conf: Path, repo: Path, base: str, head: str,
                env: dict[str, str], work: Path) -> None:
    """Produce results of BASE and HEAD in the results folder."""
    common = ["--config", str(conf), "--machine", o.machine]
    common += [a for b in o.bench for a in ("--bench", b)] + ([] if o.quiet else ["--show-stderr"])
    if o.python == "same":
        sites = {sha: build_overlay(repo, sha, work) for sha in (base, head)}
        # Rounds alternate the two commits (as asv does in its own environments), so drift of
        # the machine's speed does not land on one side; raw samples accumulate across rounds
        # and let asv compare test significance.
        for r in range(o.rounds):
            for sha in (base, head) if r % 2 == 0 else (head, base):
                rc = asv(["run", "--python=same", "--set-commit-hash", sha, "--append-samples",
                          "--attribute", "rounds=1", *common],
                         env={**env, "ASV_PYTHONPATH": str(sites[sha])}, cwd=repo)
                if rc not in (0, 2):  # 2: some benchmark failed, judged from the results below
                    raise CheckError(f"asv run for {sha[:12]} exited {rc}")
    else:
        rc = asv(["continuous", "--python", o.python, "--factor", str(o.factor), *common, base, head],
                 env=env, cwd=repo)
        if rc not in (0, 1, 2):
            raise CheckError(f"asv continuous exited {rc}")


def check(o: argparse.Namespace) -> int:
    """Run the check; the exit status."""
    config = Path(o.config).resolve()
    if not config.is_file():
        raise CheckError(f"no asv config at {config}")
    repo = Path(git(config.parent, "rev-parse", "--show-toplevel"))
    base = git(repo, "rev-parse", "--verify", f"{o.base}^{{commit}}")
    head = git(repo, "rev-parse", "--verify", f"{o.head}^{{commit}}")
    results_dir = (config.parent / o.results_dir).resolve()
    for sha in {base, head}:
        for path in result_files(results_dir, o.machine, sha):
            path.unlink()
    env = dict(os.environ)
    if o.cases:
        env["FMTBENCH_ASV_CASES"] = o.cases
    print(f"regression check: base {base[:12]} ({o.base}) -> head {head[:12]} ({o.head}), "
          f"factor {o.factor}, python {o.python}, bench {o.bench}, cases {o.cases or 'default set'}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="fmtbench-regression-") as tmp:
        work = Path(tmp)
        conf = write_config(config, results_dir, head, work)
        if asv(["machine", "--yes", "--config", str(conf), *machine_args(o.machine)], env=env, cwd=repo):
            raise CheckError("asv machine failed")
        run_commits(o, conf, repo, base, head, env, work)
        for sha in (base, head):
            if not result_files(results_dir, o.machine, sha):
                raise CheckError(f"asv saved no results for {sha[:12]} in {results_dir}")
        failed_base, failed_head = (failures(results_dir, o.machine, s) for s in (base, head))
        compare = subprocess.run(
            [sys.executable, "-m", "asv", "compare", "--config", str(conf), "--machine", o.machine,
             "--factor", str(o.factor), "--split", base, head],
            cwd=repo, capture_output=True, text=True)
    print(compare.stdout, compare.stderr, sep="", flush=True)
    if failed_base:
        print(f"note: {len(failed_base)} benchmark(s) fail at base {base[:12]}: {', '.join(failed_base)}")
    if failed_head:
        print(f"\nBENCHMARK FAILED at head {head[:12]} ({len(failed_head)}), not a timing result:")
        for name in failed_head:
            print(f"  {name}")
        return 2
    if compare.returncode:
        raise CheckError(f"asv compare exited {compare.returncode}")
    worse = worse_rows(compare.stdout)
    if worse:
        print(f"\nREGRESSION: {len(worse)} benchmark(s) slower than factor {o.factor} "
              f"at head {head[:12]} vs base {base[:12]}:")
        for _, before, after, ratio, name in worse:
            print(f"  {name}: ratio {ratio} ({before} -> {after})")
        return 1
    print(f"\nPASS: no benchmark slower than factor {o.factor} at head {head[:12]} vs base {base[:12]}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; the exit status."""
    o = parse_args(argv)
    o.bench = o.bench or DEFAULT_BENCH
    try:
        return check(o)
    except CheckError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
