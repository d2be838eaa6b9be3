"""Every case's damage claims, checked against real damage to real files (Adapter.detection).

Each case writes a small split once; each example damages the file on disk (cuts off its end,
flips bytes where the samples are) and reads it back through ``scan()``, ``read()`` of every
index at once and ``read([i])`` of each. Where a case claims a kind of damage (``detects``),
every path must raise FormatError: no damaged file may read back changed. Where it does not,
a path may return data, but nothing other than FormatError may escape. A false claim fails
here: ``test_a_false_claim_fails`` proves the check bites.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_split
from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, UnknownNameError
from fmtbench.formats import DAMAGE, Adapter, Detection, cases, get_case, missing_dependency
from fmtbench.formats._base import CHECKSUM_32

N = 120  # samples: enough that headers, footers and HDF5's slack sit outside the data region
CUTS = (1, 100, 500)  # bytes cut off the end, besides half the file
# derandomize: the same examples on every run; database=None: nothing written to the tree.
# function_scoped_fixture: `written` is the same file for every example, restored after each.
EXAMPLES = settings(max_examples=12, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

Flip = list[tuple[int, int]]  # (offset, xor mask) pairs


class Written:
    """A case's file, written once, with its pristine bytes to damage and restore."""

    def __init__(self, case: Adapter, path: Path, split: Split):
        self.case, self.path, self.split = case, path, split
        self.files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        self.pristine = {p: p.read_bytes() for p in self.files}
        # Flips go to the largest file (the images of a folder case), into its middle three
        # quarters: every format here keeps headers, footers, indexes and unused slack in
        # its first or last few KiB, and the samples in between. (Flipping every 23rd byte of
        # the claimed cases' files, all of the first and last 64, found bytes whose change
        # reads back unchanged only there: HDF5's small-data slack, Parquet's leading magic
        # and footer statistics, a gzip header's time and OS bytes; none read back changed.)
        self.victim = max(self.files, key=lambda p: len(self.pristine[p]))
        size = len(self.pristine[self.victim])
        self.region = (size // 8, size - size // 8)

    def damaged(self, victim: Path, data: bytes) -> _Damage:
        return _Damage(self, victim, data)


class _Damage:
    """Context manager: `victim` holds `data` inside the block, its pristine bytes after."""

    def __init__(self, written: Written, victim: Path, data: bytes):
        self.written, self.victim, self.data = written, victim, data

    def __enter__(self) -> Path:
        self.victim.write_bytes(self.data)
        return self.written.path

    def __exit__(self, *exc: object) -> None:
        self.victim.write_bytes(self.written.pristine[self.victim])


_WRITTEN: dict[str, Written] = {}


@pytest.fixture
def written(case_id: str, tmp_path_factory: pytest.TempPathFactory) -> Written:
    """The case's file, written once per session (examples restore it after damaging it)."""
    hint = missing_dependency(case_id.partition("/")[0])
    if hint:
        pytest.skip(hint)
    if case_id not in _WRITTEN:
        case, split = get_case(case_id), make_split(n=N)
        info = case.write(split, case.default_path(tmp_path_factory.mktemp("damage")))
        _WRITTEN[case_id] = Written(case, info.path, split)
    return _WRITTEN[case_id]


def _joined(batches: list[tuple[np.ndarray, np.ndarray]], r) -> tuple[np.ndarray, np.ndarray]:
    if not batches:  # a cut CSV can hold no rows
        return r.read([])
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


PATHS: dict[str, Callable] = {
    "scan": lambda r: _joined(list(r.scan(32)), r),
    "read": lambda r: r.read(np.arange(len(r))),
    "read([i])": lambda r: _joined([r.read([i]) for i in range(len(r))], r),
}


def outcomes(case: Adapter, path: Path, split: Split) -> dict[str, str]:
    """'error', 'same' or 'changed' for each read path; any error but FormatError escapes."""
    found = {}
    for name, read in PATHS.items():
        try:
            with case.open(path) as r:
                images, labels = read(r)
        except FormatError as exc:
            assert str(path) in str(exc), f"{name}: the error does not name the file: {exc}"
            found[name] = "error"
            continue
        assert images.shape[1:] == split.image_shape and images.dtype == split.images.dtype
        assert labels.shape == (len(images),), f"{name}: {len(images)} images, {labels.shape} labels"
        same = np.array_equal(images, split.images) and np.array_equal(labels, split.labels)
        found[name] = "same" if same else "changed"
    return found


def check(w: Written, kind: str, victim: Path, data: bytes, what: str) -> dict[str, str]:
    """Read `victim` damaged to `data`; fail where the case's claim for `kind` is false."""
    with w.damaged(victim, data) as path:
        found = outcomes(w.case, path, w.split)
    if w.case.detects(kind):
        assert set(found.values()) == {"error"}, (
            f"{w.case.case_id} claims it detects {kind} files, but {what} read back: {found}")
    return found


def flipped(data: bytes, flips: Flip) -> bytes:
    out = bytearray(data)
    for offset, mask in flips:
        out[offset] ^= mask
    return bytes(out)


def zero_words(data: bytes, lo: int, hi: int) -> Iterator[Flip]:
    """Two zero bytes turned 0xFF 0xFF, once at an even and once at an odd offset: a 16-bit
    word 0x0000 -> 0xFFFF, which Fletcher-32 cannot see (one of the two is word-aligned)."""
    for parity in (0, 1):
        start = (lo + hi) // 2
        for p in range(start + (start + parity) % 2, hi - 1, 2):
            if data[p] == 0 and data[p + 1] == 0:
                yield [(p, 0xFF), (p + 1, 0xFF)]
                break


@st.composite
def flips(draw: st.DrawFn, lo: int, hi: int) -> Flip:
    """One byte, a burst of 2-8 adjacent bytes, or 2-8 bytes anywhere in [lo, hi)."""
    shape = draw(st.sampled_from(["byte", "burst", "scattered"]))
    if shape == "byte":
        offsets = [draw(st.integers(lo, hi - 1))]
    elif shape == "burst":
        k = draw(st.integers(2, 8))
        start = draw(st.integers(lo, hi - k))
        offsets = list(range(start, start + k))
    else:
        offsets = draw(st.lists(st.integers(lo, hi - 1), min_size=2, max_size=8, unique=True))
    return [(p, draw(st.integers(1, 255))) for p in offsets]


def test_truncation_at_the_usual_places(written):
    for victim in written.files:
        data = written.pristine[victim]
        for keep in sorted({len(data) - cut for cut in CUTS if cut < len(data)} | {len(data) // 2}):
            what = f"{victim.name} cut to {keep} of {len(data)} bytes"
            check(written, "truncated", victim, data[:keep], what)


@EXAMPLES
@given(pick=st.data())
def test_truncation_anywhere(written, pick):
    victim = pick.draw(st.sampled_from(written.files), label="file")
    data = written.pristine[victim]
    keep = pick.draw(st.integers(0, len(data) - 1), label="bytes kept")
    check(written, "truncated", victim, data[:keep], f"{victim.name} cut to {keep} of {len(data)} bytes")


def test_zero_pixels_set_to_ff(written):
    """The flip that defeats Fletcher-32 (mostly-zero pixels make it common)."""
    data = written.pristine[written.victim]
    for flip in zero_words(data, *written.region):
        check(written, "flipped", written.victim, flipped(data, flip), f"flips {flip}")


@EXAMPLES
@given(pick=st.data())
def test_flipped_bytes(written, pick):
    data = written.pristine[written.victim]
    flip = pick.draw(flips(*written.region), label="flips")
    check(written, "flipped", written.victim, flipped(data, flip), f"flips {flip}")


def test_a_false_claim_fails(tmp_path, monkeypatch):
    """NPY has no checksum: made to claim flips, the check above must fail it."""
    case, split = get_case("npy"), make_split(n=N)
    w = Written(case, case.write(split, case.default_path(tmp_path)).path, split)
    monkeypatch.setattr(type(case), "_detection", lambda self, damage: Detection(1.0, "a lie"))
    flip = next(zero_words(w.pristine[w.victim], *w.region))
    with pytest.raises(AssertionError, match="claims it detects flipped files"):
        check(w, "flipped", w.victim, flipped(w.pristine[w.victim], flip), f"flips {flip}")


def test_every_case_declares_every_kind():
    for case in cases(full=True):
        for kind in DAMAGE:
            found = case.detection(kind)
            assert 0.0 <= found.p <= 1.0 and found.by, (case.case_id, kind, found)
            assert case.detects(kind) == (found.p >= CHECKSUM_32)
            assert found.label in ("detected", "not detected", "detected with probability 1 - 2^-32")
    with pytest.raises(UnknownNameError, match="damage kind"):
        get_case("npy").detection("burnt")


def test_labels():
    assert Detection(1.0, "x").label == "detected"
    assert Detection(0.0, "x").label == "not detected"
    assert Detection(CHECKSUM_32, "x").label == "detected with probability 1 - 2^-32"
    assert Detection(0.75, "x").label == "detected with probability 0.75"
    assert math.isclose(1 - CHECKSUM_32, 2.0**-32)


def test_readme_shows_the_matrix_the_adapters_declare():
    """README's damage-detection table is `fmtbench cases --representative --matrix`, verbatim."""
    from fmtbench.cli import detection_matrix

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- damage-matrix -->\n", 1)[1].split("\n<!-- /damage-matrix -->", 1)[0]
    assert block == detection_matrix(cases(full=False)), (
        "README's damage matrix is stale: paste `fmtbench cases --representative --matrix` between its markers")


def test_cases_json_shows_what_the_adapters_declare():
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "fmtbench", "cases", "--json"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    for row in json.loads(out.stdout):
        case = get_case(row["case"])
        assert row["detects"] == {kind: case.detection(kind).label for kind in DAMAGE}
        assert row["detected_by"] == {kind: case.detection(kind).by for kind in DAMAGE}
