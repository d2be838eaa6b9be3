"""The shuffle-quality scores of a delivered order (fmtbench.workloads.shuffle)."""
from __future__ import annotations

import numpy as np
import pytest

from fmtbench.workloads.shuffle import indices_of, quality


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6000, 8, 8), dtype=np.uint8), rng.integers(0, 10, 6000)


def _buffer_order(n: int, k: int, buffer: int, seed: int = 1) -> np.ndarray:
    """What a shuffle buffer of `buffer` samples delivers over file order (tf.data's algorithm)."""
    rng, buf, out, nxt = np.random.default_rng(seed), list(range(buffer)), [], buffer
    for _ in range(k):
        j = int(rng.integers(len(buf)))
        out.append(buf[j])
        buf[j], nxt = nxt, nxt + 1
    return np.array(out)


def test_file_order_scores_zero_and_a_full_shuffle_one(data):
    images, labels = data
    plain = quality(images[:2000], labels[:2000], images, labels)
    assert plain["displacement"] == 0 and plain["neighbour_share"] == 1
    perm = np.random.default_rng(5).permutation(6000)[:2000]
    full = quality(images[perm], labels[perm], images, labels)
    assert full["displacement"] == pytest.approx(1, abs=0.05)
    assert full["neighbour_share"] == pytest.approx(0.02, abs=0.01)
    assert full["full_displacement"] == pytest.approx(1, abs=0.05)


def test_a_larger_shuffle_buffer_scores_more_shuffled(data):
    images, labels = data
    small, large = (quality(images[o], labels[o], images, labels)
                    for o in (_buffer_order(6000, 2000, 100), _buffer_order(6000, 2000, 2000)))
    assert small["displacement"] < large["displacement"] < 1
    assert small["neighbour_share"] > large["neighbour_share"]


def test_labels_sorted_by_class_show_in_the_autocorrelation(data):
    images, _ = data
    labels = np.repeat(np.arange(10), 600)  # stored sorted by class
    assert quality(images[:3000], labels[:3000], images, labels)["label_autocorr"] > 0.9


def test_a_sample_the_dataset_does_not_hold_or_a_wrong_label_is_an_error(data):
    images, labels = data
    with pytest.raises(ValueError, match="no image of the dataset"):
        indices_of(np.zeros((1, 8, 8), dtype=np.uint8) + 7, images[:10])
    with pytest.raises(ValueError, match="label differs"):
        quality(images[:5], (labels[:5] + 1) % 10, images, labels)
