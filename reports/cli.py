"""`fmtbench report`: render result stores into one self-contained HTML page plus CSV and JSON."""
from __future__ import annotations

import sys

import click


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="The HTML page; the table goes beside it as .csv and .json. Default: "
                   "reports/fmtbench-report.html for one store (the page `fmtbench run` writes), "
                   "reports/fmtbench-compare.html for two, so a comparison never replaces a run's page.")
@click.option("--dataset", "-d", default=None,
              help="Which dataset of the stores to report (default: the one measured last).")
@click.option("--weights", "-w", default=None, metavar="USE=N,...",
              help="Weights of the balanced pick, e.g. size=2,write=0 (uses: streaming, shuffled, serving, "
                   "size, write; default 1 each; the page can change them too).")
@click.option("--margin", type=click.FloatRange(min=0.1, max=50), default=5.0, show_default=True, metavar="PERCENT",
              help="Equivalence margin of every verdict: two figures within this many percent of each other "
                   "(at the interval's coverage) are 'equivalent' (docs/statistics.md).")
def report_cmd(results: tuple[str, ...], output: str, dataset: str | None, weights: str | None,
               margin: float) -> None:
    """Render RESULTS (result folders or results.jsonl files) into one HTML report.

    Two stores: the page shows both merged (the second wins where both measured a unit) and
    compares them case by case: better, worse, equivalent within the margin, or undecided.
    """
    from fmtbench.reports.recommend import parse_weights
    from fmtbench.reports.render import write_report

    if output is None:
        output = "reports/fmtbench-compare.html" if len(results) == 2 else "reports/fmtbench-report.html"
    done = write_report(list(results), output, dataset=dataset, argv=["fmtbench", *sys.argv[1:]],
                        weights=parse_weights(weights) if weights is not None else None, margin=margin / 100)
    click.echo(f"report: {done.html} ({done.html_bytes / 1024:.0f} KiB, {done.seconds:.2f} s)")
    click.echo(f"table:  {done.csv}, {done.json}")
