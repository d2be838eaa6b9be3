"""The checkpoint workload: a Keras model saved and loaded through Keras's formats and h5py layouts.

A checkpoint *case* is ``checkpoint/<model>/<variant>`` (``checkpoint/cnn/keras``,
``checkpoint/mlp/h5-gzip4``): no storage-format adapter, no case file to prepare. The model is
the train workload's (`build_model`: the seed's CNN, Conv2D 32-64-128 -> Dense 128 -> 10, 8.0M
parameters on 28x28 images, or the MLP), trained `TRAIN_STEPS` steps on the run's data so its
weights and Adam moments are no longer their initial values. Variants:

* ``keras``: ``model.save('model.keras')`` (a zip, stored uncompressed) and ``load_model``;
* ``h5``: legacy ``model.save('model.h5')`` and ``load_model``;
* ``weights-h5``: ``save_weights('model.weights.h5')`` and ``load_weights``;
* ``h5-*``: ``model.get_weights()`` written by h5py (contiguous, chunked, gzip/lzf, shuffle),
  one dataset per array, read back and ``set_weights``: the HDF5 options that matter for weights.

Every save is atomic and durable: written into a hidden folder, the file and the folder fsynced,
renamed into place and the parent fsynced (`atomic_path`); that is all inside the timed save.
``.keras`` and ``.h5`` loads rebuild and compile the model from the file; the weights-only loads
go into a model built beforehand (untimed) whose state is zeroed before every load, so a load
that restored nothing cannot pass the check. The check is bit-exact: the sha256 of every
weight's dtype, shape and bytes (`weights_digest`) after each load equals the saved model's;
the optimizer's state is checked the same way where the file holds it.
"""
from __future__ import annotations

import contextlib
import fnmatch
import gc
import hashlib
import logging
import shutil
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmtbench import cache as page_cache
from fmtbench.atomic import atomic_path, path_size
from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, UnknownNameError
from fmtbench.harness import measure
from fmtbench.profiles import Profile

from ._base import Observation, resources
from .train import MODELS, batch_size_for, build_model, configure_tf, scale, weights_digest

PREFIX = "checkpoint"
TRAIN_STEPS = 2  # real gradients: non-zero biases and Adam moments, as in a checkpoint mid-training


@dataclass(frozen=True)
class Variant:
    """One way to write a checkpoint: the API, the file it makes, and h5py's layout options."""

    name: str
    api: str  # "model.save" | "save_weights" | "h5py"
    file: str
    holds: str  # what the file holds besides the weights
    chunks: bool = False
    compression: str | None = None
    level: int | None = None
    shuffle: bool = False


_VARIANTS = (
    Variant("keras", "model.save", "model.keras", "model + optimizer"),
    Variant("h5", "model.save", "model.h5", "model + optimizer"),
    Variant("weights-h5", "save_weights", "model.weights.h5", "weights + optimizer"),
    Variant("h5-contiguous", "h5py", "weights.h5", "weights"),
    Variant("h5-chunked", "h5py", "weights.h5", "weights", chunks=True),
    Variant("h5-gzip4", "h5py", "weights.h5", "weights", chunks=True, compression="gzip", level=4),
    Variant("h5-gzip4-shuffle", "h5py", "weights.h5", "weights", chunks=True, compression="gzip", level=4,
            shuffle=True),
    Variant("h5-lzf", "h5py", "weights.h5", "weights", chunks=True, compression="lzf"),
)
VARIANTS = {v.name: v for v in _VARIANTS}
#: one of each API, and h5py's weights with compression off and on
REPRESENTATIVE = ("keras", "h5", "weights-h5", "h5-contiguous", "h5-gzip4")


def is_checkpoint(case_id: str) -> bool:
    """Whether `case_id` (or a pattern) names a checkpoint case rather than a storage format."""
    return case_id == PREFIX or case_id.startswith(PREFIX + "/")


def parse(case_id: str) -> tuple[str, Variant]:
    """(model, variant) of ``checkpoint/<model>/<variant>``; anything else lists the valid ids."""
    parts = case_id.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in MODELS or parts[2] not in VARIANTS:
        raise UnknownNameError("checkpoint case", case_id, all_cases())
    return parts[1], VARIANTS[parts[2]]


def all_cases(models: Iterable[str] = MODELS, variants: Iterable[str] = VARIANTS) -> list[str]:
    """Every checkpoint case id of `models` x `variants`, model-major."""
    return [f"{PREFIX}/{m}/{v}" for m in models for v in variants]


def config(case_id: str) -> dict[str, Any]:
    """The case's full configuration, stored with each of its measurements."""
    model, variant = parse(case_id)
    return {"model": model, "variant": variant.name, **{k: v for k, v in asdict(variant).items() if k != "name"}}


def select(patterns: Iterable[str] | None, profile: Profile) -> list[str]:
    """The profile's checkpoint cases, or every one matching `patterns` (ids or globs)."""
    if not patterns:
        grid = VARIANTS if profile.checkpoint_grid == "all" else REPRESENTATIVE
        return all_cases(profile.checkpoint_models, grid)
    every, chosen = all_cases(), {}
    for pattern in patterns:
        hits = [c for c in every if fnmatch.fnmatchcase(c, pattern) or pattern == PREFIX]
        if not hits:
            raise UnknownNameError("checkpoint case pattern", pattern, every)
        chosen.update(dict.fromkeys(hits))
    return list(chosen)


