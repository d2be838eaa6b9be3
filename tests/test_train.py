"""The train workload: every case trains to the in-memory baseline's exact weights.

Each training run builds and traces a small MLP (about a second on 2 cores); TensorFlow is
imported once for the whole file (~3.4 s).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import make_split
from fmtbench.formats import Reader, cases, get_case, missing_dependency
from fmtbench.formats._tfdata import scan_stream
from fmtbench.formats.hdf5 import stream_rows as hdf5_block_rows
from fmtbench.workloads.train import epoch_batches, native_pipeline, train_case, train_in_memory

if importlib.util.find_spec("tensorflow") is None:  # checked without paying for the import
    pytest.skip("the train workload needs tensorflow", allow_module_level=True)

KW = dict(model="mlp", epochs=2, batch_size=64, seed=0)  # 512 samples: 8 steps per epoch


@pytest.fixture(scope="module")
def splits():
    return make_split(512, seed=11), make_split(128, seed=12)


@pytest.fixture(scope="module")
def baseline(splits):
    return train_in_memory(*splits, **KW)


@pytest.fixture(scope="module")
def npy_path(splits, tmp_path_factory):
    case = get_case("npy")
    return case.write(splits[0], case.default_path(tmp_path_factory.mktemp("npy"))).path


def _written(case_id, split, tmp_path):
    """The case's file of `split`, or a skip when its library or adapter is not there yet."""
    hint = missing_dependency(case_id.partition("/")[0])
    if hint:
        pytest.skip(hint)
    case = get_case(case_id)
    try:
        return case, case.write(split, case.default_path(tmp_path)).path
    except NotImplementedError:
        pytest.skip(f"{case_id}: adapter not implemented yet")


class Faulty:
    """A reader wrapper that serves the wrong data with the right shape, through the same
    shared-order pipeline as every reader."""

    thread_safe = False
    tf_batches = Reader.tf_batches
    checked_order = Reader.checked_order

    def __init__(self, reader, fault):
        self.reader, self.fault, self.image_shape = reader, fault, reader.image_shape
        self.image_dtype = reader.image_dtype

    def __len__(self):
        return len(self.reader)

    def checked(self, indices):
        return self.reader.checked(indices)

    def read_checked(self, indices):
        indices = np.asarray(indices)
        if self.fault == "mirrored":  # wrong samples: index i serves n-1-i
            return self.reader.read(len(self) - 1 - indices)
        return self.reader.read(indices[::-1])  # right samples, reversed within the batch


def test_epoch_batches_are_one_seeded_permutation_per_epoch():
    e0, e1 = epoch_batches(100, 16, 0, 7), epoch_batches(100, 16, 1, 7)
    assert e0.shape == (6, 16) and len(set(e0.ravel())) == 96  # full batches, no repeats
    assert np.array_equal(e0, epoch_batches(100, 16, 0, 7))
    assert not np.array_equal(e0, e1)
    assert np.array_equal(epoch_batches(100, 16, 1, 7, steps_per_epoch=2), e1[:2])


def test_baseline_measures_what_it_trained(baseline):
    assert baseline.steps_per_epoch == 8 and len(baseline.epoch_s) == 2
    assert all(s > 0 for s in baseline.samples_per_s)
    assert baseline.data_wait_share == []  # the in-graph pipeline cannot be timed
    assert 0 <= baseline.final_accuracy <= 1 and np.isfinite(baseline.final_loss)
    assert len(baseline.weights_digest) == 64


def _one_per_format() -> list[str]:
    """The first representative case of each format: feeding is format-independent, and the
    conformance suite already checks every case's reads."""
    first: dict[str, str] = {}
    for c in cases(full=False):
        first.setdefault(c.name, c.case_id)
    # and the formats whose adapters bring their own pipeline: TFRecord parses in the graph,
    # contiguous HDF5 is gathered from its mapped bytes, a thread-safe NPY reads two at a time
    return sorted(set(first.values()) | {"hdf5", "tfrecord", "tfrecord/gzip", "npy"})


