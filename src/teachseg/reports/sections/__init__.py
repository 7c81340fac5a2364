"""One builder per report section (setup, per-seed tables, paired statistics, curves, predictions, ...)."""
