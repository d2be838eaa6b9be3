"""Units on a Dask cluster: a real scheduler and two real workers on localhost (separate processes,
TCP), a worker killed mid-unit, resume across cluster runs, host-keyed figures, dataset checks."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from fmtbench.cluster import DaskExecutor, DatasetMismatchError, hosts_table, localize_dataset  # noqa: E402
from fmtbench.errors import FmtbenchError  # noqa: E402
from fmtbench.executor import DataRef  # noqa: E402
from fmtbench.reports.load import load  # noqa: E402
from fmtbench.results import ResultStore  # noqa: E402

CASES = ("npy", "hdf5/chunk64", "parquet/rg1024-zstd")
WORKLOADS = ("write", "scan", "random")
DASK = str(Path(sys.executable).with_name("dask"))


def _spawn(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    # its own session, so a kill takes the worker with its zygote and the unit in flight
    return subprocess.Popen(args, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, **env))


def _wait(what: str, ready, timeout: float = 60.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := ready()):
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _address(info: Path) -> str | None:
    try:
        return json.loads(info.read_text())["address"]
    except (OSError, ValueError, KeyError):  # not written yet, or half written
        return None


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and two `dask worker`s (one unit each at a time), as the README starts them;
    w1 keeps its files on its own disk (FMTBENCH_DATA_DIR), w0 uses the client's --data-dir."""
    yield from _cluster(tmp_path, own_disk=True)


@pytest.fixture
def shared_cluster(tmp_path):
    """The same two workers, both reading the client's --data-dir (shared storage)."""
    yield from _cluster(tmp_path, own_disk=False)


def _cluster(tmp_path: Path, own_disk: bool):
    from distributed import Client

    info = tmp_path / "scheduler.json"
    procs = [_spawn([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(info)], tmp_path / "scheduler.log")]
    try:
        address = _wait("the scheduler", lambda: _address(info))
        workers = {name: _spawn([DASK, "worker", address, "--name", name, "--nthreads", "1", "--resources",
                                 "unit=1", "--no-nanny", "--no-dashboard", "--local-directory",
                                 str(tmp_path / name)], tmp_path / f"{name}.log",
                                **({"FMTBENCH_DATA_DIR": str(tmp_path / "w1-disk")} if name == "w1" and own_disk
                                   else {}))
                   for name in ("w0", "w1")}
        procs += workers.values()
        with Client(address, timeout=30) as client:
            names = _wait("two workers", lambda: len(client.scheduler_info()["workers"]) == 2
                          and {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}, every=0.2)
        yield address, workers, names
    finally:
        for p in reversed(procs):  # the workers before their scheduler, which they would wait for
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _run(address: str, results: Path, cwd: Path, rounds: int, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "fmtbench", "run", "--cluster", address, "-d", "synthetic", "--n", "1000",
            "-p", "quick", "--repeats", "2", "-w", ",".join(WORKLOADS), "--rounds", str(rounds),
            "--results", str(results), "--no-report", *extra]
    for case in CASES:
        args += ["-c", case]
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, FMTBENCH_OFFLINE="1"))


def _records(results: Path, kind: str) -> list[dict]:
    path = results / "results.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    lines = text[:text.rfind("\n") + 1].splitlines()  # complete lines only: a run may be writing
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _unit(r: dict) -> tuple:
    return (r["case"], r["workload"], r["cache"], r["round"])


def _expected(rounds: int) -> set:
    return {(c, w, "n/a" if w == "write" else "warm", r) for c in CASES for w in WORKLOADS for r in range(rounds)}


def _in_flight(proc: subprocess.Popen) -> bool:
    """Whether a worker has a unit running: its zygote has forked a unit process."""
    try:
        return any(child.children() for child in psutil.Process(proc.pid).children())
    except psutil.NoSuchProcess:
        return False


