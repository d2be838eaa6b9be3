"""Lance quirks: a plain Lance dataset, ``take`` keeps the order asked, options shape the files."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

lance = pytest.importorskip("lance")
pa = pytest.importorskip("pyarrow")

from conftest import make_split, write  # noqa: E402
from fmtbench.errors import FormatError  # noqa: E402
from fmtbench.formats import get_case  # noqa: E402


def test_the_adapter_module_imports_the_real_library_lazily():
    code = ("import sys; import fmtbench.formats.lance as m; assert 'lance' not in sys.modules; "
            "import lance; print(lance.__file__, m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    library, adapter = out.stdout.split()
    assert library != adapter and "site-packages" in library and adapter.endswith("formats/lance.py")


def test_dataset_opens_with_plain_lance(tmp_path, split):
    _, path = write("lance", tmp_path, split)
    ds = lance.dataset(str(path))
    assert ds.schema.names == ["label", "image"]
    assert ds.schema.field("image").type == pa.binary(28 * 28)
    assert ds.schema.field("label").type == pa.int64()
    meta = json.loads(ds.schema.metadata[b"fmtbench"])
    assert meta == {"shape": [28, 28], "dtype": "|u1", "rows": len(split)}
    t = ds.take([5, 3], columns=["label", "image"])
    image = np.frombuffer(t["image"][0].as_py(), np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(image, split.images[5])
    assert t["label"].to_pylist() == split.labels[[5, 3]].tolist()


def test_take_returns_the_order_asked_with_duplicates(tmp_path, split):
    """The adapter relies on it: Lance's take neither sorts nor drops repeated indices."""
    _, path = write("lance/file64", tmp_path, split)
    idx = np.random.default_rng(3).integers(0, len(split), size=500)
    labels = lance.dataset(str(path)).take(idx.tolist(), columns=["label"])["label"].to_numpy()
    np.testing.assert_array_equal(labels, split.labels[idx])


def test_options_shape_the_dataset(tmp_path, split):
    _, path = write("lance/file64-v2.0", tmp_path / "a", split)
    ds = lance.dataset(str(path))
    assert [f.count_rows() for f in ds.get_fragments()] == [64, 64, 64, 64, 44]
    assert ds.data_storage_version == "2.0"
    _, plain = write("lance", tmp_path / "b", split)
    assert len(lance.dataset(str(plain)).get_fragments()) == 1
    assert get_case("lance/file1048576").case_id == "lance"  # Lance's own default


def test_zstd_stores_variable_width_images_in_zstd_frames(tmp_path):
    split = make_split(n=400)
    case, path = write("lance/zstd", tmp_path / "c", split)
    _, plain = write("lance", tmp_path / "p", split)
    field = lance.dataset(str(path)).schema.field("image")
    assert field.type == pa.binary() and field.metadata == {b"lance-encoding:compression": b"zstd"}
    (data,) = path.glob("data/*.lance")
    assert data.read_bytes().count(bytes.fromhex("28b52ffd")) == len(split)  # a zstd frame per image
    (plain_data,) = plain.glob("data/*.lance")
    assert data.stat().st_size < 0.8 * plain_data.stat().st_size
    idx = np.array([399, 0, 7, 7, 250])
    with case.open(path) as r:
        images, labels = r.read(idx)
        scanned = np.concatenate([b[0] for b in r.scan(128)])
    np.testing.assert_array_equal(images, split.images[idx])
    np.testing.assert_array_equal(labels, split.labels[idx])
    np.testing.assert_array_equal(scanned, split.images)


def test_other_dtypes_and_channels(tmp_path):
    split = make_split(n=90, shape=(4, 3, 2), seed=5, dtype=np.float32)
    case, path = write("lance/file32", tmp_path, split)
    idx = np.array([89, 0, 31, 32, 33, 31])
    with case.open(path) as r:
        images, labels = r.read(idx)
        assert images.flags.writeable and images.dtype == np.float32
        assert [len(b[1]) for b in r.scan(40)] == [40, 40, 10]
    np.testing.assert_array_equal(images, split.images[idx])


@pytest.mark.parametrize("victim", ["_transactions/*.txn", "_versions/latest_version_hint.json"])
def test_a_cut_file_that_lance_never_reads_is_still_caught(tmp_path, split, victim):
    case, path = write("lance", tmp_path, split)
    (target,) = path.glob(victim)
    lance.dataset(str(path))  # Lance alone opens it either way
    target.write_bytes(target.read_bytes()[:-1])
    lance.dataset(str(path)).take([0], columns=["label"])
    with pytest.raises(FormatError, match=str(path)):
        case.open(path)


def test_lance_dataset_not_written_by_fmtbench_is_a_format_error(tmp_path):
    path = tmp_path / "other.lance"
    lance.write_dataset(pa.table({"x": [1, 2, 3]}), str(path))
    with pytest.raises(FormatError, match="not an fmtbench lance dataset"):
        get_case("lance").open(path)
