"""How shuffled an order a streaming pipeline delivered, beside how fast it delivered it.

A shuffle buffer over a file's own order trades randomness for throughput: with a buffer of B
samples, a sample leaves at most ~B positions from where the file holds it. Three scores of the
delivered order (the dataset indices of the samples, in the order the model got them), each
with the same score of a full random shuffle of the same length beside it:

- ``displacement``: the mean |position - index| over the mean a uniform random permutation gives
  at those positions (1 = displaced like a full shuffle, 0 = file order);
- ``neighbour_share``: the share of consecutive samples that lie within 1% of the dataset of each
  other in the file (a full shuffle: ~2%; file order or whole-chunk blocks: near 1);
- ``label_autocorr``: the lag-1 autocorrelation of the labels (a full shuffle: ~0; data stored
  sorted by class read in order: near 1).
"""
from __future__ import annotations

from typing import Any

import numpy as np

NEAR = 0.01  # "neighbours": within this share of the dataset of each other in the file


def indices_of(delivered: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The dataset index of every delivered image (the first, for images stored twice); a
    delivered image the dataset does not hold is a ValueError."""
    first: dict[bytes, int] = {}
    for i in range(len(images) - 1, -1, -1):
        first[images[i].tobytes()] = i
    out = np.empty(len(delivered), dtype=np.int64)
    for k, img in enumerate(delivered):
        found = first.get(np.ascontiguousarray(img, dtype=images.dtype).tobytes())
        if found is None:
            raise ValueError(f"delivered sample {k} is no image of the dataset")
        out[k] = found
    return out


def scores(order: np.ndarray, labels: np.ndarray, n: int) -> dict[str, float]:
    """The three scores of `order` (dataset indices as delivered) over a dataset of `n` samples."""
    order = np.asarray(order, dtype=np.float64)
    pos = np.arange(len(order), dtype=np.float64)
    # E|p - U| for U uniform on 0..n-1 is (p^2 + (n-1-p)^2 + ... ) / n ~ (p^2 + (n - p)^2) / (2n)
    expected = (pos ** 2 + (n - pos) ** 2) / (2 * n)
    displacement = float(np.abs(pos - order).mean() / expected.mean())
    near = float(np.mean(np.abs(np.diff(order)) <= NEAR * n)) if len(order) > 1 else float("nan")
    y = np.asarray(labels, dtype=np.float64)
    autocorr = float(np.corrcoef(y[:-1], y[1:])[0, 1]) if len(y) > 2 and y.std() > 0 else float("nan")
    return {"displacement": displacement, "neighbour_share": near, "label_autocorr": autocorr}


def quality(delivered_images: np.ndarray, delivered_labels: np.ndarray, images: np.ndarray,
            labels: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The scores of the delivered order, and of a full shuffle of the same length (``full_*``)."""
    order = indices_of(delivered_images, images)
    if not np.array_equal(labels[order], np.asarray(delivered_labels).astype(labels.dtype)):
        raise ValueError("a delivered label differs from its image's label in the dataset")
    mine = scores(order, labels[order], len(images))
    full = np.random.default_rng([seed, 3]).permutation(len(images))[:len(order)]
    ref = scores(full, labels[full], len(images))
    return {**mine, **{f"full_{k}": v for k, v in ref.items()}, "samples": len(order)}