def test_a_worker_killed_mid_unit_loses_nothing_and_no_unit_counts_twice(cluster, tmp_path):
    address, workers, names = cluster
    results = tmp_path / "results"
    run = _run(address, results, tmp_path, 1)
    victim = names["w0"]
    # kill w0 once it has stored a unit and is running another
    _wait("a unit of w0 stored", lambda: any(r["extra"]["machine"][0]["worker"] == victim
                                             for r in _records(results, "measurement")), timeout=120)
    _wait("a unit in flight on w0", lambda: _in_flight(workers["w0"]), timeout=60, every=0.01)
    os.killpg(workers["w0"].pid, signal.SIGSTOP)  # frozen mid-unit: it can finish nothing more
    time.sleep(0.5)  # messages it sent before land at the scheduler
    from distributed import Client

    with Client(address, timeout=30) as client:
        stuck = client.processing(workers=[victim])[victim]
    os.killpg(workers["w0"].pid, signal.SIGKILL)
    killed_at = time.time()
    assert len(stuck) == 1
    case, workload, cache, rnd = stuck[0].split()[1:5]
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err[-3000:]

    done = Counter(_unit(r) for r in _records(results, "done"))
    assert set(done) == _expected(1) and set(done.values()) == {1}  # complete, each unit-round once
    measured = Counter((*_unit(r), r["metric"]) for r in _records(results, "measurement"))
    assert measured and set(measured.values()) == {1}
    assert _records(results, "failure") == []
    by_worker = Counter(r["extra"]["machine"][0]["worker"] for r in _records(results, "measurement"))
    assert set(by_worker) == {victim, names["w1"]}  # both measured, w0 only before it died
    from datetime import datetime

    late = [r for r in _records(results, "measurement") if r["extra"]["machine"][0]["worker"] == victim
            and datetime.fromisoformat(r["time"]).timestamp() > killed_at + 1]
    assert late == []
    # the unit it died in ran again on the other worker
    again = [r for r in _records(results, "measurement") if _unit(r) == (case, workload, cache, int(rnd[1:]))]
    assert again and {r["extra"]["machine"][0]["worker"] for r in again} == {names["w1"]}
    assert all(r["host"] == os.uname().nodename for r in _records(results, "measurement"))
    # w1 loaded the dataset by name into its own disk and wrote there the files of the cases it
    # measured (w0's too, once it took them over)
    (mine,) = (tmp_path / "w1-disk").iterdir()
    assert (mine / "_dataset" / "digest").read_text() == _records(results, "provenance")[0]["dataset_digest"]
    w1_cases = {r["case"] for r in _records(results, "measurement")
                if r["extra"]["machine"][0]["worker"] == names["w1"] and r["workload"] != "write"}
    assert w1_cases and all((mine / c.replace("/", "__")).exists() for c in w1_cases)
    assert "unit-rounds per worker:" in out

    # --resume across cluster runs: a second round on the surviving worker, nothing done measured again
    again = _run(address, results, tmp_path, 2, "--resume")
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err[-3000:]
    done = Counter(_unit(r) for r in _records(results, "done"))
    assert set(done) == _expected(2) and set(done.values()) == {1}
    prov = _records(results, "provenance")[-1]["machine"]["executor"]
    assert prov["executor"] == "dask" and list(prov["workers"]) == [names["w1"]]
    assert prov["workers"][names["w1"]]["provenance"]["libraries"]["numpy"]


def test_a_worker_whose_dataset_differs_refuses(tmp_path):
    source = {"name": "synthetic", "path": None, "n": 300}
    wrong = DataRef(str(tmp_path / "a"), "synthetic", "0" * 64, 300, source)
    with pytest.raises(DatasetMismatchError, match=r"refuses: its dataset 'synthetic' .* has digest \w{12}, "
                                                   r"the client's is 000000000000"):
        localize_dataset(wrong)
    assert not (tmp_path / "a" / "digest").exists()  # nothing saved from a copy that differs
    from fmtbench import datasets

    digest = datasets.load("synthetic", n=300).digest
    localize_dataset(DataRef(str(tmp_path / "b"), "synthetic", digest, 300, source))
    assert (tmp_path / "b" / "digest").read_text() == digest


def test_a_bad_local_cluster_size_is_one_clear_error():
    with pytest.raises(FmtbenchError, match="local:N with N >= 1"):
        DaskExecutor("local:zero")


