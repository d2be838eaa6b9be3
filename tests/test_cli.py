"""The command line as a user meets it: listings, convert, verify, and its error messages."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fmtbench.formats import cases, formats, get_case


def fmtbench(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cases_json_lists_every_case_with_ids_that_parse_back():
    out = fmtbench("cases", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["case"] for r in rows] == [c.case_id for c in cases()]
    assert {r["format"] for r in rows} == set(formats())
    assert all(r["origin"] == formats()[r["format"]] for r in rows)
    for r in rows:
        assert get_case(r["case"]).config == r["config"]


def test_cases_pattern_and_unknown_format():
    out = fmtbench("cases", "hdf5/*gzip9*")
    assert out.returncode == 0 and out.stdout.strip()
    header, *lines = out.stdout.splitlines()
    assert header.split()[:2] == ["case", "random"] and lines
    assert all("gzip9" in line for line in lines)
    bad = fmtbench("cases", "hdf9")
    assert bad.returncode == 2
    assert f"unknown format 'hdf9'; valid: {', '.join(sorted(formats()))}" in bad.stderr


def test_datasets_says_what_is_available_and_where():
    out = fmtbench("datasets")
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert set(lines) == {"arrays", "fashion-mnist", "mnist", "synthetic"}
    assert " yes " in lines["synthetic"] and "needs --dataset-path" in lines["arrays"]


def test_convert_verify_and_a_detected_mismatch(tmp_path):
    target = tmp_path / "train.npy"
    out = fmtbench("convert", "-d", "synthetic", "--n", "300", "-c", "npy", "--out", str(target), "--verify")
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout
    ok = fmtbench("verify", "-d", "synthetic", "--n", "300", "-c", "npy", str(target))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:")

    shorter = fmtbench("verify", "-d", "synthetic", "--n", "200", "-c", "npy", str(target))
    assert shorter.returncode == 1 and "300 samples in file, 200 expected" in shorter.stderr

    images = np.load(target / "images.npy", mmap_mode="r+")  # silent damage NPY cannot detect
    images[123, 5, 5] ^= 0xFF
    images.flush()
    del images
    bad = fmtbench("verify", "-d", "synthetic", "--n", "300", "-c", "npy", str(target))
    assert bad.returncode == 1 and "scan: sample 123 differs" in bad.stderr


def test_verify_of_a_corrupt_file_is_a_clear_error(tmp_path):
    target = tmp_path / "train.parquet"
    assert fmtbench("convert", "-d", "synthetic", "--n", "300", "-c", "parquet/rg1024-zstd",
                    "--out", str(target)).returncode == 0
    target.write_bytes(target.read_bytes()[:1000])
    out = fmtbench("verify", "-d", "synthetic", "--n", "300", "-c", "parquet/rg1024-zstd", str(target))
    assert out.returncode == 2
    assert "corrupt or unreadable file" in out.stderr and str(target) in out.stderr


def test_convert_several_cases_into_a_folder(tmp_path):
    out = fmtbench("convert", "-d", "synthetic", "--n", "200", "-c", "sqlite", "-c", "csv",
                   "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("train.*"))
    assert "csv/train.csv" in written and "sqlite/train.sqlite" in written


def test_convert_never_replaces_the_dataset_itself_or_a_special_file(tmp_path):
    rng = np.random.default_rng(0)
    own = tmp_path / "mine.npz"
    np.savez(own, images=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), labels=np.arange(20) % 10)
    before = own.read_bytes()
    out = fmtbench("convert", "-d", "arrays", "--dataset-path", str(own), "-c", "csv", "--out", str(own))
    assert out.returncode == 2 and "is the dataset's own file" in out.stderr and "Traceback" not in out.stderr
    assert own.read_bytes() == before
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = fmtbench("convert", "-d", "arrays", "--dataset-path", str(own), "-c", "csv", "--out", str(fifo))
    assert out.returncode == 2 and f"{fifo} is a FIFO; refusing to replace it" in out.stderr
    assert os.path.exists(fifo) and not os.path.isfile(fifo)


def test_a_case_never_replaces_a_folder_with_a_file_or_a_file_with_a_folder(tmp_path, split):
    from fmtbench.errors import FmtbenchError

    folder, file = tmp_path / "a-folder", tmp_path / "a-file"
    folder.mkdir()
    file.write_text("keep me")
    with pytest.raises(FmtbenchError, match="is a folder; refusing to replace it with a file"):
        get_case("csv").write(split, folder)
    with pytest.raises(FmtbenchError, match="is a file; refusing to replace it with a folder"):
        get_case("npy").write(split, file)
    assert folder.is_dir() and file.read_text() == "keep me"


def test_verify_compares_bytes_so_nan_pixels_match_themselves(tmp_path):
    images = np.random.default_rng(0).random((30, 4, 4)).astype(np.float32)
    images[3, 1, 1] = np.nan
    data = tmp_path / "f.npz"
    np.savez(data, images=images, labels=np.arange(30) % 10)
    out = fmtbench("convert", "-d", "arrays", "--dataset-path", str(data), "-c", "npy",
                   "--out", str(tmp_path / "f.npy"), "--verify")
    assert out.returncode == 0 and "verified" in out.stdout + out.stderr, out.stderr


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello"), "not an .npz archive"),
    (lambda p: np.savez(p, images=np.zeros((10, 4, 4), complex), labels=np.arange(10)),
     "images must be integers, floats or booleans, got dtype complex128"),
    (lambda p: np.savez(p, images=np.zeros((10, 4, 4), "U3"), labels=np.arange(10)),
     "images must be integers, floats or booleans, got dtype <U3"),
    (lambda p: np.savez(p, images=np.zeros((10, 4, 0), "u1"), labels=np.arange(10)), "hold no pixels"),
])
def test_bad_user_arrays_are_one_line_naming_the_problem(tmp_path, make, message):
    data = tmp_path / "data.npz"
    make(data)
    out = fmtbench("convert", "-d", "arrays", "--dataset-path", str(data), "-c", "npy", "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and message in out.stderr and str(data) in out.stderr
    assert "Traceback" not in out.stderr and "allow_pickle" not in out.stderr
    assert not (tmp_path / "o").exists()


def test_a_chunk_cache_beyond_reason_is_refused_when_the_case_is_named():
    out = fmtbench("cases", "hdf5/chunk64-cache1024g")
    assert out.returncode == 2 and "option 'cache1024g': cache must be at most cache16g" in out.stderr


def test_a_trailing_slash_picks_a_formats_default_case_alone():
    for name in formats():
        picked = cases([f"{name}/"])
        assert [c.case_id for c in picked] == [name], name


def test_the_run_summary_labels_its_units_and_prints_no_exponents(tmp_path):
    from test_report import build_store

    from fmtbench.cli import summary_table

    table = summary_table(build_store(tmp_path / "s"))
    head, units, *rows = table.splitlines()
    assert head.split()[:4] == ["case", "size", "write", "scan"] and "shuffled" in head and "streaming" in head
    assert units.split()[:4] == ["MiB", "s", "k/s", "µs"]
    assert "k/s: thousand samples per second" in table
    rows = rows[:next(i for i, line in enumerate(rows) if line.startswith("k/s:"))]
    cells = [cell for line in rows for cell in line.split()[1:]]
    assert cells and not [c for c in cells if re.search(r"\d[eE][+-]?\d", c)] and "batch/s" not in table


def test_report_of_two_stores_goes_beside_the_runs_page_not_over_it(tmp_path):
    from test_report import build_store

    build_store(tmp_path / "a")
    build_store(tmp_path / "b", seed=1)
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "fmtbench", "report", "a", "b"], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "fmtbench-compare.html").is_file()
    assert not (tmp_path / "reports" / "fmtbench-report.html").exists()
