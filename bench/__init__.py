"""Benchmarks: `python -m bench <name>` (or `all`). Results print as Markdown and land in bench/results/."""