def test_hosts_are_never_mixed_in_one_figure_and_compare_side_by_side(tmp_path):
    store = ResultStore(tmp_path)
    for host, values in (("alpha", [1.0, 2.0, 3.0]), ("beta", [10.0, 20.0, 30.0])):
        for rnd, v in enumerate(values):
            store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [v], "synthetic", "d" * 64,
                                  round=rnd, host=host)
    rows = {r.host: r for r in load([tmp_path]).rows}
    assert set(rows) == {"alpha", "beta"} and (rows["alpha"].median, rows["beta"].median) == (2.0, 20.0)
    table = hosts_table([tmp_path]).splitlines()
    assert table[0].split() == ["case", "workload", "metric", "cache", "alpha", "beta"]
    assert table[1].split() == ["npy", "scan", "scan_samples_per_s", "warm", "2", "20"]


def test_a_local_cluster_runs_units_without_the_nanny_environment(tmp_path):
    """--cluster local:N: a LocalCluster's nanny sets MALLOC_TRIM_THRESHOLD_ (npy scans 5x slower),
    thread caps and a fixed hash seed; units start without them, as locally."""
    done = subprocess.run([sys.executable, "-m", "fmtbench", "run", "--cluster", "local:1", "-d", "synthetic",
                           "--n", "500", "-p", "quick", "-c", "npy", "-w", "scan", "--rounds", "1",
                           "--results", str(tmp_path / "r"), "--no-report"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180,
                          env=dict(os.environ, FMTBENCH_OFFLINE="1", DASK_TEMPORARY_DIRECTORY=str(tmp_path / "dask")))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [_unit(r) for r in _records(tmp_path / "r", "done")] == [("npy", "scan", "warm", 0)]
    (worker,) = _records(tmp_path / "r", "provenance")[0]["machine"]["executor"]["workers"].values()
    env = worker["executor"]["environment"]
    assert "MALLOC_TRIM_THRESHOLD_" not in env and "OMP_NUM_THREADS" not in env
    assert worker["executor"]["hash_seed"] == "round + 1"


def test_many_clients_read_one_shared_file_at_once_and_each_count_is_stored_once(shared_cluster, tmp_path):
    """-w clients --clients 1,2: one client per worker, both reading the one file on shared storage
    from one start; each (pattern, count) stored once, the 2-client record naming both workers."""
    from fmtbench.metrics import READER_PATTERNS, clients_metric

    address, _, names = shared_cluster
    results, shared = tmp_path / "results", tmp_path / "shared"
    done = subprocess.run([sys.executable, "-m", "fmtbench", "run", "--cluster", address, "-d", "synthetic",
                           "--n", "2000", "-p", "quick", "-c", "npy", "-w", "clients", "--clients", "1,2",
                           "--rounds", "1", "--results", str(results), "--data-dir", str(shared),
                           "--report", str(tmp_path / "r.html")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, FMTBENCH_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [_unit(r) for r in _records(results, "done")] == [("npy", "clients", "warm", 0)]
    assert _records(results, "failure") == []
    meas = _records(results, "measurement")
    assert Counter(r["metric"] for r in meas) == {clients_metric(p, n): 1 for p in READER_PATTERNS for n in (1, 2)}
    for r in meas:
        x = r["extra"]
        n, clients = x["clients"], x["per_client"]
        assert r["metric"] == clients_metric(x["pattern"], n) and len(clients) == n
        assert len(set(x["workers"])) == n and set(x["workers"]) <= set(names.values())
        assert all(c["samples"] > 0 and c["verified"] for c in clients)  # each checked its batches' data
        assert len({c["path"] for c in clients}) == 1 and clients[0]["path"].startswith(str(shared))
        assert sum(c["samples"] for c in clients) == x["samples"]
        assert r["median"] == pytest.approx(x["samples"] / x["wall_s"])  # aggregate: all over first start-last end
        assert all(0 <= c["start_s"] < c["end_s"] <= x["wall_s"] + 1e-9 for c in clients)
        assert r["host"] == os.uname().nodename and x["hosts"] == [r["host"]]
        if x["pattern"] == "scan":  # disjoint shards, each read again until the window ends
            assert x["samples"] >= 2000 and x["wall_s"] >= x["window_s"]
    (two,) = [r for r in meas if r["metric"] == clients_metric("random", 2)]
    assert set(two["extra"]["workers"]) == set(names.values())
    html = (tmp_path / "r.html").read_text()
    assert 'id="many-clients"' in html and "from 1 to 2 clients" in html
