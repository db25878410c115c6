"""Long-term search latency at 10k and 100k records: the embedded SQLite store in-process and over HTTP
through `agent-memory serve`, beside reference engines measured in the same run, and the OpenSearch node.

Synthetic records, no model: texts of 8-30 words drawn from a 5,000-word pseudo-vocabulary with a Zipf
(s=1.1) frequency, so a few words are in most records the way stop-words are in real text; random
L2-normalised 384-dim float32 vectors (the size of the bundled e5 model). Records are spread over
4 namespaces and 40 users (10 per namespace), one tenant. Ingest is `upsert` in batches of 100 records,
with vectors passed as lists of floats as the embedders return them. Records are dated so that no
search is due to refresh a result's last_accessed: the bench measures reads.

Search: semantic, keyword and hybrid (alpha 0.7), limit 10, each with no filter, a namespace filter
(~1/4 of the records) and a namespace+user filter (~1/40), timed over 200 queries after 20 warm-up
queries (a slower configuration stops after 25 s of timed queries; `n` tells how many ran). Queries are
3-6 words from the same distribution, so like real questions they usually contain a very common word.

Sides, each on the same records and queries:
* `sqlite`: `SqliteLongTermStore.search` in-process (query vectors given).
* `http`: `POST /v1/long-term-memory/search` to `agent-memory serve` (one process, 127.0.0.1, the fake
  embedder at 384 dims embeds the query text: ~0.1 ms), one keep-alive client, recency re-rank off;
  `health` is `GET /v1/health` on the same server, the HTTP floor.
* references: `tantivy` top-10 (BM25 over the texts, English stemmer, the query's words OR'ed, no count)
  and `numpy` exact top-10 (inner products of one query with every vector, argpartition, sort).
* `opensearch`: `OpenSearchLongTermStore.search` in-process against the test node (OPENSEARCH_URL, or the
  node `tests/fixtures/opensearch_process.py` starts when Java is here; `--no-opensearch` skips it).

Target (issue 8): at 100k over HTTP, each mode's p50 <= 3 x (its reference + the health floor); keyword:
tantivy, semantic: numpy, hybrid: both. The table says how each row compares.

    python -m bench.long_term_search [--sizes 10000,100000] [--quick] [--queries 200] [--no-opensearch]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
OPENSEARCH_INGEST_BUDGET_S = 600.0
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


@dataclass
class Corpus:
    records: list[Any]
    vectors: np.ndarray  # float32, unit rows

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]


def corpus(size: int) -> Corpus:
    from agent_memory.domain.models import MemoryRecord

    texts = TextGenerator(SEED + size)
    rng = np.random.default_rng(SEED + 2 * size)
    base = time.time() - size
    future = datetime.now(UTC) + timedelta(days=7)  # never due a last_accessed refresh during the run
    records = []
    for i in range(size):
        ns, user = _scope(i)
        records.append(
            MemoryRecord(id=f"rec-{i:07d}", text=texts.text(8, 30), namespace=ns, user_id=user,
                         session_id=f"s-{i // 50}", topics=[f"topic-{i % 7}"], created_at=base + i,
                         last_accessed=future)
        )
    return Corpus(records, random_vectors(rng, size))


def ingest(store: Any, data: Corpus, budget_s: float = INGEST_BUDGET_S) -> dict[str, Any]:
    upsert_s = 0.0
    done = 0
    size = len(data.records)
    stopped_early = False
    wall = time.perf_counter()
    while done < size:
        count = min(BATCH, size - done)
        vectors = data.vectors[done : done + count].tolist()
        t0 = time.perf_counter()
        store.upsert(TENANT, data.records[done : done + count], vectors)
        upsert_s += time.perf_counter() - t0
        done += count
        if time.perf_counter() - wall > budget_s and done < size:
            stopped_early = True
            break
    return {"records": done, "requested": size, "upsert_s": upsert_s, "records_per_s": done / upsert_s,
            "batch": BATCH, "stopped_early_after_s": budget_s if stopped_early else None,
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


MODES = ("semantic", "keyword", "hybrid")


@dataclass
class Queries:
    texts: list[str]
    vectors: list[list[float]]


def queries_for(size: int, count: int) -> Queries:
    seed = SEED + 7 * size
    texts = TextGenerator(seed)
    rng = np.random.default_rng(seed)
    total = WARMUP + count
    return Queries([texts.text(3, 6) for _ in range(total)], random_vectors(rng, total).tolist())


def timed(call: Callable[[int], int], total: int) -> dict[str, Any]:
    """Warm up on the first WARMUP indexes, then time call(i) for the rest; call returns the result count."""
    started = time.perf_counter()
    for i in range(min(WARMUP, total)):
        call(i)
        if time.perf_counter() - started > CONFIG_BUDGET_S / 5:
            break
    samples: list[float] = []
    hits = 0
    started = time.perf_counter()
    for i in range(WARMUP, total):
        if samples and time.perf_counter() - started > CONFIG_BUDGET_S:
            break  # slow configuration: report the queries timed so far (n in the results)
        t0 = time.perf_counter()
        hits += call(i)
        samples.append(time.perf_counter() - t0)
    return {**percentiles(samples), "mean_results": hits / max(1, len(samples))}


def measure_store(store: Any, queries: Queries) -> dict[str, Any]:
    """SearchQuery straight to a LongTermStore, every mode and filter."""
    from agent_memory.domain.filters import SearchQuery

    def make(mode: str, filter_kind: str, i: int) -> Any:
        return SearchQuery(
            tenant=TENANT, mode=mode, filters=_filters(filter_kind, i), limit=LIMIT, alpha=ALPHA,
            text=queries.texts[i] if mode != "semantic" else None,
            vector=queries.vectors[i] if mode != "keyword" else None,
        )

    # The first searches build the tenant's in-memory vector matrix and keyword index from the table.
    first: dict[str, float] = {}
    for mode in ("semantic", "keyword"):
        t0 = time.perf_counter()
        store.search(make(mode, "none", 0))
        first[mode] = (time.perf_counter() - t0) * 1e3
    out: dict[str, Any] = {"first_search_ms": first, "modes": {}}
    for mode in MODES:
        for filter_kind in FILTERS:
            prepared = [make(mode, filter_kind, i) for i in range(len(queries.texts))]
            out["modes"][f"{mode}/{filter_kind}"] = timed(lambda i, p=prepared: len(store.search(p[i])[0]),
                                                          len(prepared))
    return out


def _filter_body(kind: str, i: int) -> dict[str, Any]:
    ns, user = _scope(i)
    if kind == "none":
        return {}
    if kind == "namespace":
        return {"namespace": {"eq": ns}}
    return {"namespace": {"eq": ns}, "user_id": {"eq": user}}


def measure_http(base_url: str, queries: Queries) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {"modes": {}}
    with httpx.Client(base_url=base_url, timeout=60) as client:

        def health(_: int) -> int:
            client.get("/v1/health").raise_for_status()
            return 0

        out["health"] = timed(health, len(queries.texts))
        first: dict[str, float] = {}
        for mode in ("semantic", "keyword"):
            t0 = time.perf_counter()
            client.post("/v1/long-term-memory/search", json={"text": queries.texts[0], "search_mode": mode})
            first[mode] = (time.perf_counter() - t0) * 1e3
        out["first_search_ms"] = first
        for mode in MODES:
            for filter_kind in FILTERS:
                bodies = [
                    {"text": queries.texts[i], "search_mode": mode, "limit": LIMIT, "hybrid_alpha": ALPHA,
                     "recency_boost": False, **_filter_body(filter_kind, i)}
                    for i in range(len(queries.texts))
                ]

                def search(i: int, bodies: list[dict[str, Any]] = bodies) -> int:
                    response = client.post("/v1/long-term-memory/search", json=bodies[i])
                    response.raise_for_status()
                    return len(response.json()["memories"])

                out["modes"][f"{mode}/{filter_kind}"] = timed(search, len(bodies))
    if not out["modes"]["semantic/none"]["mean_results"]:
        raise RuntimeError("the server found no records: it does not serve the tenant the bench ingested")
    return out


@contextmanager
def served(data_dir: Path) -> Iterator[str]:
    """`agent-memory serve` on a free loopback port over `data_dir`; yields its base URL, stops it on exit."""
    from tests.fixtures.redis_process import free_port
    from tests.fixtures.serve_process import wait_until_healthy

    port = free_port()
    # Embedded backends only, whatever this shell has configured.
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "REDIS_URL", "OPENSEARCH_URL")}
    env.update({"EMBEDDING_PROVIDER": "fake", "EMBEDDING_DIMENSIONS": str(DIMS), "DEFAULT_TENANT": TENANT})
    command = [sys.executable, "-m", "agent_memory.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, timeout_seconds=120)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_references(data: Corpus, queries: Queries) -> dict[str, Any]:
    """Well-kept engines on the same records and queries: tantivy BM25 top-10, numpy exact top-10."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name="en_stem")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer(200_000_000, 1)
    for text in data.texts:
        writer.add_document(tantivy.Document(text=text))
    writer.commit()
    index.reload()
    searcher = index.searcher()
    stem = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).filter(
        tantivy.Filter.stemmer("english")).build()
    keyword_queries = [
        tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", term)) for term in stem.analyze(text)]
        )
        for text in queries.texts
    ]
    matrix = data.vectors
    vectors = np.asarray(queries.vectors, dtype=np.float32)

    def keyword(i: int) -> int:
        return len(searcher.search(keyword_queries[i], LIMIT, count=False).hits)

    def semantic(i: int) -> int:
        sims = matrix @ vectors[i]
        top = np.argpartition(-sims, LIMIT)[:LIMIT]
        return len(top[np.argsort(-sims[top])])

    return {"tantivy": timed(keyword, len(queries.texts)), "numpy": timed(semantic, len(queries.texts))}


