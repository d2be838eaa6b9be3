"""Filesystem faults, on real filesystems mounted for the test (root only; skipped elsewhere).

A full disk during `convert` and `run`: one clear line naming the path and the space, exit 2,
nothing half-written left behind, and a results store that `--resume` completes. A read-only
folder for any output: one clear line naming it, never a traceback.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def _mounted(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs with `options` at `folder` for the block (root only; a skip where not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a test filesystem needs root")
    folder.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    with _mounted(tmp_path / "disk", "size=60m") as disk:
        yield disk


@pytest.fixture
def read_only(tmp_path):
    with _mounted(tmp_path / "ro", "size=1m,ro") as disk:
        yield disk


def fmtbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_convert_on_a_full_disk_is_one_line_and_leaves_nothing(small_disk, tmp_path):
    out = small_disk / "big.csv"
    done = fmtbench("convert", "-d", "synthetic", "--n", "40000", "-c", "csv", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert f"no space left on device writing {out}" in line and "MiB free on" in line
    assert list(small_disk.iterdir()) == []  # no file, no temporary file


def test_run_on_a_full_disk_stops_cleanly_and_resumes(small_disk, tmp_path):
    results = small_disk / "res"
    args = ("run", "-d", "synthetic", "--n", "20000", "-c", "npy", "-c", "csv", "-w", "write,scan",
            "-p", "quick", "--rounds", "1", "--results", str(results), "--no-report")
    done = fmtbench(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "no space left on device writing" in done.stderr and "--resume" in done.stderr
    assert not [p for p in results.rglob("*") if ".fmtbench-tmp-" in p.name]

    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    done = fmtbench(*args, "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]
    units = [(r["case"], r["workload"], r["cache"], r["round"]) for r in records if r["kind"] == "done"]
    assert sorted(units) == sorted(set(units)) and len(units) == 4  # each unit exactly once
    assert not [(r["case"], r["workload"], r["error"]["message"]) for r in records if r["kind"] == "failure"]


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    return line


def test_read_only_outputs_are_one_clear_line(read_only, tmp_path):
    line = _one_error_line(fmtbench("convert", "-d", "synthetic", "--n", "200", "-c", "npy",
                                    "--out", str(read_only / "a.npy"), cwd=tmp_path))
    assert f"cannot write {read_only / 'a.npy'}: read-only file system" in line

    line = _one_error_line(fmtbench("run", "-d", "synthetic", "--n", "200", "-c", "npy", "-w", "write",
                                    "-p", "quick", "--rounds", "1", "--results", str(read_only / "res"),
                                    cwd=tmp_path))
    assert str(read_only / "res") in line and "not writable" in line

    results = tmp_path / "res"
    done = fmtbench("run", "-d", "synthetic", "--n", "200", "-c", "npy", "-w", "write", "-p", "quick",
                    "--rounds", "1", "--results", str(results), "--report", str(read_only / "r.html"), cwd=tmp_path)
    line = _one_error_line(done)
    assert f"cannot write {read_only / 'r.html'}" in line
    assert f"fmtbench report {results}" in done.stderr  # the way on: the measurements are saved
    assert (results / "results.jsonl").stat().st_size > 0

    line = _one_error_line(fmtbench("report", str(results), "-o", str(read_only / "r.html"), cwd=tmp_path))
    assert f"cannot write {read_only / 'r.html'}" in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_convert_leaves_no_temporary_file(tmp_path, sig):
    """Killed politely mid-write, fmtbench removes its temporary file and says so; only
    SIGKILL leaves one (swept by the next write: tests/test_conformance.py)."""
    target = tmp_path / "out" / "big.csv"
    proc = subprocess.Popen([sys.executable, "-m", "fmtbench", "convert", "-d", "synthetic", "--n", "60000",
                             "-c", "csv", "--out", str(target)], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, FMTBENCH_OFFLINE="1"))
    try:
        for _ in range(1200):  # until the writer's temporary file exists
            if target.parent.exists() and any(".fmtbench-tmp-" in p.name for p in target.parent.iterdir()):
                break
            if proc.poll() is not None:
                pytest.fail(f"convert ended before writing: {proc.stderr.read()}")
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert "Traceback" not in err and ("stopped by" in err or "interrupted" in err)
    assert list(target.parent.iterdir()) == []
