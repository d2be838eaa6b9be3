"""asv benchmark suite over the fmtbench cases (see the asv issue)."""
