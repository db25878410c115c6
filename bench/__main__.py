"""`python -m bench <name> [<name> ...]` or `python -m bench all`.

Each bench is a module here with `run() -> dict` (the results, also written to bench/results/<name>.json)
and `markdown(results) -> str` (the table printed for README).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# Order matters for `all`: the cheap, noise-sensitive one first. locomo and long_term_search take
# minutes; each also runs alone with options: `python -m bench.locomo --help`.
BENCHES = ["cold_import", "layer_cold_start", "working_memory", "http_throughput", "extraction_lag", "long_term_search",
           "locomo"]
RESULTS = Path(__file__).resolve().parent / "results"


def run_bench(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    if hasattr(module, "main"):  # benches with options write their own results file
        module.main([])
        return
    results = module.run()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(module.markdown(results), end="\n\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="+", choices=[*BENCHES, "all"], metavar="name", help=f"one of: {', '.join(BENCHES)}, all"
    )
    args = parser.parse_args(argv)
    names = BENCHES if "all" in args.names else args.names
    for name in names:
        run_bench(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
