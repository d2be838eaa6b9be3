"""The asv suite end to end: the quick smoke passes; the regression check fails on an injected
slowdown (naming the benchmarks and ratios), passes on a change that does nothing to speed and
tells a failing benchmark from a regression; the offline history page renders those results.

asv runs on a copy of the working tree in a temporary folder, with HOME there too (asv keeps its
machine file in ~), narrowed with FMTBENCH_ASV_CASES so the whole file takes a few minutes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("asv")

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmarks" / "regression_check.py"
pytestmark = pytest.mark.slow

# asv's status line of a benchmark that failed for all or some parameters, and its stderr marks.
FAILED = re.compile(r"^\[[^\]]*\]\s*·+\s*(\S+)\s+(?:\d+/\d+\s+)?failed\s*$|asv: (?:benchmark|setup_cache) failed", re.M)

# Appended to formats/npy.py: no edit of the adapter's own lines, so it survives their changes.
SLOWDOWN = """
_real_read = NpyReader._read


def _twenty_reads(self, indices):  # injected slowdown: the real read path, 20 times
    for _ in range(19):
        _real_read(self, indices)
    return _real_read(self, indices)


NpyReader._read = _twenty_reads
"""
BROKEN = """

def _broken_read(self, indices):  # injected failure
    raise RuntimeError("injected failure")


NpyReader._read = _broken_read
"""


def copy_tree(dest: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files, copied to `dest`."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the project's git checkout")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def asv_env(tmp: Path, **extra: str) -> dict[str, str]:
    """This interpreter first on PATH (smoke.sh runs `python`), HOME in `tmp`."""
    (tmp / "home").mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp / "home"), "PYTHON": sys.executable, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def one_case_per_format() -> str:
    """FMTBENCH_ASV_CASES for the first representative case of each format, as exact ids."""
    from fmtbench.formats import cases

    first: dict[str, str] = {}
    for case in cases(full=False):
        first.setdefault(case.name, case.case_id)
    # A bare format name would select the whole format: bracketing a letter makes it a glob
    # that matches only that id.
    return ",".join(f"[{cid[0]}]{cid[1:]}" for cid in first.values())


def test_regression_check_help():
    done = subprocess.run([sys.executable, str(CHECK), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "--factor" in done.stdout and "regression" in done.stdout


def test_quick_smoke_runs_every_benchmark(tmp_path):
    repo = copy_tree(tmp_path / "repo")
    env = asv_env(tmp_path, FMTBENCH_ASV_CASES=one_case_per_format())
    done = subprocess.run(["bash", "benchmarks/smoke.sh"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    failed = [m.group(0).strip() for m in FAILED.finditer(out)]
    assert done.returncode == 0 and not failed, f"{failed}\n{out[-8000:]}"
    for bench in ("bench_write.Write.time_write", "bench_scan.FullScan.peakmem_scan",
                  "bench_random.RandomRead.time_single_reads", "bench_size.FileSize.track_file_bytes",
                  "bench_train.TrainEpoch.track_epoch_seconds"):
        assert re.search(rf"{re.escape(bench)}\s+ok", out), f"{bench} did not run ok:\n{out[-4000:]}"


def _commit(repo: Path, env: dict[str, str], message: str, day: int, append: str = "") -> None:
    if append:
        with open(repo / "formats" / "npy.py", "a") as fh:
            fh.write(append)
    date = f"2024-01-{day:02d}T12:00:00+00:00"  # distinct dates: the history orders by them
    genv = {**env, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    ident = ["-c", "user.name=fmtbench test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", *ident, "add", "-A"], cwd=repo, env=genv, check=True)
    subprocess.run(["git", *ident, "commit", "-q", "-m", message], cwd=repo, env=genv, check=True)


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """A repository base -> comment-only -> 20x slower npy reads -> failing npy reads, and the
    regression check run on each step: {step: (exit status, output)}, plus the repository."""
    tmp = tmp_path_factory.mktemp("asv-regression")
    repo = copy_tree(tmp / "repo")
    env = asv_env(tmp)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    _commit(repo, env, "base", 1)
    _commit(repo, env, "comment only", 2, "\n# A comment: nothing here changes speed.\n")
    _commit(repo, env, "read every npy batch 20 times", 3, SLOWDOWN)
    _commit(repo, env, "break npy reads", 4, BROKEN)
    outcomes = {}
    for step, (base, head) in {"noop": ("main~3", "main~2"), "slow": ("main~2", "main~1"),
                               "broken": ("main~1", "main")}.items():
        cmd = [sys.executable, str(repo / "benchmarks" / "regression_check.py"), base, head,
               "--config", str(repo / "asv.conf.json"), "--cases", "npy", "--factor", "2",
               "--machine", "fmtbench-test"]
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        outcomes[step] = (done.returncode, done.stdout + done.stderr)
    return repo, outcomes


def test_regression_check_passes_a_change_that_does_nothing_to_speed(checks):
    rc, out = checks[1]["noop"]
    assert rc == 0, out[-6000:]
    assert "PASS" in out


def test_regression_check_fails_on_injected_slowdown(checks):
    rc, out = checks[1]["slow"]
    assert rc == 1, out[-6000:]
    ratios = {name: float(r) for name, r in re.findall(r"^  (\S+): ratio ([\d.]+)", out, re.M)}
    print("ratios asv measured for the injected 20x read:", ratios)
    slow = {k: v for k, v in ratios.items() if k.startswith("bench_random.") and "'npy'" in k}
    assert slow and all(v >= 2 for v in slow.values()), out[-6000:]


def test_regression_check_tells_a_failing_benchmark_from_a_regression(checks):
    rc, out = checks[1]["broken"]
    assert rc == 2, out[-6000:]
    assert "BENCHMARK FAILED" in out and "REGRESSION" not in out
    assert "bench_random.RandomRead.time_single_reads('npy')" in out
    assert "injected failure" in out  # the benchmark's own error is shown


def test_history_page_has_one_offline_chart_per_benchmark(checks, tmp_path):
    from click.testing import CliRunner

    from fmtbench.reports.asv_history import asv_report_cmd

    results = checks[0] / ".asv" / "regression"
    names = {name for path in results.glob("*/*.json") if path.name != "machine.json"
             for name in json.loads(path.read_text())["results"]}
    assert len(names) >= 4
    page = tmp_path / "history.html"
    done = CliRunner().invoke(asv_report_cmd, [str(results), "-o", str(page)])
    assert done.exit_code == 0, done.output
    html = page.read_text()
    assert html.count('class="history-chart"') == len(names)
    for name in names:
        assert f"<h2>{name}</h2>" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html)
    assert "<script" not in html
    assert html.count("<section") == len(names)