@contextmanager
def opensearch_url(wanted: bool) -> Iterator[str | None]:
    """OPENSEARCH_URL or the test node (bench/_opensearch.py); None, with the reason, where Java is missing."""
    from tests.fixtures.opensearch_process import missing_tools

    from bench._opensearch import opensearch_url as cluster_url

    if not wanted:
        yield None
    elif not os.environ.get("OPENSEARCH_URL") and missing_tools():
        log(f"no {', '.join(missing_tools())}: skipping OpenSearch")
        yield None
    else:
        with cluster_url() as url:
            yield url


def opensearch_side(url: str, data: Corpus, queries: Queries) -> dict[str, Any]:
    """The same records in a fresh index on the node (bulk writes, one refresh), searched in-process."""
    from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore, owned_indexes

    index = f"bench-ltm-{len(data.records)}-{os.getpid()}"
    store = OpenSearchLongTermStore.from_settings_values(
        url=url, index=index, auth="none", service="es", region=None, username=None, password=None,
        timeout_seconds=120,
    )
    store.ensure_ready(DIMS)
    try:
        ingested = ingest(store, data, budget_s=OPENSEARCH_INGEST_BUDGET_S)
        store._client.indices.refresh(index=owned_indexes(index), ignore_unavailable=True)
        search = measure_store(store, queries)
    finally:  # the tenant's index (index per tenant, the default layout) and the hash claims too
        store._client.indices.delete(index=owned_indexes(index), ignore_unavailable=True)
    return {"ingest": ingested, "search": search, "engine": getattr(store, "_engine", None)}


