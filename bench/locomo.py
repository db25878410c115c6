"""LoCoMo retrieval quality of long-term search: evidence recall@5/10/20 per search mode.

Every dialogue turn of a LoCoMo conversation becomes one MemoryRecord (`"<speaker>: <text>"`, plus the
image caption when the turn shares a photo), dated with its session's date, in namespace
`locomo-<conv>`. Each question of categories 1-4 (5 = adversarial, skipped) is searched in its
conversation's namespace through a real SqliteLongTermStore with limit 20; recall@k is the share of the
question's evidence turns (`dia_id`s) among the first k results, averaged over questions.

Category names follow the LoCoMo evaluation code (`task_eval/evaluation.py`) and the per-category
counts of the paper: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial. (The paper
lists the types in another order and some third-party harnesses label 1/3 differently.)

`--experiments` (on by default) re-ranks the same candidates outside the store with variants of the
fusion function (copied from adapters/_fusion.py, not imported, so the adapters stay untouched):
min-max vs reciprocal-rank fusion, the candidate pool size, the query prefix of the e5 model and the
BM25 tokenisation (stemming, stop-word removal on the query), to show which change would meet the
target. Embeddings are cached in bench/.cache/ (keyed by model and text hash).

    python -m bench.locomo [--embedder local|fake] [--conversations 26,30] [--no-cache] [--no-experiments]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent_memory.adapters._fusion import STOPWORDS
from bench._report import machine, percentiles, table, write_json

DATA_DIR = Path(os.environ.get("LOCOMO_DIR", "/work/shared/data/locomo-dev"))
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 20)
LIMIT = 20
DEFAULT_ALPHA = 0.5  # the store's default (domain/search.py)
ALPHAS = (0.3, 0.5, 0.7)
TENANT = "locomo"
BATCH = 100
TARGET_R10 = 0.80



# -- data -------------------------------------------------------------------------------------------


@dataclass
class Turn:
    index: int  # global position: row of the vector matrix, rowid-1 of the scratch FTS tables
    conv: str
    dia_id: str
    session: int
    when: datetime
    text: str


@dataclass
class Question:
    conv: str
    text: str
    category: int
    evidence: list[str]


@dataclass
class Dataset:
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    dropped_evidence: list[str] = field(default_factory=list)
    skipped_questions: int = 0

    def conv_indexes(self) -> dict[str, np.ndarray]:
        out: dict[str, list[int]] = {}
        for turn in self.turns:
            out.setdefault(turn.conv, []).append(turn.index)
        return {conv: np.asarray(rows, dtype=np.int64) for conv, rows in out.items()}


def parse_session_date(value: str) -> datetime:
    """`'1:56 pm on 8 May, 2023'` → 2023-05-08T13:56Z (LoCoMo dates carry no zone; taken as UTC)."""
    return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turn_text(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    if turn.get("blip_caption"):
        text += f" [shares a photo of {turn['blip_caption']}]"
    return text


def _evidence_ids(raw: Iterable[str]) -> list[str]:
    """Normalise evidence refs: `'D8:6; D9:17'` splits, `'D:11:26'` → `'D11:26'`."""
    ids: list[str] = []
    for item in raw:
        for part in re.split(r"[;,\s]+", str(item)):
            match = re.fullmatch(r"D:?(\d+):(\d+)", part.strip())
            if match:
                ids.append(f"D{match.group(1)}:{match.group(2)}")
            elif part.strip():
                ids.append(part.strip())
    return list(dict.fromkeys(ids))


def load_dataset(data_dir: Path, conversations: Sequence[str] | None = None) -> Dataset:
    dataset = Dataset()
    files = sorted(data_dir.glob("*.json"), key=lambda p: (len(p.stem), p.stem))
    for path in files:
        conv = path.stem
        if conversations and conv not in conversations:
            continue
        data = json.loads(path.read_text())
        sessions = sorted(
            (int(m.group(1)) for key in data if (m := re.fullmatch(r"session_(\d+)", key))),
        )
        known: set[str] = set()
        for n in sessions:
            when = parse_session_date(data[f"session_{n}_date_time"])
            for turn in data[f"session_{n}"]:
                dataset.turns.append(Turn(len(dataset.turns), conv, turn["dia_id"], n, when, turn_text(turn)))
                known.add(turn["dia_id"])
        for qa in data["qa"]:
            if qa["category"] not in CATEGORIES:
                continue
            evidence = []
            for ref in _evidence_ids(qa.get("evidence") or []):
                if ref in known:
                    evidence.append(ref)
                else:
                    dataset.dropped_evidence.append(f"{conv}:{ref}")
            if not evidence:
                dataset.skipped_questions += 1
                continue
            dataset.questions.append(Question(conv, qa["question"], qa["category"], evidence))
    if not dataset.turns:
        raise SystemExit(f"no LoCoMo conversations found in {data_dir} (set LOCOMO_DIR)")
    return dataset


def record_id(conv: str, dia_id: str) -> str:
    return f"{conv}-{dia_id}"


def namespace(conv: str) -> str:
    return f"locomo-{conv}"


# -- embeddings -------------------------------------------------------------------------------------


def make_embedder(name: str) -> Any:
    if name == "local":
        from agent_memory.adapters.local_embedder import LocalEmbedder

        return LocalEmbedder()
    if name == "fake":
        from agent_memory.adapters.fake_embedder import FakeEmbedder

        return FakeEmbedder(dimensions=256)
    raise SystemExit(f"unknown embedder {name!r}; use local or fake")


class EmbeddingCache:
    """Vectors by (model, kind, sha256(text)) in bench/.cache/<model>-<dims>.{npy,json}.

    `kind` is `doc` (embed_documents), `query` (embed_query) or `query-as-doc` (the question embedded
    with embed_documents, i.e. e5's "passage: " prefix: the query-prefix experiment).
    """

    def __init__(self, embedder: Any, directory: Path | None) -> None:
        self.embedder = embedder
        self.directory = directory
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{embedder.model}-{embedder.dimensions}")
        self._keys: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self.computed = 0
        if directory is not None:
            self._vec_path = directory / f"{slug}.npy"
            self._idx_path = directory / f"{slug}.json"
            if self._vec_path.exists() and self._idx_path.exists():
                keys = json.loads(self._idx_path.read_text())
                matrix = np.load(self._vec_path)
                if len(keys) == len(matrix):
                    self._keys = keys
                    self._rows = list(matrix)

    @staticmethod
    def _key(kind: str, text: str) -> str:
        return hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:32]

    def get(self, texts: Sequence[str], kind: str) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if self._key(kind, t) not in self._keys]
        if missing:
            if kind == "query":
                vectors = [self.embedder.embed_query(t) for t in missing]
            else:
                vectors = self.embedder.embed_documents(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._keys[self._key(kind, text)] = len(self._rows)
                self._rows.append(np.asarray(vector, dtype=np.float32))
            self.computed += len(missing)
            self.save()
        return np.stack([self._rows[self._keys[self._key(kind, t)]] for t in texts])

    def save(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        np.save(self._vec_path, np.stack(self._rows))
        self._idx_path.write_text(json.dumps(self._keys))


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


# -- metrics ----------------------------------------------------------------------------------------


def recall_at(ranked: Sequence[str], evidence: Sequence[str], k: int) -> float:
    top = set(ranked[:k])
    return sum(1 for e in evidence if e in top) / len(evidence)


def summarise(questions: Sequence[Question], rankings: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean recall@k overall and per category."""

    def block(pairs: list[tuple[Question, Sequence[str]]]) -> dict[str, float]:
        out: dict[str, float] = {"n": len(pairs)}
        for k in KS:
            out[f"r@{k}"] = sum(recall_at(r, q.evidence, k) for q, r in pairs) / max(1, len(pairs))
        return out

    pairs = list(zip(questions, rankings, strict=True))
    return {
        "overall": block(pairs),
        "by_category": {
            f"{c} {name}": block([(q, r) for q, r in pairs if q.category == c])
            for c, name in CATEGORIES.items()
            if any(q.category == c for q in questions)
        },
    }


# -- the store run ----------------------------------------------------------------------------------


def _records(dataset: Dataset) -> list[Any]:
    from agent_memory.domain.models import MemoryRecord

    return [
        MemoryRecord(
            id=record_id(t.conv, t.dia_id),
            text=t.text,
            namespace=namespace(t.conv),
            session_id=f"session_{t.session}",
            created_at=t.when,
            event_date=t.when,
            last_accessed=t.when,
            updated_at=t.when,
        )
        for t in dataset.turns
    ]


def store_modes() -> list[tuple[str, str, float]]:
    """(label, mode, alpha) of every configuration searched through the store."""
    return [
        ("semantic", "semantic", DEFAULT_ALPHA),
        ("keyword", "keyword", DEFAULT_ALPHA),
        *((f"hybrid a={a}", "hybrid", a) for a in ALPHAS),
    ]


def run_store(
    dataset: Dataset, doc_vectors: np.ndarray, query_vectors: np.ndarray, workdir: Path
) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
    from agent_memory.domain.filters import SearchFilters, SearchQuery, TagFilter

    records = _records(dataset)
    store = SqliteLongTermStore(workdir / "locomo.db")
    store.ensure_ready(doc_vectors.shape[1])
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        store.upsert(TENANT, records[i : i + BATCH], doc_vectors[i : i + BATCH].tolist())
    upsert_s = time.perf_counter() - start

    rankings: dict[str, list[list[str]]] = {}
    latency: dict[str, Any] = {}
    for label, mode, alpha in store_modes():
        samples: list[float] = []
        ranked_all: list[list[str]] = []
        for question, vector in zip(dataset.questions, query_vectors, strict=True):
            query = SearchQuery(
                tenant=TENANT,
                mode=mode,  # type: ignore[arg-type]
                filters=SearchFilters(namespace=TagFilter(eq=namespace(question.conv))),
                text=question.text if mode != "semantic" else None,
                vector=vector.tolist() if mode != "keyword" else None,
                alpha=alpha,
                limit=LIMIT,
            )
            t0 = time.perf_counter()
            results, _total = store.search(query)
            samples.append(time.perf_counter() - t0)
            prefix = f"{question.conv}-"
            ranked_all.append([r.id.removeprefix(prefix) for r in results])
        rankings[label] = ranked_all
        latency[label] = percentiles(samples)
    store.close()
    ingest = {"records": len(records), "upsert_s": upsert_s, "upsert_records_per_s": len(records) / upsert_s}
    return {"ingest": ingest, "search_latency": latency}, rankings


# -- experiments: the same candidates, re-ranked outside the store ------------------------------------

TOKENIZERS = {
    "porter": "porter unicode61 remove_diacritics 2",  # what SqliteLongTermStore uses
    "plain": "unicode61 remove_diacritics 2",  # no stemming
}


def _similarity(dist: float) -> float:
    return max(0.0, 1.0 - dist)


def fuse_minmax(vector: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], max_raw: float | None,
                alpha: float, *, keyword_minmax: bool = False, vector_minmax: bool = True) -> list[int]:
    """Copy of adapters/_fusion.fuse_hybrid (+ keyword_scores), with the normalisations switchable.

    `vector` is [(key, cosine distance)] best first, `keyword` is [(key, raw bm25)] best first.
    """
    sims = {key: _similarity(dist) for key, dist in vector}
    low = min(sims.values(), default=0.0)
    high = max(sims.values(), default=0.0)
    span = high - low
    fused: dict[int, float] = {}
    for key, sim in sims.items():
        if vector_minmax:
            fused[key] = alpha * ((sim - low) / span if span > 0 else 1.0)
        else:
            fused[key] = alpha * sim
    if keyword:
        top = max_raw if max_raw is not None else max(raw for _, raw in keyword)
        kw_low = min(raw for _, raw in keyword)
        for key, raw in keyword:
            if keyword_minmax:
                norm = (raw - kw_low) / (top - kw_low) if top > kw_low else 1.0
            else:
                norm = 1.0 if top <= 0 else min(1.0, raw / top)
            fused[key] = fused.get(key, 0.0) + (1.0 - alpha) * norm
    order = {key: i for i, key in enumerate(fused)}
    return [key for key, _ in sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))]


