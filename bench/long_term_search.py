"""Long-term search latency and ingest rate of the embedded SqliteLongTermStore at 10k and 100k records.

Synthetic records, no model: texts of 8-30 words drawn from a 5,000-word pseudo-vocabulary with a Zipf
(s=1.1) frequency, so a few words are in most records the way stop-words are in real text; random
L2-normalised 384-dim float32 vectors (the size of the bundled e5 model). Records are spread over
4 namespaces and 40 users (10 per namespace), one tenant. Ingest is `upsert` in batches of 100 records,
with vectors passed as lists of floats as the embedders return them.

Each size gets a fresh database file. Search: semantic, keyword and hybrid (alpha 0.7), limit 10, each
with no filter, a namespace filter (~1/4 of the records) and a namespace+user filter (~1/40), timed over
200 queries after 20 warm-up queries (a slower configuration stops after 25 s of timed queries and 5 s
of warm-up; `n` tells how many ran). Queries are 3-6 words from the same distribution, so like real
questions they usually contain a very common word. The first search after ingest (which loads the
tenant's vector matrix into memory) is reported on its own.

    python -m bench.long_term_search [--sizes 10000,100000] [--quick] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import machine, percentiles, table, write_json

DIMS = 384
BATCH = 100
VOCAB = 5000
ZIPF_S = 1.1
NAMESPACES = 4
USERS_PER_NAMESPACE = 10
TENANT = "bench"
LIMIT = 10
ALPHA = 0.7
WARMUP = 20
INGEST_BUDGET_S = 300.0  # stop ingesting a size after 5 minutes and measure what is there
CONFIG_BUDGET_S = 25.0  # stop timing one mode/filter after this long (n says how many queries ran)
SEED = 20240501
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def vocabulary(size: int = VOCAB) -> list[str]:
    """Distinct pronounceable pseudo-words of 2-4 syllables, in a fixed order (rank 1 first)."""
    rng = np.random.default_rng(SEED)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class TextGenerator:
    def __init__(self, seed: int) -> None:
        self.words = np.array(vocabulary())
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = ranks**-ZIPF_S
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def text(self, low: int, high: int) -> str:
        count = int(self.rng.integers(low, high + 1))
        return " ".join(self.words[self.rng.choice(len(self.words), size=count, p=self.p)])


def random_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    matrix = rng.standard_normal((count, DIMS)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _scope(i: int) -> tuple[str, str]:
    ns = i % NAMESPACES
    user = (i // NAMESPACES) % USERS_PER_NAMESPACE
    return f"ns-{ns}", f"user-{ns}-{user}"


def ingest(store: Any, size: int) -> dict[str, Any]:
    from agent_memory.domain.models import MemoryRecord

    texts = TextGenerator(SEED + size)
    rng = np.random.default_rng(SEED + 2 * size)
    base = time.time() - size
    upsert_s = 0.0
    done = 0
    stopped_early = False
    wall = time.perf_counter()
    while done < size:
        count = min(BATCH, size - done)
        records = []
        for i in range(done, done + count):
            ns, user = _scope(i)
            records.append(
                MemoryRecord(id=f"rec-{i:07d}", text=texts.text(8, 30), namespace=ns, user_id=user,
                             session_id=f"s-{i // 50}", topics=[f"topic-{i % 7}"], created_at=base + i)
            )
        vectors = random_vectors(rng, count).tolist()
        t0 = time.perf_counter()
        store.upsert(TENANT, records, vectors)
        upsert_s += time.perf_counter() - t0
        done += count
        if time.perf_counter() - wall > INGEST_BUDGET_S and done < size:
            stopped_early = True
            break
    return {"records": done, "requested": size, "upsert_s": upsert_s, "records_per_s": done / upsert_s,
            "batch": BATCH, "stopped_early_after_s": INGEST_BUDGET_S if stopped_early else None,
            "wall_s_including_generation": time.perf_counter() - wall}


def _filters(kind: str, i: int) -> Any:
    from agent_memory.domain.filters import SearchFilters, TagFilter

    ns, user = _scope(i)
    if kind == "none":
        return SearchFilters()
    if kind == "namespace":
        return SearchFilters(namespace=TagFilter(eq=ns))
    return SearchFilters(namespace=TagFilter(eq=ns), user_id=TagFilter(eq=user))


FILTERS = {
    "none": "none",
    "namespace": f"namespace (~1/{NAMESPACES})",
    "namespace+user": f"namespace+user (~1/{NAMESPACES * USERS_PER_NAMESPACE})",
}


def measure_search(store: Any, queries: int, seed: int) -> dict[str, Any]:
    from agent_memory.domain.filters import SearchQuery

    texts = TextGenerator(seed)
    rng = np.random.default_rng(seed)
    total = WARMUP + queries
    query_texts = [texts.text(3, 6) for _ in range(total)]
    query_vectors = random_vectors(rng, total).tolist()

    def make(mode: str, filter_kind: str, i: int) -> Any:
        return SearchQuery(
            tenant=TENANT, mode=mode, filters=_filters(filter_kind, i), limit=LIMIT, alpha=ALPHA,
            text=query_texts[i] if mode != "semantic" else None,
            vector=query_vectors[i] if mode != "keyword" else None,
        )

    # The first vector search builds the tenant's in-memory matrix from the table.
    t0 = time.perf_counter()
    store.search(make("semantic", "none", 0))
    first_ms = (time.perf_counter() - t0) * 1e3

    out: dict[str, Any] = {"first_semantic_search_ms": first_ms, "modes": {}}
    for mode in ("semantic", "keyword", "hybrid"):
        for filter_kind in FILTERS:
            prepared = [make(mode, filter_kind, i) for i in range(total)]
            started = time.perf_counter()
            for query in prepared[:WARMUP]:
                store.search(query)
                if time.perf_counter() - started > CONFIG_BUDGET_S / 5:
                    break
            samples = []
            hits = 0
            started = time.perf_counter()
            for query in prepared[WARMUP:]:
                if samples and time.perf_counter() - started > CONFIG_BUDGET_S:
                    break  # slow configuration: report the queries timed so far (n in the results)
                t0 = time.perf_counter()
                results, _total = store.search(query)
                samples.append(time.perf_counter() - t0)
                hits += len(results)
            out["modes"][f"{mode}/{filter_kind}"] = {**percentiles(samples), "mean_results": hits / len(samples)}
    return out


def run(sizes: tuple[int, ...] = (10_000, 100_000), queries: int = 200) -> dict[str, Any]:
    from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore

    runs: list[dict[str, Any]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-ltm-") as tmp:
            path = Path(tmp) / "long_term.db"
            store = SqliteLongTermStore(path)
            store.ensure_ready(DIMS)
            ingested = ingest(store, size)
            search = measure_search(store, queries, SEED + 7 * size)
            store.close()
            db_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
        runs.append({"size": size, "ingest": {**ingested, "db_mb": db_bytes / 1e6}, "search": search})
        print(f"[long_term_search] {size}: ingest {ingested['records_per_s']:.0f} rec/s", file=sys.stderr, flush=True)
    return {
        "bench": "long_term_search",
        "store": "SqliteLongTermStore (file, WAL)",
        "dims": DIMS,
        "limit": LIMIT,
        "alpha": ALPHA,
        "queries": queries,
        "warmup": WARMUP,
        "vocabulary": VOCAB,
        "zipf_s": ZIPF_S,
        "namespaces": NAMESPACES,
        "users": NAMESPACES * USERS_PER_NAMESPACE,
        "runs": runs,
        **machine(),
    }


def markdown(data: dict[str, Any]) -> str:
    ingest_rows = []
    search_rows = []
    for item in data["runs"]:
        ing = item["ingest"]
        note = f" (stopped after {ing['stopped_early_after_s']:.0f} s)" if ing["stopped_early_after_s"] else ""
        ingest_rows.append([f"{item['size']:,}", f"{ing['records']:,}{note}", f"{ing['upsert_s']:.1f}",
                            f"{ing['records_per_s']:.0f}", f"{ing['db_mb']:.0f}",
                            f"{item['search']['first_semantic_search_ms']:.0f}"])
        for key, m in item["search"]["modes"].items():
            mode, filter_kind = key.split("/")
            search_rows.append([f"{ing['records']:,}", mode, FILTERS[filter_kind], f"{m['p50_ms']:.2f}",
                                f"{m['p95_ms']:.2f}", f"{m['mean_ms']:.2f}", m["n"]])
    return "\n".join([
        f"### Long-term search on SqliteLongTermStore, {data['dims']}-dim random vectors, limit {data['limit']}, "
        f"{data['queries']} queries after {data['warmup']} warm-up ({data['cpus']} CPUs, Python {data['python']})",
        "",
        table(["size", "ingested", "upsert s", "records/s (batches of 100)", "DB MB", "first search ms"],
              ingest_rows),
        "",
        table(["records", "mode", "filter", "p50 ms", "p95 ms", "mean ms", "n"], search_rows, left=3),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_term_search", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    parser.add_argument("--quick", action="store_true", help="one 2,000-record run (long_term_search-quick.json)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode and filter")
    args = parser.parse_args(argv)
    sizes = (2000,) if args.quick else tuple(int(s) for s in args.sizes.split(",") if s.strip())
    results = run(sizes, args.queries)
    write_json("long_term_search-quick" if args.quick else "long_term_search", results)
    print(markdown(results), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