def run(sizes: tuple[int, ...] = (10_000, 100_000), queries: int = 200, opensearch: bool = True) -> dict[str, Any]:
    from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore

    runs: list[dict[str, Any]] = []
    with opensearch_url(opensearch) as os_url:
        for size in sizes:
            data = corpus(size)
            wanted = queries_for(size, queries)
            item: dict[str, Any] = {"size": size}
            with tempfile.TemporaryDirectory(prefix="bench-ltm-") as tmp:
                data_dir = Path(tmp) / "data"
                store = SqliteLongTermStore(data_dir / "long_term.sqlite3")
                store.ensure_ready(DIMS)
                ingested = ingest(store, data)
                item["sqlite"] = measure_store(store, wanted)
                store.close()
                db_bytes = sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file())
                item["ingest"] = {**ingested, "db_mb": db_bytes / 1e6}
                log(f"{size}: sqlite in-process done")
                with served(data_dir) as url:
                    item["http"] = measure_http(url, wanted)
                log(f"{size}: http done")
            item["references"] = measure_references(data, wanted)
            if os_url is not None:
                item["opensearch"] = opensearch_side(os_url, data, wanted)
                log(f"{size}: opensearch done")
            runs.append(item)
    return {
        "bench": "long_term_search",
        "store": "SqliteLongTermStore (file, WAL; tantivy keyword index); agent-memory serve; OpenSearch node",
        "dims": DIMS, "limit": LIMIT, "alpha": ALPHA, "queries": queries, "warmup": WARMUP, "vocabulary": VOCAB,
        "zipf_s": ZIPF_S, "namespaces": NAMESPACES, "users": NAMESPACES * USERS_PER_NAMESPACE,
        "runs": runs, **machine(),
    }


