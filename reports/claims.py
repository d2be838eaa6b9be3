"""The seeds' claims about formats, each checked against the measurements with a verdict and its numbers."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from fmtbench.metrics import METRICS

from .analysis import Frame, best_row, judge, not_cold
from .hdf5grid import Layout, default_cache, layouts
from .recommend import show
from .units import scale_for, times

SUPPORTED, NOT_SUPPORTED, NOT_MEASURED = "supported", "not supported", "not measured"
#: the comparisons behind the claim are too noisy to settle it either way (more rounds would)
UNDECIDED = "undecided"
FAR = 10.0  # "far slower" means at least an order of magnitude


@dataclass
class Claim:
    """A claim, its verdict, the rule applied, and the figures that decided it."""

    claim: str
    verdict: str
    rule: str
    evidence: list[str] = field(default_factory=list)


def _of(frame: Frame, fmt: str) -> list[str]:
    return [c for c in frame.cases() if c.split("/", 1)[0] == fmt]


def _missing(frame: Frame, fmts: tuple[str, ...], need: str) -> list[str]:
    """Why the formats have no data: their failures and skips, else 'not run'."""
    out = []
    for fmt in fmts:
        probs = [p for p in frame.problems if p.case.split("/", 1)[0] == fmt]
        have = any(frame.get(c, need) for c in _of(frame, fmt))
        if not have:
            why = f"{probs[0].kind} — {probs[0].reason}" if probs else "not in this run"
            out.append(f"{fmt}: no {need} ({why})")
    return out


def _rows_of(frame: Frame, fmt: str, metric: str):
    return best_row(frame, metric, _of(frame, fmt))


def _versus(frame: Frame, a_fmt: str, b_fmt: str, metric: str) -> tuple[str, str] | None:
    """(verdict of a's best against b's best: better, worse, equivalent or undecided, and a
    sentence with both figures), or None if unmeasured."""
    a, b = _rows_of(frame, a_fmt, metric), _rows_of(frame, b_fmt, metric)
    if a is None or b is None:
        return None
    res = judge(a, b, frame.margin).kind
    factor = max(a.median, b.median) / max(min(a.median, b.median), 1e-300)
    word = _word(res, frame.margin)
    return res, (f"{show(frame, a.case, metric)} ({a.case}) vs {show(frame, b.case, metric)} "
                 f"({b.case}): {a_fmt} {word}" + (f", {times(factor)}" if res in ("better", "worse") else ""))


def _word(kind: str, margin: float) -> str:
    return f"equivalent within {margin:.0%}" if kind == "equivalent" else kind


def _majority(hits: int, undecided: int, total: int) -> str:
    """SUPPORTED when most comparisons hold, NOT_SUPPORTED when most cannot hold even if every
    undecided one did, else UNDECIDED."""
    if hits * 2 > total:
        return SUPPORTED
    return NOT_SUPPORTED if (hits + undecided) * 2 <= total else UNDECIDED


def _fetched(frame: Frame, case: str) -> tuple[float, float] | None:
    """(share of the file fetched, share of rows asked for) by one repeat of cold single-sample reads."""
    cold, size = frame.get(case, "random_p50_s", "cold"), frame.median(case, "file_bytes")
    rows = next((r.extra.get("rows") for r in frame.rows if r.case == case and r.extra.get("rows")), None)
    got = [b for b in (cold.extra.get("read_bytes") or []) if b is not None] if cold else []
    if not got or not size or not rows or not cold.extra.get("k") or not_cold(cold):
        return None
    return statistics.median(got) / size, min(1.0, cold.extra["k"] / rows)


def partial_reads(frame: Frame) -> Claim:
    """HDF5 partial reads avoid loading everything."""
    text, rule = "HDF5 partial reads avoid loading everything", (
        "in every HDF5 case, k random single-sample reads from a cold cache fetch less than half of the file "
        "(bytes read from storage); without cold runs: one read's p50 is under 10% of a full read's time")
    cases = _of(frame, "hdf5")
    shares = sorted((v, c) for c in cases if (v := _fetched(frame, c)) is not None)
    if shares:
        (worst, asked), case = shares[-1]
        k = frame.get(case, "random_p50_s", "cold").extra["k"]
        spread = f"{worst:.0%}" if f"{shares[0][0][0]:.0%}" == f"{worst:.0%}" else f"{shares[0][0][0]:.0%}–{worst:.0%}"
        evidence = [f"{k} random samples ({asked:.1%} of the rows) from a cold cache fetched {spread} of the file "
                    f"across {len(shares)} HDF5 case(s); most: {case}"]
        evidence += [f"{c}: {f:.0%} of the file" for (f, _), c in shares[:-1][:4]]
        return Claim(text, SUPPORTED if worst < 0.5 else NOT_SUPPORTED, rule, evidence)
    found = []  # (share of a full read's time, case, p50, full-read seconds)
    for case in cases:
        p50, scan = frame.get(case, "random_p50_s"), frame.get(case, "scan_samples_per_s")
        rows = next((r.extra.get("rows") for r in frame.rows if r.case == case and r.extra.get("rows")), None)
        if p50 is not None and scan is not None and rows and scan.median:
            found.append((p50.median * scan.median / rows, case, p50.median, rows / scan.median))
    if not found:
        return Claim(text, NOT_MEASURED, rule, _missing(frame, ("hdf5",), "random_p50_s") or
                     ["needs HDF5 random reads, with a cold cache or with scan throughput and write rows"])
    found.sort()
    share, case, p50, full = found[-1]
    s = scale_for("s", [p50, full])
    evidence = [f"one sample costs {found[0][0]:.2%}–{share:.2%} of a full read's time across {len(found)} "
                f"HDF5 case(s) (no cold runs, so bytes fetched are unknown)",
                f"most: {case}, one sample {s.text(p50, True)} vs full read {s.text(full, True)}"]
    return Claim(text, SUPPORTED if share < 0.1 else NOT_SUPPORTED, rule, evidence)


def _hdf5_plain(frame: Frame) -> tuple[dict[str, Layout], object]:
    lays = layouts(frame)
    dflt = default_cache(lays)
    return {c: lay for c, lay in lays.items() if not lay.other and repr(lay.cache) == repr(dflt)}, dflt


def chunk_compress(frame: Frame) -> Claim:
    """Chunking and compression make HDF5 files smaller and partial reads faster."""
    text = "Chunking and compression make HDF5 files smaller and partial reads faster"
    rule = ("against contiguous uncompressed HDF5: most chunked+compressed cases have a smaller file "
            "and a lower single-read p50, better at the stated coverage")
    lays, _ = _hdf5_plain(frame)
    base = next((c for c, lay in lays.items() if lay.chunk is None and lay.compression == "none"), None)
    packed = [c for c, lay in lays.items() if lay.chunk is not None and lay.compression != "none"]
    if base is None or not packed or frame.get(base, "file_bytes") is None:
        return Claim(text, NOT_MEASURED, rule, ["needs contiguous HDF5 and chunked+compressed HDF5 cases"]
                     + _missing(frame, ("hdf5",), "file_bytes"))
    size0, p0 = frame.get(base, "file_bytes"), frame.get(base, "random_p50_s")
    smaller = [c for c in packed if (r := frame.get(c, "file_bytes")) and r.median < size0.median]
    timed = [c for c in packed if frame.get(c, "random_p50_s") and p0]
    kinds = {c: judge(frame.get(c, "random_p50_s"), p0, frame.margin).kind for c in timed}
    faster = [c for c in timed if kinds[c] == "better"]
    slower = [c for c in timed if kinds[c] == "worse"]
    unsure = [c for c in timed if kinds[c] == "undecided"]
    small = best_row(frame, "file_bytes", packed)
    evidence = [f"contiguous ({base}): {show(frame, base, 'file_bytes')}, {show(frame, base, 'random_p50_s')}",
                f"smaller: {len(smaller)} of {len(packed)} chunked+compressed cases; smallest {small.case}: "
                f"{show(frame, small.case, 'file_bytes')} ({times(size0.median / small.median)} smaller)"]
    if timed:
        quick = best_row(frame, "random_p50_s", timed)
        evidence.append(f"partial reads faster: {len(faster)} of {len(timed)}, slower: {len(slower)}, "
                        f"undecided: {len(unsure)}; fastest {quick.case}: {show(frame, quick.case, 'random_p50_s')}")
    if len(smaller) * 2 <= len(packed) or not timed:
        return Claim(text, NOT_SUPPORTED, rule, evidence)
    return Claim(text, _majority(len(faster), len(unsure), len(timed)), rule, evidence)


def gzip_vs_lzf(frame: Frame) -> Claim:
    """gzip is slower than LZF (HDF5 cases that differ only in the compressor)."""
    text, rule = "gzip is slower than LZF", ("HDF5 pairs differing only in gzip vs lzf: gzip slower beyond "
                                             "the noise in most comparisons of write time, scan throughput and p50")
    lays, _ = _hdf5_plain(frame)
    key = lambda lay: (lay.chunk, lay.shuffle)  # noqa: E731
    lzf = {key(lay): c for c, lay in lays.items() if lay.compression == "lzf"}
    pairs = [(c, lzf[key(lay)]) for c, lay in lays.items() if lay.compression.startswith("gzip") and key(lay) in lzf]
    if not pairs:
        have = [c for c, lay in lays.items() if lay.compression.startswith("gzip") or lay.compression == "lzf"]
        return Claim(text, NOT_MEASURED, rule, ["needs HDF5 gzip and lzf cases with the same chunking and shuffle; "
                                                f"this run has: {', '.join(have) or 'neither'}"])
    evidence, slower, unsure, total = [], 0, 0, 0
    for g, z in pairs:
        for m in ("write_s", "scan_samples_per_s", "random_p50_s"):
            a, b = frame.get(g, m), frame.get(z, m)
            if a and b:
                total += 1
                res = judge(a, b, frame.margin).kind
                slower, unsure = slower + (res == "worse"), unsure + (res == "undecided")
                sc = scale_for(a.unit, [a.median, b.median])
                word = {"worse": "gzip slower", "better": "gzip faster"}.get(res) or _word(res, frame.margin)
                evidence.append(f"{METRICS[m].label}: {g} {sc.text(a.median, True)} vs {z} "
                                f"{sc.text(b.median, True)}: {word}")
    verdict = NOT_MEASURED if not total else _majority(slower, unsure, total)
    return Claim(text, verdict, rule, [f"gzip slower in {slower} of {total} comparisons ({unsure} undecided)",
                                       *evidence])


def _format_vs_hdf5(frame: Frame, fmt: str, text: str, rule: str, metrics: tuple[str, ...],
                    want: str) -> Claim:
    results = [(m, v) for m in metrics if (v := _versus(frame, fmt, "hdf5", m))]
    if not results:
        return Claim(text, NOT_MEASURED, rule, _missing(frame, (fmt, "hdf5"), metrics[0]))
    hits = sum(res == want for _, (res, _) in results)
    verdict = _majority(hits, sum(res == "undecided" for _, (res, _) in results), len(results))
    return Claim(text, verdict, rule, [line for _, (_, line) in results])


def tfrecord_streaming(frame: Frame) -> Claim:
    """TFRecord is better for streaming (sequential reads) than HDF5."""
    claim = _format_vs_hdf5(frame, "tfrecord", "TFRecord is better for streaming",
                            "best TFRecord case against best HDF5 case on full sequential scan throughput, "
                            "beyond the noise", ("scan_samples_per_s",), "better")
    native = best_row(frame, "native_samples_per_s", _of(frame, "tfrecord"))
    if native is not None:
        claim.evidence.append(f"tf.data native pipeline: {show(frame, native.case, 'native_samples_per_s')}")
    return claim


def sqlite_slower(frame: Frame) -> Claim:
    """A database (SQLite) is slower than HDF5."""
    return _format_vs_hdf5(frame, "sqlite", "A database (SQLite) is slower than HDF5",
                           "best SQLite case against best HDF5 case on each read metric; supported when "
                           "SQLite is worse beyond the noise on most of them",
                           ("scan_samples_per_s", "random_p50_s", "batch_unsorted_samples_per_s",
                            "train_samples_per_s"), "worse")


def csv_far_slower(frame: Frame) -> Claim:
    """Text formats (CSV) are far slower to read than HDF5."""
    text = "Text formats (CSV) are far slower to read than HDF5"
    rule = f"best CSV scan throughput at least ×{FAR:g} below the best HDF5 case"
    a, b = _rows_of(frame, "csv", "scan_samples_per_s"), _rows_of(frame, "hdf5", "scan_samples_per_s")
    if a is None or b is None:
        return Claim(text, NOT_MEASURED, rule, _missing(frame, ("csv", "hdf5"), "scan_samples_per_s"))
    factor = b.median / a.median if a.median else float("inf")
    evidence = [f"{show(frame, a.case, 'scan_samples_per_s')} ({a.case}) vs "
                f"{show(frame, b.case, 'scan_samples_per_s')} ({b.case}): HDF5 {times(factor)} faster"]
    if (v := _versus(frame, "csv", "hdf5", "random_p50_s")) is not None:
        evidence.append(v[1])
    return Claim(text, SUPPORTED if factor >= FAR else NOT_SUPPORTED, rule, evidence)


def _split_rows(frame: Frame, cases: list[str]) -> int | None:
    """How many samples the run's training split has (from a write's record), or None."""
    for case in cases:
        row = frame.get(case, "write_s")
        if row is not None and isinstance(row.extra.get("rows"), int):
            return row.extra["rows"]
    return None


def json_vs_hdf5(frame: Frame) -> Claim:
    """The seed: "HDF5 2 s vs JSON 1 min" to load the data."""
    text = "Loading the data takes HDF5 about 2 s and JSON about a minute"
    rule = (f"time to read the whole training split (samples / scan throughput) of the best JSON Lines "
            f"case with images as lists of numbers against the best HDF5 case; supported when JSON is at "
            f"least ×{FAR:g} slower beyond the noise")
    # JSON as the seed meant it: images as nested lists of numbers (not base64 strings in JSON).
    as_lists = [c for c in _of(frame, "jsonl")
                if (row := frame.get(c, "scan_samples_per_s")) is None or row.config.get("encoding", "list") == "list"]
    a = best_row(frame, "scan_samples_per_s", as_lists)
    b = _rows_of(frame, "hdf5", "scan_samples_per_s")
    if a is None or b is None:
        return Claim(text, NOT_MEASURED, rule, _missing(frame, ("jsonl", "hdf5"), "scan_samples_per_s"))
    rows = _split_rows(frame, [a.case, b.case])
    factor = b.median / a.median if a.median else float("inf")
    if rows:
        def secs(x: float) -> str:
            return scale_for("s", [x]).text(x, True)

        evidence = [f"reading {rows:,} samples: JSON Lines {secs(rows / a.median)} ({a.case}), "
                    f"HDF5 {secs(rows / b.median)} ({b.case}): HDF5 {times(factor)} faster"]
    else:
        evidence = [f"{show(frame, a.case, 'scan_samples_per_s')} ({a.case}) vs "
                    f"{show(frame, b.case, 'scan_samples_per_s')} ({b.case}): HDF5 {times(factor)} faster"]
    if (w := _versus(frame, "jsonl", "hdf5", "write_s")) is not None:
        evidence.append(f"writing: {w[1]}")
    kind = judge(a, b, frame.margin).kind
    verdict = NOT_SUPPORTED if factor < FAR or kind in ("better", "equivalent") else \
        SUPPORTED if kind == "worse" else UNDECIDED
    return Claim(text, verdict, rule, evidence)


def check_claims(frame: Frame) -> list[Claim]:
    """Every claim, in the order of the seeds."""
    return [partial_reads(frame), chunk_compress(frame), gzip_vs_lzf(frame), tfrecord_streaming(frame),
            sqlite_slower(frame), csv_far_slower(frame), json_vs_hdf5(frame)]
