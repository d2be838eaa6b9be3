"""Dataset loaders on tiny fake files: search order, errors that say where they looked, digests."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fmtbench import datasets
from fmtbench.datasets import fashion_mnist, idx, mnist
from fmtbench.errors import DatasetNotFoundError, UnknownNameError

SYSTEM_FASHION = Path(fashion_mnist.SYSTEM_DIR)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    """No network, an empty Keras home and an empty system folder unless a test sets them."""
    monkeypatch.setenv("FMTBENCH_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
    monkeypatch.setenv(fashion_mnist.SYSTEM_DIR_ENV, str(tmp_path_factory.mktemp("no_system_copy")))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)


def fake_arrays(seed: int = 0, n_train: int = 30, n_test: int = 12, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, *shape), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
            rng.integers(0, 256, (n_test, *shape), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))


def write_idx_folder(folder: Path, arrays, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(idx.FILES, arrays):
        idx.write_idx(folder / (name + (".gz" if gz else "")), array)
    return folder


def write_mnist_npz(path: Path, arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(mnist.NPZ_KEYS, arrays)))
    return path


def assert_matches(ds: datasets.Dataset, arrays) -> None:
    x_train, y_train, x_test, y_test = arrays
    np.testing.assert_array_equal(ds.train.images, x_train)
    np.testing.assert_array_equal(ds.train.labels, y_train)
    np.testing.assert_array_equal(ds.test.images, x_test)
    np.testing.assert_array_equal(ds.test.labels, y_test)
    assert ds.train.labels.dtype == np.int64 and ds.train.images.dtype == np.uint8


# --- IDX reader -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(array=hnp.arrays(st.sampled_from(["u1", "i1", ">i2", "<i4", "f4", ">f8"]),
                        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
       gz=st.booleans())
def test_idx_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    idx.write_idx(path, array)
    back = idx.read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("damage", ["magic", "truncated", "trailing", "empty"])
def test_corrupt_idx_is_a_value_error_naming_the_file(tmp_path, gz, damage):
    idx.write_idx(tmp_path / "good.idx", np.zeros((3, 4, 4), np.uint8))
    raw = (tmp_path / "good.idx").read_bytes()
    bad = {"magic": b"\x00\x00\x08\x09" + raw[4:], "truncated": raw[:-5],
           "trailing": raw + b"\x00", "empty": b""}[damage]
    path = tmp_path / ("bad-idx3-ubyte.gz" if gz else "bad-idx3-ubyte")
    path.write_bytes(gzip.compress(bad) if gz else bad)
    with pytest.raises(ValueError, match="bad-idx3-ubyte"):
        idx.read_idx(path, ndim=3, dtype="u1")


def test_truncated_gzip_stream_is_a_value_error(tmp_path):
    path = tmp_path / "cut.gz"
    idx.write_idx(path, np.arange(1000, dtype=np.uint8).reshape(10, 10, 10))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="cut.gz"):
        idx.read_idx(path)


def test_idx_reader_checks_what_the_caller_expects(tmp_path):
    idx.write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 3 dimensions"):
        idx.read_idx(tmp_path / "labels", ndim=3)
    with pytest.raises(ValueError, match="expected dtype float32"):
        idx.read_idx(tmp_path / "labels", dtype="f4")


def test_images_and_labels_of_different_lengths(tmp_path):
    x_train, y_train, x_test, y_test = fake_arrays()
    folder = write_idx_folder(tmp_path / "idx", (x_train, y_train[:-1], x_test, y_test))
    with pytest.raises(ValueError, match="labels"):
        datasets.load("mnist", path=folder)


# --- MNIST and Fashion-MNIST search order ------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_via_explicit_path(tmp_path, name, gz):
    arrays = fake_arrays()
    ds = datasets.load(name, path=write_idx_folder(tmp_path / "idx", arrays, gz))
    assert_matches(ds, arrays)
    assert ds.name == name and str(tmp_path / "idx") in ds.provenance and "IDX" in ds.provenance


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_npz_via_explicit_path(tmp_path, name):
    arrays = fake_arrays(1)
    ds = datasets.load(name, path=write_mnist_npz(tmp_path / "mine.npz", arrays))
    assert_matches(ds, arrays)
    assert str(tmp_path / "mine.npz") in ds.provenance


def test_mnist_from_keras_cache_checks_keras_sha256(tmp_path, monkeypatch):
    arrays = fake_arrays(2)
    cache = write_mnist_npz(tmp_path / "kh" / "datasets" / "mnist.npz", arrays)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    with pytest.raises(DatasetNotFoundError, match="sha256"):  # a fake file is not Keras' file
        datasets.load("mnist")
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(cache.read_bytes()).hexdigest())
    ds = datasets.load("mnist")
    assert_matches(ds, arrays)
    assert "Keras cache" in ds.provenance and str(cache) in ds.provenance
    assert {a.name: a for a in datasets.availability()}["mnist"].available


def test_fashion_mnist_search_order(tmp_path, monkeypatch):
    cached, system = fake_arrays(3), fake_arrays(4)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    write_idx_folder(tmp_path / "kh" / "datasets" / "fashion-mnist", cached)
    assert_matches(datasets.load("fashion-mnist"), cached)
    monkeypatch.setenv(fashion_mnist.SYSTEM_DIR_ENV, str(write_idx_folder(tmp_path / "sys", system)))
    ds = datasets.load("fashion-mnist")
    assert_matches(ds, system)
    assert "system copy" in ds.provenance
    explicit = fake_arrays(5)
    assert_matches(datasets.load("fashion-mnist", path=write_idx_folder(tmp_path / "mine", explicit)), explicit)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_missing_dataset_lists_every_place_looked(name):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load(name)
    message = str(info.value)
    keras_home = os.environ["KERAS_HOME"]
    assert keras_home in message and "FMTBENCH_OFFLINE=1" in message and "--dataset-path" in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" in message
    if name == "fashion-mnist":
        assert os.environ[fashion_mnist.SYSTEM_DIR_ENV] in message
        assert len(info.value.looked) == 3
    else:
        assert "fashion-mnist" in message and len(info.value.looked) == 2


def test_explicit_path_that_is_not_there(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        datasets.load("mnist", path=tmp_path / "nope.npz")
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load("mnist", path=tmp_path)


def test_failed_download_becomes_dataset_not_found(monkeypatch):
    monkeypatch.delenv("FMTBENCH_OFFLINE")

    def unreachable(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("urllib.request.urlopen", unreachable)
    with pytest.raises(DatasetNotFoundError, match="failed: URLError.*no route to host"):
        datasets.load("mnist")


def test_download_is_checked_and_saved_atomically(tmp_path, monkeypatch):
    monkeypatch.delenv("FMTBENCH_OFFLINE")
    arrays = fake_arrays(6)
    payload = write_mnist_npz(tmp_path / "served.npz", arrays).read_bytes()
    asked = []

    def serve(url, timeout):
        asked.append((url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr("urllib.request.urlopen", serve)
    cache = mnist.keras_datasets_dir() / "mnist.npz"
    with pytest.raises(DatasetNotFoundError, match="sha256"):  # Keras' hash does not match the fake
        datasets.load("mnist")
    assert not cache.exists() and list(cache.parent.iterdir()) == []
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(payload).hexdigest())
    ds = datasets.load("mnist")
    assert_matches(ds, arrays)
    assert cache.read_bytes() == payload and "downloaded" in ds.provenance
    assert asked[-1] == (mnist.URL, mnist.DOWNLOAD_TIMEOUT_S)


def test_fashion_mnist_download_is_checked_on_content(tmp_path, monkeypatch):
    monkeypatch.delenv("FMTBENCH_OFFLINE")
    arrays = fake_arrays(7)
    served = write_idx_folder(tmp_path / "served", arrays)
    monkeypatch.setattr("urllib.request.urlopen",
                        lambda url, timeout: open(served / url.rsplit("/", 1)[1], "rb"))
    cache = mnist.keras_datasets_dir() / "fashion-mnist"
    with pytest.raises(DatasetNotFoundError, match="digest"):
        datasets.load("fashion-mnist")
    assert not cache.exists()
    monkeypatch.setattr(fashion_mnist, "DIGEST", datasets.Dataset(
        "x", datasets.Split("train", *arrays[:2]), datasets.Split("test", *arrays[2:]), "").digest)
    ds = datasets.load("fashion-mnist")
    assert_matches(ds, arrays)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{f}.gz" for f in idx.FILES)
    assert "downloaded" in ds.provenance


def test_corrupt_npz_names_the_file(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="mnist.npz"):
        datasets.load("mnist", path=tmp_path / "mnist.npz")
    np.savez(tmp_path / "other.npz", images=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"missing keys.*found \['images'\]"):
        datasets.load("mnist", path=tmp_path / "other.npz")


# --- synthetic --------------------------------------------------------------------------------

def test_synthetic_is_deterministic_and_seeded():
    a, b = datasets.load("synthetic", n=200, seed=7), datasets.load("synthetic", n=200, seed=7)
    assert a.digest == b.digest
    assert datasets.load("synthetic", n=200, seed=8).digest != a.digest
    assert "seed=7" in a.provenance and "n=200" in a.provenance


def test_synthetic_golden_digest():
    # Only exactly rounded arithmetic is used, so this holds on every machine.
    ds = datasets.load("synthetic", n=300, n_test=50, seed=0)
    assert ds.digest == SYNTHETIC_DIGEST


SYNTHETIC_DIGEST = "672c13afd31bef35d77666e096c4f103f5d0ad51ec0e61f0d5476a940fe8d687"


@pytest.mark.parametrize("shape, dtype", [((28, 28), "uint8"), ((16, 20, 3), "float32"), ("8x8", "int32")])
def test_synthetic_shapes_and_statistics(shape, dtype):
    ds = datasets.load("synthetic", n=400, n_test=40, shape=shape, dtype=dtype)
    hw = (8, 8) if shape == "8x8" else shape
    assert ds.train.images.shape == (400, *hw) and ds.test.images.shape == (40, *hw)
    assert ds.train.images.dtype == np.dtype(dtype)
    assert set(np.unique(ds.train.labels)) == set(range(10))
    assert 0.5 < float((ds.train.images == 0).mean()) < 0.95  # mostly background, like MNIST
    top = 1.0 if dtype == "float32" else 255
    assert ds.train.images.min() == 0 and top / 2 < ds.train.images.max() <= top


def test_synthetic_rejects_bad_parameters():
    with pytest.raises(ValueError, match="dtype"):
        datasets.load("synthetic", n=10, dtype="int8")
    with pytest.raises(ValueError, match="shape"):
        datasets.load("synthetic", n=10, shape=(28,))


# --- user arrays ------------------------------------------------------------------------------

def test_arrays_npz_with_test_split(tmp_path):
    arrays = fake_arrays(8)
    ds = datasets.load("arrays", path=write_mnist_npz(tmp_path / "mine.npz", arrays))
    assert_matches(ds, arrays)


def test_arrays_npz_holds_out_last_tenth(tmp_path):
    x, y = fake_arrays(9, n_train=25)[:2]
    np.savez(tmp_path / "d.npz", images=x, labels=y.reshape(-1, 1))
    ds = datasets.load("arrays", path=tmp_path / "d.npz")
    assert_matches(ds, (x[:23], y[:23], x[23:], y[23:]))
    assert "last 2 of 25" in ds.provenance


@pytest.mark.parametrize("images_name, labels_name", [("images.npy", "labels.npy"),
                                                       ("train_images.npy", "train_labels.npy"),
                                                       ("x.npy", "x_labels.npy")])
def test_arrays_npy_pair(tmp_path, images_name, labels_name):
    x, y = fake_arrays(10, n_train=40, shape=(6, 5, 3))[:2]
    np.save(tmp_path / images_name, x)
    np.save(tmp_path / labels_name, y)
    ds = datasets.load("arrays", path=tmp_path / images_name)
    assert_matches(ds, (x[:36], y[:36], x[36:], y[36:]))


def test_arrays_npy_without_labels(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DatasetNotFoundError, match="labels.npy"):
        datasets.load("arrays", path=tmp_path / "images.npy")


def test_arrays_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    arrays = fake_arrays(11)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        for key, array in zip(mnist.NPZ_KEYS, arrays):
            f[key] = array
    assert_matches(datasets.load("arrays", path=tmp_path / "d.h5"), arrays)
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["pixels"], f["targets"] = arrays[0], arrays[1]
    with pytest.raises(ValueError, match=r"e\.h5.*found \['pixels', 'targets'\]"):
        datasets.load("arrays", path=tmp_path / "e.h5")


def test_arrays_needs_a_path():
    with pytest.raises(DatasetNotFoundError, match="--dataset-path"):
        datasets.load("arrays")


# --- registry ---------------------------------------------------------------------------------

def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError, match="valid: arrays, fashion-mnist, mnist, synthetic"):
        datasets.load("cifar10")
    assert datasets.names() == ["arrays", "fashion-mnist", "mnist", "synthetic"]


def test_unknown_option_lists_valid_options():
    with pytest.raises(UnknownNameError, match="valid: dtype, n, n_test, seed, shape"):
        datasets.load("synthetic", sead=1)


def test_n_limits_splits_and_is_recorded(tmp_path):
    arrays = fake_arrays(12, n_train=30, n_test=12)
    ds = datasets.load("mnist", path=write_idx_folder(tmp_path / "idx", arrays), n=20)
    assert (len(ds.train), len(ds.test)) == (20, 12) and ds.meta["n"] == 20
    assert "first 20 train and 12 test samples" in ds.provenance
    np.testing.assert_array_equal(ds.train.images, arrays[0][:20])


def test_availability_never_downloads():
    found = {a.name: a for a in datasets.availability()}
    assert set(found) == set(datasets.names())
    assert found["synthetic"].available and not found["arrays"].available
    assert not found["mnist"].available and not found["fashion-mnist"].available


# --- the real Fashion-MNIST -------------------------------------------------------------------

@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_system_copy(monkeypatch):
    monkeypatch.delenv(fashion_mnist.SYSTEM_DIR_ENV)
    ds = datasets.load("fashion-mnist")
    assert ds.train.images.shape == (60000, 28, 28) and ds.test.images.shape == (10000, 28, 28)
    assert ds.train.images.dtype == np.uint8
    assert np.bincount(ds.train.labels).tolist() == [6000] * 10
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10
    assert str(SYSTEM_FASHION) in ds.provenance
    assert ds.digest == fashion_mnist.DIGEST == (
        "cbe5b1a426ee5a6ff1c5fa9fe385e1b9d4a7fceee387cf4190d1e977bb5b00ae")


def _damaged_inputs(tmp: Path) -> dict[str, tuple[str, Path]]:
    """Bad dataset files a user may hand the CLI: (dataset option, path) by what is wrong."""
    arrays = fake_arrays()
    out = {}
    for what in ("wrong magic", "truncated", "cut gzip stream"):
        folder = write_idx_folder(tmp / what.replace(" ", "_"), arrays)
        victim = folder / "train-images-idx3-ubyte.gz"
        raw = gzip.decompress(victim.read_bytes())
        if what == "wrong magic":
            victim.write_bytes(gzip.compress(raw[:2] + b"\x99" + raw[3:]))
        elif what == "truncated":
            victim.write_bytes(gzip.compress(raw[: len(raw) // 2]))
        else:
            victim.write_bytes(victim.read_bytes()[:-40])
        out[f"idx {what}"] = ("auto", folder)
    text = tmp / "text.npz"
    text.write_text("not an archive\n")
    out["text as mnist npz"] = ("auto", text)
    out["text as arrays npz"] = ("arrays", text)
    objects = tmp / "objects.npz"
    np.savez(objects, images=np.array([object()] * 3, dtype=object), labels=np.arange(3))
    out["object arrays"] = ("arrays", objects)
    return out


def test_bad_dataset_files_are_one_line_through_the_cli(tmp_path):
    """Each bad file ends in one `error:` line naming it, exit 2, no traceback, and never
    numpy's advice to unpickle (allow_pickle)."""
    import subprocess
    import sys

    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    for what, (name, path) in _damaged_inputs(tmp_path).items():
        done = subprocess.run([sys.executable, "-m", "fmtbench", "convert", "-d", name, "--dataset-path", str(path),
                               "-c", "npy", "--out", str(tmp_path / "out.npy")],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == 2, (what, done.stderr)
        assert "Traceback" not in done.stderr and "allow_pickle" not in done.stderr, (what, done.stderr)
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and str(path.name) in errors[0], (what, done.stderr)
        assert not (tmp_path / "out.npy").exists()
