"""`fmtbench report`: render result stores into one self-contained HTML page plus CSV and JSON."""
from __future__ import annotations

import sys

import click


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="reports/fmtbench-report.html",
              show_default=True, help="The HTML page; the table goes beside it as .csv and .json.")
@click.option("--dataset", "-d", default=None,
              help="Which dataset of the stores to report (default: the one measured last).")
def report_cmd(results: tuple[str, ...], output: str, dataset: str | None) -> None:
    """Render RESULTS (result folders or results.jsonl files) into one HTML report.

    Two stores: the page shows both merged (the second wins where both measured a unit) and
    compares them case by case, flagging changes beyond the measured noise.
    """
    from fmtbench.reports.render import write_report

    done = write_report(list(results), output, dataset=dataset, argv=["fmtbench", *sys.argv[1:]])
    click.echo(f"report: {done.html} ({done.html_bytes / 1024:.0f} KiB, {done.seconds:.2f} s)")
    click.echo(f"table:  {done.csv}, {done.json}")