def log(message: str) -> None:
    print(f"[long_term_search] {message}", file=sys.stderr, flush=True)


def _reference_ms(item: dict[str, Any], mode: str) -> float:
    refs = item["references"]
    tantivy, numpy = refs["tantivy"]["p50_ms"], refs["numpy"]["p50_ms"]
    return {"keyword": tantivy, "semantic": numpy, "hybrid": tantivy + numpy}[mode]


def _ms(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    note = f" (n={row['n']})" if row["n"] < 200 else ""
    return f"{row['p50_ms']:.2f} / {row['p95_ms']:.2f}{note}"


def markdown(data: dict[str, Any]) -> str:
    ingest_rows = []
    search_rows = []
    for item in data["runs"]:
        ing = item["ingest"]
        note = f" (stopped after {ing['stopped_early_after_s']:.0f} s)" if ing["stopped_early_after_s"] else ""
        osr = item.get("opensearch")
        ingest_rows.append([
            f"{item['size']:,}", f"{ing['records']:,}{note}", f"{ing['records_per_s']:.0f}", f"{ing['db_mb']:.0f}",
            f"{item['sqlite']['first_search_ms']['semantic']:.0f} / {item['sqlite']['first_search_ms']['keyword']:.0f}",
            f"{osr['ingest']['records']:,} at {osr['ingest']['records_per_s']:.0f}/s" if osr else "–",
        ])
        health = item["http"]["health"]["p50_ms"]
        for key in item["sqlite"]["modes"]:
            mode, filter_kind = key.split("/")
            reference = _reference_ms(item, mode)
            target = 3 * (reference + health)
            http = item["http"]["modes"][key]
            verdict = f"{target:.1f} {'met' if http['p50_ms'] <= target else 'missed'}" if filter_kind == "none" else ""
            search_rows.append([
                f"{item['size']:,}", mode, FILTERS[filter_kind], _ms(item["sqlite"]["modes"][key]), _ms(http),
                f"{reference:.2f}" if filter_kind == "none" else "", verdict,
                _ms(osr["search"]["modes"][key]) if osr else "–",
            ])
        search_rows.append([f"{item['size']:,}", "health", "", "", _ms(item["http"]["health"]), "", "", ""])
    return "\n".join([
        f"### Long-term search, {data['dims']}-dim random vectors, limit {data['limit']}, "
        f"{data['queries']} queries after {data['warmup']} warm-up ({data['cpus']} CPUs, Python {data['python']})",
        "",
        table(["size", "ingested", "records/s (batches of 100)", "DB MB", "first semantic / keyword search ms",
               "OpenSearch ingested"], ingest_rows),
        "",
        table(["records", "mode", "filter", "SQLite in-process p50 / p95 ms", "HTTP p50 / p95 ms",
               "reference p50 ms", "target ms (3 × (ref + health))", "OpenSearch in-process p50 / p95 ms"],
              search_rows, left=3),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_term_search", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    parser.add_argument("--quick", action="store_true", help="one 2,000-record run (long_term_search-quick.json)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode and filter")
    parser.add_argument("--no-opensearch", action="store_true", help="skip the OpenSearch node")
    args = parser.parse_args(argv)
    sizes = (2000,) if args.quick else tuple(int(s) for s in args.sizes.split(",") if s.strip())
    results = run(sizes, args.queries, opensearch=not args.no_opensearch)
    write_json("long_term_search-quick" if args.quick else "long_term_search", results)
    print(markdown(results), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
