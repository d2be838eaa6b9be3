"""`python -m fmtbench` runs the command line."""
from fmtbench.cli import run

run()