def fuse_rrf(vector: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], alpha: float | None,
             k: int = 60) -> list[int]:
    """Reciprocal-rank fusion (Cormack et al. 2009); `alpha` weighs the vector side (None = equal weights)."""
    wv, wk = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    fused: dict[int, float] = {}
    for rank, (key, _) in enumerate(vector, start=1):
        fused[key] = fused.get(key, 0.0) + wv / (k + rank)
    for rank, (key, _) in enumerate(keyword, start=1):
        fused[key] = fused.get(key, 0.0) + wk / (k + rank)
    order = {key: i for i, key in enumerate(fused)}
    return [key for key, _ in sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))]


class KeywordIndex:
    """Scratch FTS5 tables over the same texts, one per tokenizer; the store's BM25 query, reproduced."""

    def __init__(self, dataset: Dataset, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        for name, tokenize in TOKENIZERS.items():
            self.conn.execute(f"CREATE VIRTUAL TABLE fts_{name} USING fts5(text, ns UNINDEXED, tokenize='{tokenize}')")
            self.conn.executemany(
                f"INSERT INTO fts_{name} (rowid, text, ns) VALUES (?, ?, ?)",
                [(t.index + 1, t.text, t.conv) for t in dataset.turns],
            )
        self.conn.commit()

    def search(self, text: str, conv: str, tokenizer: str, stopwords: bool) -> list[tuple[int, float]]:
        from agent_memory.adapters._fusion import parse_keyword_query

        parsed = parse_keyword_query(text)
        words = list(parsed.words)
        if stopwords:
            kept = [w for w in words if w.lower() not in STOPWORDS]
            words = kept if kept or parsed.phrases else words
        terms = [*((w,) for w in words), *parsed.phrases]
        if not terms:
            return []

        def quote(tokens: Sequence[str]) -> str:
            return '"' + " ".join(tokens) + '"'

        table_name = f"fts_{tokenizer}"
        sql = (f"SELECT rowid, -bm25({table_name}) AS raw FROM {table_name}"
               f" WHERE {table_name} MATCH ? AND ns = ?")
        args: list[Any] = [" OR ".join(quote(t) for t in terms), conv]
        if parsed.phrases:
            sql += f" AND rowid IN (SELECT rowid FROM {table_name} WHERE {table_name} MATCH ?)"
            args.append(" AND ".join(quote(t) for t in parsed.phrases))
        sql += " ORDER BY raw DESC, rowid"
        return [(rowid - 1, float(raw)) for rowid, raw in self.conn.execute(sql, args)]


@dataclass(frozen=True)
class Variant:
    label: str
    fusion: str = "minmax"  # minmax | minmax-both | raw-cos | rrf | rrf-w | semantic | keyword | oracle
    alpha: float = DEFAULT_ALPHA
    pool: int | None = 100  # candidates per side; None = every row of the namespace
    tokenizer: str = "porter"
    stopwords: bool = False
    query_kind: str = "query"  # query ("query: " prefix) | query-as-doc ("passage: " prefix)
    rrf_k: int = 60


def experiment_variants(local: bool) -> list[Variant]:
    v: list[Variant] = [
        Variant("semantic (baseline)", fusion="semantic"),
        Variant("keyword (baseline: porter, all words)", fusion="keyword"),
        Variant("keyword, stop-words removed", fusion="keyword", stopwords=True),
        Variant("keyword, no stemming", fusion="keyword", tokenizer="plain"),
        Variant("keyword, no stemming, stop-words removed", fusion="keyword", tokenizer="plain", stopwords=True),
        Variant("hybrid min-max a=0.7 pool=100 (the store before stop words and a=0.5)"),
    ]
    for pool in (20, 50, 200, None):
        v.append(Variant(f"hybrid min-max a=0.7 pool={pool or 'all'}", pool=pool))
    v.append(Variant("hybrid min-max a=0.5 pool=100", alpha=0.5))
    v.append(Variant("hybrid min-max a=0.3 pool=100", alpha=0.3))
    v.append(Variant("hybrid min-max both sides a=0.7", fusion="minmax-both"))
    v.append(Variant("hybrid raw cosine + bm25/max a=0.7", fusion="raw-cos"))
    for k in (10, 60):
        v.append(Variant(f"hybrid RRF k={k} pool=100", fusion="rrf", rrf_k=k))
    v.append(Variant("hybrid RRF k=60 weighted a=0.7", fusion="rrf-w"))
    v.append(Variant("hybrid min-max a=0.7, stop-words removed", stopwords=True))
    v.append(Variant("hybrid min-max a=0.5, stop-words removed", alpha=0.5, stopwords=True))
    v.append(Variant("hybrid min-max a=0.7, no stemming", tokenizer="plain"))
    v.append(Variant("hybrid RRF k=60, stop-words removed", fusion="rrf", stopwords=True))
    v.append(Variant("hybrid min-max a=0.7 pool=20, stop-words removed", pool=20, stopwords=True))
    v.append(Variant("hybrid min-max a=0.5 pool=all, stop-words removed", alpha=0.5, pool=None, stopwords=True))
    v.append(Variant("hybrid min-max a=0.5 pool=20, stop-words removed", alpha=0.5, pool=20, stopwords=True))
    v.append(Variant("hybrid RRF k=10, stop-words removed", fusion="rrf", rrf_k=10, stopwords=True))
    v.append(Variant("hybrid RRF k=20, stop-words removed", fusion="rrf", rrf_k=20, stopwords=True))
    v.append(Variant("oracle: semantic top-5 + keyword top-5 (<=10 results)", fusion="oracle", pool=5, stopwords=True))
    v.append(Variant("oracle: semantic top-10 + keyword top-10 (<=20 results)", fusion="oracle", pool=10,
                     stopwords=True))
    if local:
        v.append(Variant("semantic, query embedded as passage", fusion="semantic", query_kind="query-as-doc"))
        v.append(Variant("hybrid min-max a=0.7, query as passage", query_kind="query-as-doc"))
        v.append(Variant("hybrid min-max a=0.7, query as passage, stop-words removed", query_kind="query-as-doc",
                         stopwords=True))
    return v


def run_experiments(
    dataset: Dataset,
    doc_vectors: np.ndarray,
    query_vectors: dict[str, np.ndarray],
    workdir: Path,
    variants: Sequence[Variant],
) -> dict[str, Any]:
    index = KeywordIndex(dataset, workdir / "scratch-fts.db")
    docs = _normalise(doc_vectors)
    rows_of = dataset.conv_indexes()
    dia = [t.dia_id for t in dataset.turns]

    vector_cache: dict[tuple[str, int], list[tuple[int, float]]] = {}
    keyword_cache: dict[tuple[str, bool, int], list[tuple[int, float]]] = {}

    def vector_side(kind: str, qi: int) -> list[tuple[int, float]]:
        key = (kind, qi)
        if key not in vector_cache:
            rows = rows_of[dataset.questions[qi].conv]
            q = _normalise(query_vectors[kind][qi : qi + 1])[0]
            dists = np.clip(1.0 - docs[rows] @ q, 0.0, 2.0).astype(np.float64)
            order = np.lexsort((rows, dists))
            vector_cache[key] = [(int(rows[i]), float(dists[i])) for i in order]
        return vector_cache[key]

    def keyword_side(tokenizer: str, stopwords: bool, qi: int) -> list[tuple[int, float]]:
        key = (tokenizer, stopwords, qi)
        if key not in keyword_cache:
            question = dataset.questions[qi]
            keyword_cache[key] = index.search(question.text, question.conv, tokenizer, stopwords)
        return keyword_cache[key]

    out: dict[str, Any] = {}
    for variant in variants:
        rankings: list[list[str]] = []
        for qi in range(len(dataset.questions)):
            if variant.fusion == "keyword":
                ranked = [key for key, _ in keyword_side(variant.tokenizer, variant.stopwords, qi)[:LIMIT]]
            elif variant.fusion == "semantic":
                ranked = [key for key, _ in vector_side(variant.query_kind, qi)[:LIMIT]]
            elif variant.fusion == "oracle":
                # Not a ranking: the union of both sides' top-`pool`, to bound what fusing them could find.
                pool = variant.pool or LIMIT
                vec_top = [key for key, _ in vector_side(variant.query_kind, qi)[:pool]]
                kw_top = [key for key, _ in keyword_side(variant.tokenizer, variant.stopwords, qi)[:pool]]
                ranked = list(dict.fromkeys([*vec_top, *kw_top]))
            else:
                vec_all = vector_side(variant.query_kind, qi)
                kw_all = keyword_side(variant.tokenizer, variant.stopwords, qi)
                pool = variant.pool or len(vec_all)
                pool = max(pool, LIMIT)
                vec, kw = vec_all[:pool], kw_all[:pool]
                max_raw = kw_all[0][1] if kw_all else None
                if variant.fusion == "minmax":
                    ranked = fuse_minmax(vec, kw, max_raw, variant.alpha)
                elif variant.fusion == "minmax-both":
                    ranked = fuse_minmax(vec, kw, max_raw, variant.alpha, keyword_minmax=True)
                elif variant.fusion == "raw-cos":
                    ranked = fuse_minmax(vec, kw, max_raw, variant.alpha, vector_minmax=False)
                elif variant.fusion == "rrf":
                    ranked = fuse_rrf(vec, kw, None, variant.rrf_k)
                elif variant.fusion == "rrf-w":
                    ranked = fuse_rrf(vec, kw, variant.alpha, variant.rrf_k)
                else:
                    raise ValueError(variant.fusion)
                ranked = ranked[:LIMIT]
            rankings.append([dia[key] for key in ranked])
        out[variant.label] = {"variant": variant.__dict__, **summarise(dataset.questions, rankings)}
    index.conn.close()
    return out


# -- the whole bench --------------------------------------------------------------------------------


def _measure_embedder(embedder: Any, dataset: Dataset) -> dict[str, Any]:
    """Embedding speed on a fixed sample, whether or not the cache holds the vectors."""
    docs = [t.text for t in dataset.turns[:256]]
    queries = [q.text for q in dataset.questions[:50]]
    embedder.embed_query("warm-up")
    t0 = time.perf_counter()
    embedder.embed_documents(docs)
    docs_s = time.perf_counter() - t0
    samples = []
    for text in queries:
        t0 = time.perf_counter()
        embedder.embed_query(text)
        samples.append(time.perf_counter() - t0)
    return {"embed_documents_per_s": len(docs) / docs_s, "embed_documents_sample": len(docs),
            "embed_query": percentiles(samples)}


def run(embedder_name: str = "local", *, data_dir: Path = DATA_DIR, conversations: Sequence[str] | None = None,
        use_cache: bool = True, experiments: bool = True) -> dict[str, Any]:
    wall = time.perf_counter()
    dataset = load_dataset(data_dir, conversations)
    embedder = make_embedder(embedder_name)
    cache = EmbeddingCache(embedder, CACHE_DIR if use_cache else None)

    t0 = time.perf_counter()
    doc_vectors = cache.get([t.text for t in dataset.turns], "doc")
    docs_computed = cache.computed
    doc_embed_s = time.perf_counter() - t0
    query_vectors = {"query": cache.get([q.text for q in dataset.questions], "query")}
    if experiments and embedder_name == "local":
        query_vectors["query-as-doc"] = cache.get([q.text for q in dataset.questions], "query-as-doc")
    speed = _measure_embedder(embedder, dataset)

    variants = experiment_variants(embedder_name == "local")
    with tempfile.TemporaryDirectory(prefix="bench-locomo-") as tmp:
        store_stats, rankings = run_store(dataset, doc_vectors, query_vectors["query"], Path(tmp))
        recall = {label: summarise(dataset.questions, ranked) for label, ranked in rankings.items()}
        exp = (
            run_experiments(dataset, doc_vectors, query_vectors, Path(tmp), variants) if experiments
            else {}
        )

    hybrid = recall[f"hybrid a={DEFAULT_ALPHA}"]["overall"]["r@10"]
    best_single = max(recall["semantic"]["overall"]["r@10"], recall["keyword"]["overall"]["r@10"])
    by_cat: dict[str, int] = {}
    for q in sorted(dataset.questions, key=lambda q: q.category):
        key = f"{q.category} {CATEGORIES[q.category]}"
        by_cat[key] = by_cat.get(key, 0) + 1
    return {
        "bench": "locomo",
        "embedder": {"name": embedder_name, "model": embedder.model, "dimensions": embedder.dimensions},
        "dataset": {
            "dir": str(data_dir),
            "conversations": sorted({t.conv for t in dataset.turns}, key=lambda c: (len(c), c)),
            "turns": len(dataset.turns),
            "questions": len(dataset.questions),
            "questions_by_category": by_cat,
            "skipped_questions_without_valid_evidence": dataset.skipped_questions,
            "dropped_evidence_refs": dataset.dropped_evidence,
        },
        "settings": {"limit": LIMIT, "ks": list(KS), "default_alpha": DEFAULT_ALPHA, "alphas": list(ALPHAS),
                     "hybrid_pool": "HYBRID_MIN_POOL of adapters/_fusion.py (100)", "upsert_batch": BATCH},
        "ingest": {
            **store_stats["ingest"],
            "embedded_this_run": docs_computed,
            "embed_s_this_run": doc_embed_s,
            **speed,
            "end_to_end_records_per_s_estimate": 1.0 / (
                1.0 / speed["embed_documents_per_s"] + 1.0 / store_stats["ingest"]["upsert_records_per_s"]
            ),
        },
        "search_latency": store_stats["search_latency"],
        "recall": recall,
        "target": {
            "hybrid_r@10": hybrid,
            "best_single_mode_r@10": best_single,
            "r@10_at_least_0.80": hybrid >= TARGET_R10,
            "hybrid_at_least_best_single_mode": hybrid >= best_single,
        },
        "experiments": exp,
        "wall_s": time.perf_counter() - wall,
        **machine(),
    }


def _fmt(x: float) -> str:
    return "n/a" if isinstance(x, float) and math.isnan(x) else f"{x:.3f}"


def _recall_rows(recall: dict[str, Any], cats: Sequence[str]) -> list[list[str]]:
    rows = []
    for label, summary in recall.items():
        o = summary["overall"]
        rows.append([label, *(_fmt(o[f"r@{k}"]) for k in KS),
                     *(_fmt(summary["by_category"].get(c, {}).get("r@10", float("nan"))) for c in cats)])
    return rows


def markdown(data: dict[str, Any]) -> str:
    cats = list(data["dataset"]["questions_by_category"])
    ds, ing, tgt = data["dataset"], data["ingest"], data["target"]
    parts = [
        f"### LoCoMo evidence recall, embedder `{data['embedder']['model']}` ({data['embedder']['dimensions']}-dim), "
        f"SqliteLongTermStore, limit {data['settings']['limit']}",
        "",
        f"{len(ds['conversations'])} conversations ({', '.join(ds['conversations'])}), {ds['turns']} turns, "
        f"{ds['questions']} questions (categories 1-4; " + ", ".join(f"{k}: {v}" for k, v in cats_items(ds)) + ").",
        "",
        table(["mode", "R@5", "R@10", "R@20", *(f"R@10 {c}" for c in cats)], _recall_rows(data["recall"], cats)),
        "",
        f"Target hybrid (a={data['settings']['default_alpha']}) R@10 >= {TARGET_R10}: "
        f"**{'met' if tgt['r@10_at_least_0.80'] else 'MISSED'}** ({tgt['hybrid_r@10']:.3f}); "
        f"hybrid >= best single mode ({tgt['best_single_mode_r@10']:.3f}): "
        f"**{'met' if tgt['hybrid_at_least_best_single_mode'] else 'MISSED'}**.",
        "",
        table(
            ["search (store only, query vector given)", "p50 ms", "p95 ms", "mean ms"],
            [[label, _fmt(m["p50_ms"]), _fmt(m["p95_ms"]), _fmt(m["mean_ms"])]
             for label, m in data["search_latency"].items()]
            + [["embed_query (model)", _fmt(ing["embed_query"]["p50_ms"]), _fmt(ing["embed_query"]["p95_ms"]),
                _fmt(ing["embed_query"]["mean_ms"])]],
        ),
        "",
        f"Ingest: store upsert {ing['upsert_records_per_s']:.0f} records/s ({ing['records']} records, batches of "
        f"{data['settings']['upsert_batch']}); embed_documents {ing['embed_documents_per_s']:.1f} texts/s; "
        f"end to end ~{ing['end_to_end_records_per_s_estimate']:.1f} records/s. "
        f"Embedded this run: {ing['embedded_this_run']} (rest from bench/.cache).",
    ]
    if data["experiments"]:
        parts += [
            "",
            "#### Experiments (same candidates re-ranked in the bench; adapters untouched)",
            "",
            table(["variant", "R@5", "R@10", "R@20", *(f"R@10 {c}" for c in cats)],
                  _recall_rows(data["experiments"], cats)),
        ]
    return "\n".join(parts)


def cats_items(ds: dict[str, Any]) -> list[tuple[str, int]]:
    return list(ds["questions_by_category"].items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["local", "fake"], default="local")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="directory of LoCoMo <conv>.json files")
    parser.add_argument("--conversations", help="comma-separated conversation ids (default: all in --data)")
    parser.add_argument("--no-cache", action="store_true",
                        help="re-embed everything; do not read or write bench/.cache")
    parser.add_argument("--no-experiments", action="store_true", help="only the store runs, no fusion variants")
    args = parser.parse_args(argv)
    conversations = args.conversations.split(",") if args.conversations else None
    results = run(args.embedder, data_dir=args.data, conversations=conversations, use_cache=not args.no_cache,
                  experiments=not args.no_experiments)
    path = write_json(f"locomo-{args.embedder}", results)
    print(markdown(results), end="\n\n", flush=True)
    print(f"written {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

