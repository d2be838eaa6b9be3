"""Synthetic MNIST-like data: seeded, any size and shape, identical on every machine.

Each of the 10 classes is a template of a few soft strokes; each sample jitters its class's
strokes and ink, so images are mostly zeros with smooth blobs (MNIST-like compressibility) and
labels are learnable. Only uniform draws and +, -, *, / are used (no exp or normal draws, whose
last bits can differ between libm/SIMD builds), so the bytes, and the digest, are the same on
every machine for the same parameters.
"""
from __future__ import annotations

import numpy as np

from ._base import Dataset, Split, fits

NAME = "synthetic"
CLASSES = 10
STROKES = 3
THRESHOLD = 0.3  # field values below this are background (0), as MNIST's ~80% zero pixels
CHUNK = 4096  # samples per vectorized block; results do not depend on it


def parse_shape(shape: tuple[int, ...] | list[int] | str) -> tuple[int, ...]:
    """(H, W) or (H, W, C) from a tuple or a string such as "28x28" or "32x32x3"."""
    if isinstance(shape, str):
        shape = tuple(int(s) for s in shape.lower().replace(",", "x").split("x") if s.strip())
    shape = tuple(int(d) for d in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"synthetic shape must be (H, W) or (H, W, C) of positive sizes, got {shape}")
    return shape


def _templates(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 2])
    h, w = shape[:2]
    centers = (0.3 + 0.4 * rng.random((CLASSES, STROKES, 2))) * [h, w]
    radii = (0.12 + 0.18 * rng.random((CLASSES, STROKES, 2))) * [h, w]
    colors = 0.5 + 0.5 * rng.random((CLASSES, shape[2] if len(shape) == 3 else 1))
    return centers, radii, colors


def _split(name: str, n: int, rng: np.random.Generator, templates, shape, dtype) -> Split:
    centers, radii, colors = templates
    h, w = shape[:2]
    labels = rng.integers(0, CLASSES, size=n)
    jitter = (rng.random((n, STROKES, 2)) - 0.5) * [0.15 * h, 0.15 * w]
    ink = 200.0 + 150.0 * rng.random(n)
    c = centers[labels] + jitter
    r = radii[labels] * (0.8 + 0.4 * rng.random((n, STROKES, 2)))
    # float32 halves the memory traffic; its +, -, *, / are as exactly rounded as float64's.
    c, r, ink = c.astype(np.float32), r.astype(np.float32), ink.astype(np.float32)
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    images = np.empty((n, *shape), dtype=dtype)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        py = np.maximum(0.0, 1.0 - np.square((ys - c[lo:hi, :, 0, None]) / r[lo:hi, :, 0, None]))
        px = np.maximum(0.0, 1.0 - np.square((xs - c[lo:hi, :, 1, None]) / r[lo:hi, :, 1, None]))
        field = py[:, 0, :, None] * px[:, 0, None, :]
        for k in range(1, STROKES):
            field += py[:, k, :, None] * px[:, k, None, :]
        pixels = np.minimum(np.floor(field * ink[lo:hi, None, None]), np.float32(255.0))
        pixels[field < THRESHOLD] = 0.0
        if len(shape) == 3:
            pixels = np.floor(pixels[..., None] * colors[labels[lo:hi], None, None, :].astype(np.float32))
        images[lo:hi] = pixels / np.float32(255.0) if np.issubdtype(dtype, np.floating) else pixels
    return Split(name, images, labels)


def load(*, n: int = 60000, n_test: int | None = None, seed: int = 0,
         shape: tuple[int, ...] | str = (28, 28), dtype: str = "uint8") -> Dataset:
    """n train and n_test (default min(10000, n)) seeded samples; floats scale to [0, 1]."""
    shape, dtype_ = parse_shape(shape), np.dtype(dtype)
    n, n_test, seed = int(n), int(min(10000, n) if n_test is None else n_test), int(seed)
    if n < 1 or n_test < 0:
        raise ValueError(f"synthetic needs n >= 1 and n_test >= 0, got n={n}, n_test={n_test}")
    holds_bytes = np.issubdtype(dtype_, np.integer) and np.iinfo(dtype_).max >= 255
    if not (holds_bytes or np.issubdtype(dtype_, np.floating)):
        raise ValueError(f"synthetic dtype must be a float or an integer type that holds 0-255, got {dtype_}")
    fits((n + n_test) * (int(np.prod(shape)) * dtype_.itemsize + 8), f"synthetic n={n:,} (+{n_test:,} test) of {shape}")
    templates = _templates(seed, shape)
    train = _split("train", n, np.random.default_rng([seed, 0]), templates, shape, dtype_)
    test = _split("test", n_test, np.random.default_rng([seed, 1]), templates, shape, dtype_)
    params = {"seed": seed, "n": n, "n_test": n_test, "shape": shape, "dtype": dtype_.name}
    desc = ", ".join(f"{k}={v}" for k, v in params.items())
    return Dataset(NAME, train, test, f"synthetic MNIST-like data generated with {desc}", params)


def locate() -> tuple[bool, str]:
    """Synthetic data is always available: it is generated."""
    return True, "generated (seeded, any size)"