def trained_model(model: str, split: Split, seed: int) -> Any:
    """The train workload's compiled `model` after `TRAIN_STEPS` steps on the first samples of `split`."""
    bs = batch_size_for(model, None)
    configure_tf(seed)
    net = build_model(model, tuple(split.image_shape), bs)
    n = min(len(split), TRAIN_STEPS * bs)
    net.fit(scale(split.images[:n], model), split.labels[:n], batch_size=bs, epochs=1, verbose=0, shuffle=False)
    return net


def target_model(net: Any) -> Any:
    """An empty twin of `net` (same layers, its own variables, Adam built) for weights-only loads."""
    import keras

    twin = keras.models.clone_model(net)
    twin.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"], jit_compile=False)
    twin.optimizer.build(twin.trainable_variables)
    return twin


def optimizer_digest(net: Any) -> str | None:
    """sha256 over the optimizer's variables (dtype, shape, bytes); None when it holds none."""
    variables = getattr(getattr(net, "optimizer", None), "variables", None) or []
    if len(variables) <= 2:  # only iterations and learning rate: never built, so nothing restored
        return None
    h = hashlib.sha256()
    for v in variables:
        a = np.asarray(v.numpy())
        h.update(f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keras's notices on every .h5 save and load ("legacy", "metrics not built") off stderr;
    what they would say is in the figures (the `optimizer_restored` check)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)


def save(net: Any, variant: Variant, folder: Path) -> Path:
    """Write `net` as `variant` into `folder` (replacing it), durable on return; the file's path."""
    with atomic_path(folder, directory=True) as tmp:
        path = tmp / variant.file
        with _quiet():
            if variant.api == "model.save":
                net.save(path)
            elif variant.api == "save_weights":
                net.save_weights(path)
            else:
                _h5py_save(net.get_weights(), variant, path)
    return folder / variant.file


def _h5py_save(weights: list[np.ndarray], variant: Variant, path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for i, w in enumerate(weights):
            chunked = variant.chunks and w.ndim > 0  # a scalar cannot be chunked
            f.create_dataset(f"{i:04d}", data=w, chunks=True if chunked else None,
                             compression=variant.compression if chunked else None,
                             compression_opts=variant.level if chunked else None,
                             shuffle=variant.shuffle and chunked)
        f.attrs["arrays"] = len(weights)


def load(variant: Variant, folder: Path, target: Any = None) -> Any:
    """The model in `folder`: rebuilt from the file, or (weights-only variants) loaded into `target`.

    A damaged, truncated or foreign checkpoint is a `FormatError` naming the file.
    """
    path = Path(folder) / variant.file
    if not path.is_file():
        raise FormatError(path, "no checkpoint file here")
    try:
        with _quiet():
            if variant.api == "model.save":
                import keras

                return keras.models.load_model(path)
            if variant.api == "save_weights":
                target.load_weights(path)
            else:
                target.set_weights(_h5py_load(path))
        return target
    except Exception as exc:  # the libraries' own errors (zip, HDF5, shapes) for a bad file
        raise FormatError(path, exc) from exc


def _h5py_load(path: Path) -> list[np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        names = sorted(f)
        if f.attrs.get("arrays") != len(names):
            raise ValueError(f"holds {len(names)} arrays, its header says {f.attrs.get('arrays')}")
        return [f[name][()] for name in names]


def _zero(target: Any) -> None:
    """Put zeros in every weight and optimizer variable, so only a load can restore them."""
    target.set_weights([np.zeros_like(w) for w in target.get_weights()])
    for v in target.optimizer.variables:
        v.assign(np.zeros(v.shape, dtype=v.dtype))


def run_checkpoint(case_id: str, split: Split, folder: Path, profile: Profile, cache: str,
                   seed: int = 0) -> list[Observation]:
    """Time saves of the case's model into `folder`, then loads in the `cache` state; size and check."""
    model, variant = parse(case_id)
    net = trained_model(model, split, seed)
    want, want_opt = weights_digest(net), optimizer_digest(net)
    folder = Path(folder)
    try:
        saves = measure(lambda: save(net, variant, folder), repeats=profile.repeats, warmup=profile.warmup,
                        before_each=lambda: shutil.rmtree(folder, ignore_errors=True))
        nbytes = path_size(folder)
        target = None if variant.api == "model.save" else target_model(net)
        loaded: list[Any] = []
        checks: list[tuple[bool, bool | None]] = []  # (weights, optimizer) of every load, warm-up too

        def check_last() -> None:
            if loaded:
                got = loaded.pop()
                checks.append((weights_digest(got) == want, optimizer_digest(got) == want_opt))
                gc.collect()  # the last load's model goes before the next one is timed

        def before_load() -> None:
            check_last()
            if target is not None:
                _zero(target)
            if cache == "cold":
                page_cache.cold(folder)

        state = {} if cache == "cold" else {"residency_after_warm": page_cache.warm(folder)}
        loads = measure(lambda: loaded.append(load(variant, folder, target)), repeats=profile.repeats,
                        warmup=profile.warmup, before_each=before_load, files=folder)
        check_last()
        exact = all(w for w, _ in checks)
        opt = None if want_opt is None or variant.holds == "weights" else all(o for _, o in checks)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    common = {"model": model, "variant": variant.name, "params": int(net.count_params()),
              "weights_bytes": sum(w.nbytes for w in net.get_weights()), "bit_exact": exact,
              "optimizer_restored": opt, "weights_digest": want}
    return [
        Observation("checkpoint_save_s", saves.seconds.values, common | resources(saves)),
        Observation("checkpoint_load_s", loads.seconds.values, common | resources(loads) | state),
        Observation("checkpoint_bytes", [nbytes], common),
    ]
