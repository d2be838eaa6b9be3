"""CSV quirks: opens in pandas, header names give shape and dtype, floats round-trip exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_split
from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError
from fmtbench.formats import get_case


def write(tmp_path, split):
    case = get_case("csv")
    return case, case.write(split, case.default_path(tmp_path)).path


def read_all(case, path):
    with case.open(path) as r:
        scanned = np.concatenate([b[0] for b in r.scan(7)])
        images, labels = r.read(np.arange(len(r)))
    np.testing.assert_array_equal(scanned, images)
    return images, labels


def test_opens_in_pandas_with_the_documented_columns(tmp_path, split):
    _, path = write(tmp_path, split)
    df = pd.read_csv(path)
    assert list(df.columns[:3]) == ["label", "p_0_0:uint8", "p_0_1:uint8"]
    assert df.columns[-1] == "p_27_27:uint8" and df.shape == (300, 1 + 28 * 28)
    np.testing.assert_array_equal(df.iloc[:, 1:].to_numpy().reshape(-1, 28, 28), split.images)
    np.testing.assert_array_equal(df["label"].to_numpy(), split.labels)


def test_channel_images_name_row_col_channel(tmp_path):
    split = make_split(n=20, shape=(6, 5, 3), seed=4)
    case, path = write(tmp_path, split)
    header = path.read_text().splitlines()[0].split(",")
    assert header[1:4] == ["p_0_0_0:uint8", "p_0_0_1:uint8", "p_0_0_2:uint8"]
    assert header[-1] == "p_5_4_2:uint8"
    with case.open(path) as r:
        assert r.image_shape == (6, 5, 3)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floats_round_trip_bit_exact(tmp_path, dtype):
    bits = np.random.default_rng(0).integers(0, 256, 240 * np.dtype(dtype).itemsize, dtype=np.uint8)
    images = bits.view(dtype).reshape(20, 4, 3)  # every exponent, subnormals and -0.0 included
    images[np.isnan(images)] = np.nan  # NaN comes back as the standard NaN (no sign or payload)
    images.flat[:3] = [np.inf, -np.inf, -0.0]
    split = Split("train", images, np.arange(20))
    images_back, labels = read_all(*write(tmp_path, split))
    assert images_back.dtype == dtype
    np.testing.assert_array_equal(images_back.view(np.uint8), images.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64, np.uint16, np.uint64])
def test_integer_extremes_round_trip(tmp_path, dtype):
    info = np.iinfo(dtype)
    images = np.array([[[info.min, info.max], [0, 1]]] * 3, dtype=dtype)
    split = Split("train", images, np.array([-5, 0, 2**62]))
    images_back, labels = read_all(*write(tmp_path, split))
    np.testing.assert_array_equal(images_back, images)
    np.testing.assert_array_equal(labels, [-5, 0, 2**62])


def test_unsupported_dtypes_are_refused_and_leave_nothing(tmp_path):
    split = Split("train", np.zeros((2, 3, 3), dtype=np.bool_), np.zeros(2, dtype=np.int64))
    target = get_case("csv").default_path(tmp_path)
    with pytest.raises(ValueError, match="integer or float16/32/64"):
        get_case("csv").write(split, target)
    assert not target.exists()
    with pytest.raises(ValueError, match="images must be integers, floats or booleans"):
        Split("train", np.zeros((2, 3, 3), dtype=np.complex64), np.zeros(2, dtype=np.int64))  # no split at all


def test_index_cost_is_one_offset_per_row(tmp_path, split):
    case, path = write(tmp_path, split)
    with case.open(path) as r:
        assert r.index_seconds > 0 and r.index_bytes == 8 * (len(split) + 1)


def test_cut_inside_a_row_is_an_error_but_at_a_row_boundary_a_shorter_file(tmp_path, split):
    case, path = write(tmp_path, split)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(FormatError, match="no newline: truncated"):
        case.open(path)
    path.write_bytes(data[: data.index(b"\n", len(data) // 2) + 1])  # documented: not detected
    with case.open(path) as r:
        assert 0 < len(r) < len(split)
    assert not case.detects("truncated") and not case.detects("flipped")


def test_foreign_or_garbled_rows_are_format_errors(tmp_path, split):
    case, path = write(tmp_path, split)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([b"label,a,b"] + lines[1:]))
    with pytest.raises(FormatError, match="is not p_<row>_<col>"):
        case.open(path)
    path.write_bytes(b"\n".join(lines[:5] + [b"1,2,3"] + lines[6:]))  # row 4 is short
    with case.open(path) as r:
        r.read([0, 3])
        with pytest.raises(FormatError, match="columns"):
            r.read([4])
        with pytest.raises(FormatError, match="columns"):
            list(r.scan(64))
    path.write_bytes(b"\n".join(lines[:5] + [b""] + lines[6:]))  # row 4 is blank
    with case.open(path) as r, pytest.raises(FormatError, match="decoded shapes"):
        r.read([3, 4])