# (not `case_id`: conftest parametrizes that name over the conformance grid)
@pytest.mark.parametrize("train_case_id", _one_per_format())
def test_every_case_trains_to_the_baseline_weights(train_case_id, splits, baseline, tmp_path):
    case, path = _written(train_case_id, splits[0], tmp_path)
    with case.open(path) as reader:
        result = train_case(reader, splits[1], **KW)
    assert result.weights_digest == baseline.weights_digest
    assert result.final_loss == baseline.final_loss
    assert len(result.data_wait_share) == 2
    # wait is a share of the pass; reads may overlap each other and straddle passes
    assert all(0 <= w <= 1 for w in result.data_wait_share) and all(r >= 0 for r in result.data_read_share)
    assert "tf.data thread" in result.pipeline


def test_warm_up_epochs_are_trained_but_not_reported(splits, baseline, npy_path):
    """1 warm-up + 1 timed epoch trains what 2 epochs train (the same order, the same weights),
    and reports the last epoch only, for the baseline and a case alike."""
    kw = {**KW, "epochs": 1, "warmup_epochs": 1}
    memory = train_in_memory(*splits, **kw)
    with get_case("npy").open(npy_path) as reader:
        case = train_case(reader, splits[1], **kw)
    for r in (memory, case):
        assert r.weights_digest == baseline.weights_digest and r.final_loss == baseline.final_loss
        assert len(r.epoch_s) == len(r.samples_per_s) == 1 and r.warmup_epochs == 1
    assert len(case.data_wait_share) == len(case.data_read_share) == 1
    with pytest.raises(ValueError, match="warmup_epochs >= 0"):
        train_in_memory(*splits, **{**kw, "warmup_epochs": -1})


def test_another_seed_gives_other_weights(splits, baseline):
    assert train_in_memory(*splits, **{**KW, "seed": 1}).weights_digest != baseline.weights_digest


@pytest.mark.parametrize("fault", ["mirrored", "reversed"])
def test_a_reader_serving_a_wrong_order_is_caught(fault, splits, baseline, npy_path):
    # even the same samples in another order within each batch change the float sums
    with get_case("npy").open(npy_path) as reader:
        result = train_case(Faulty(reader, fault), splits[1], **KW)
    assert result.weights_digest != baseline.weights_digest


@pytest.mark.parametrize("native_case_id", ["npy", "hdf5/chunk64", "tfrecord/gzip"])
def test_native_pipeline_runs(native_case_id, splits, tmp_path):
    case, path = _written(native_case_id, splits[0], tmp_path)
    out = native_pipeline(case, path, model="mlp", batch_size=64, steps=12, seed=0)
    assert len(out["samples_per_s"]) == 4 and min(out["samples_per_s"]) > 0  # 11 steady steps in 4 segments
    assert out["steps"] == 12 and out["order_identical"] is False


def test_segment_rates_split_the_steady_steps_evenly():
    from fmtbench.workloads.native import segment_rates

    stamps = [0.0, 1.0, 2.0, 3.0, 5.0, 7.0]  # 5 steps: 1 s each, then 2 s each
    assert segment_rates(stamps, 10, segments=2) == [pytest.approx(10.0), pytest.approx(30 / 5)]
    assert segment_rates(stamps[:2], 10) == [10.0]


def test_a_format_brings_its_own_streaming_pipeline(splits, tmp_path):
    # native_pipeline knows no format: it runs whatever the adapter's native_dataset returns
    npy = get_case("npy")
    path = npy.write(splits[0], npy.default_path(tmp_path)).path
    calls = []

    class Own(type(npy)):
        def native_dataset(self, path, batch_size, shuffle_buffer, seed):
            calls.append((batch_size, shuffle_buffer, seed))
            native = scan_stream(self.open(path), batch_size, shuffle_buffer, seed, block=256)
            native.describe = "its own"
            return native

    out = native_pipeline(Own(), path, model="mlp", batch_size=32, steps=4, seed=3, shuffle_buffer=100)
    assert calls == [(32, 100, 3)] and out["pipeline"] == "its own"


@pytest.mark.parametrize("chunk, rows", [(None, 1024), (1, 1024), (64, 1024), (1000, 2000), (4096, 4096)])
def test_native_hdf5_reads_blocks_of_whole_chunks(chunk, rows):
    # one 1-row chunk per read made hdf5/chunk1's native pipeline run at 2.4k samples/s
    assert hdf5_block_rows(chunk) == rows
