"""OpenSearch k-NN long-term store, for Amazon OpenSearch Service domains and Serverless (AOSS) collections.

Tenancy (`tenancy`, OPENSEARCH_TENANCY; docs/architecture.md, Tenancy):
  * `index-per-tenant` (the default): each tenant's records live in their own index,
    `tenant_index_name(OPENSEARCH_INDEX, tenant)`, so BM25 document frequencies and average lengths are
    the tenant's own, as on SQLite. The index is created with `index_body` on the tenant's first write (a
    create that another process won is fine: `resource_already_exists_exception`) and its mapping is
    checked when this process first touches it, the result cached per process; a tenant with no index
    reads as empty. `ensure_ready` checks every tenant index that exists (domains) and refuses a
    shared-layout index that still holds records, which this layout would never read.
  * `shared`: one index, OPENSEARCH_INDEX, holds every tenant. BM25 statistics are per shard, so a
    tenant's keyword and hybrid scores see other tenants' texts (never their records).
Every query carries a `tenant` term in both layouts, so no query reaches another tenant's records. The
hash claims (opensearch_dedup.py) stay in one `<OPENSEARCH_INDEX>-hash-claims` index in both: their ids
carry the tenant and they hold no text, so they affect no score.
Search runs the shared flow (services/ranking.py) over `OpenSearchCandidates` (opensearch_search.py).

Mapping (`index_body`): `vector` is a knn_vector, HNSW, `innerproduct`, engine `faiss` by default. Faiss
is the engine OpenSearch defaults to, the one AOSS vector collections are built around, and supports
efficient filtering (filters applied during the k-NN search, so a restrictive filter never loses results
to unfiltered neighbours); nmslib is deprecated. `OPENSEARCH_ENGINE=lucene` picks Lucene (inner product
since 2.13, efficient filtering since 2.4); `none` leaves `engine` out of the mapping, for collections that
refuse the parameter. The contract suite runs on a real node with lucene and faiss (infra/opensearch-node).

Why inner product, not cosine: stored vectors are unit length, or the mean of two unit vectors for a
message with conversation context (see the LongTermStore port). The inner product with the unit query is
then the mean of the two cosine similarities, which is what we rank by; `cosinesimil` would re-normalise
the mean and rank differently from the SQLite store. For unit vectors the two spaces agree.

Score → distance: for `innerproduct` the k-NN score of inner product `ip` is `ip + 1` when `ip >= 0` and
`1 / (1 - ip)` otherwise, for faiss and Lucene alike (docs: "Spaces",
https://docs.opensearch.org/latest/mappings/supported-field-types/knn-spaces/). `distance_from_score`
inverts it to `dist = 1 - ip`, the AMS cosine distance for unit vectors; `distance_threshold` becomes a
radial search with the matching `min_score` (`min_score_for_distance`).

Text is analysed like the SQLite store's tantivy index (adapters/sqlite_keyword_index.py): runs of
letters and digits (a `pattern` tokenizer; tantivy's simple tokenizer), lowercase, asciifolding and the
Porter2 (Snowball English) stemmer, so both stores match and score the same words. A record's
conversation context is a second text field, `context`; BM25 scores `body`, the text twice and the context
once (`domain.keywords.body_values`, as on SQLite), and required phrases match `text`.

Amazon OpenSearch Serverless, vector search collections (`serverless=True`):
  * custom document ids are rejected in index/create requests ("Document ID is not supported in
    create/index operation request"; AWS "Supported operations" lists `PUT <index>/_doc/<id>`,
    `_create/<id>` and `_update/<id>` as "for search collection types only"). So documents get
    generated ids; our id lives in the `memory_id` keyword field, and an upsert first looks up the
    existing documents by `memory_id` and deletes them by their generated `_id` in the same bulk request
    that indexes the new version. `touch` re-indexes the whole document the same way (no `_update`).
  * the refresh API and the `refresh` parameter are not available (404 on `_refresh`), so writes are
    sent without it. Consequence: a write becomes visible to search (and to the id lookup above) only
    after the collection's own refresh, typically seconds later. A re-upsert of an id written moments
    before can therefore leave two versions; reads keep the most recently written one (`written_at`)
    and the next upsert or delete of that id removes both. Totals may count such a duplicate briefly.
Domains (`serverless=False`) use `_id = "{tenant}:{id}"`, so an upsert replaces in place, and
`refresh="wait_for"` on every write, so the next get/search sees it (read-your-writes).

Writes on a domain: `upsert_unique` holds content dedup under concurrency with a claim document per
(tenant, hash) (opensearch_dedup.py); a bulk request whose items partly fail deletes what it created
before raising; an item the engine refuses (400) is bad input, anything else a DependencyUnavailableError.

Dates are `date` fields in epoch milliseconds: date filters compare at millisecond resolution (the record
JSON keeps microseconds), sent as half-open `[gte, lt)` integer ranges (an inclusive `lte` on a negative
epoch_millis value misses the date itself on OpenSearch 2.19).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlparse

from agent_memory.adapters.opensearch_dedup import CLAIMS_SUFFIX, HashClaims, claims_index_body
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError, InvalidInputError
from agent_memory.domain.filters import DATE_FIELDS, TAG_FIELDS, SearchFilters, SearchQuery
from agent_memory.domain.keywords import body_values
from agent_memory.domain.models import MemoryRecord, MemoryRecordResult
from agent_memory.services import ranking

KEYWORD_FIELDS = (
    "tenant",
    "memory_id",
    "namespace",
    "user_id",
    "session_id",
    "topics",
    "entities",
    "memory_type",
    "extraction_strategy",
    "memory_hash",
    "discrete_memory_extracted",
)
DOC_DATE_FIELDS = ("created_at", "last_accessed", "updated_at", "event_date", "persisted_at")
SOURCE_FIELDS = ["memory_id", "written_at", "record"]
SPACE_TYPE = "innerproduct"  # see the module docstring
MAX_RESULTS = 10_000  # OpenSearch's default index.max_result_window and the k-NN `k` ceiling
Engine = Literal["faiss", "lucene", "none"]
Tenancy = Literal["index-per-tenant", "shared"]
TENANT_INFIX = "-t-"
READABLE_CHARS = 40
HASH_CHARS = 16
# The longest OPENSEARCH_INDEX whose tenant indexes stay within OpenSearch's 255-byte index names.
MAX_BASE_NAME_BYTES = 255 - len(TENANT_INFIX) - READABLE_CHARS - 1 - HASH_CHARS


def _no_hits() -> dict[str, Any]:
    return {"hits": {"total": {"value": 0}, "max_score": None, "hits": []}}


def tenant_index_name(base: str, tenant: str) -> str:
    """The index that holds `tenant`'s records in the index-per-tenant layout: `<base>-t-<readable>-<hash>`.

    Tenants are any strings (any case, `:`, unicode); index names must be lowercase, from a restricted
    charset, at most 255 bytes. The readable part, for people reading `_cat/indices`, is the tenant folded
    to ASCII and lowercased, each run of anything but [a-z0-9] one `-`, cut at 40 characters (left out
    when nothing is left). The hash keeps names apart: the first 16 hex digits of SHA-256 over the exact
    tenant's UTF-8, always the last 16 characters, so two tenants share an index only if they share those
    64 bits ("Acme" and "acme" share a readable part, not a hash).

    >>> tenant_index_name("agent-memory", "Acme Corp:EU")
    'agent-memory-t-acme-corp-eu-5775be3cf1602824'
    >>> tenant_index_name("agent-memory", "東京")
    'agent-memory-t-130016b2599bf7e5'
    """
    folded = unicodedata.normalize("NFKD", tenant).encode("ascii", "ignore").decode("ascii").lower()
    readable = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:READABLE_CHARS].rstrip("-")
    digest = hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{base}{TENANT_INFIX}{readable}-{digest}" if readable else f"{base}{TENANT_INFIX}{digest}"


def _is_tenant_index(base: str, name: str) -> bool:
    return re.fullmatch(rf"{re.escape(base + TENANT_INFIX)}(?:[a-z0-9-]*-)?[0-9a-f]{{{HASH_CHARS}}}", name) is not None


def owned_indexes(base: str) -> str:
    """Every index a store on `base` may create, as one index expression (to delete them all, in tests
    and benches): the shared index, the hash claims, and the tenant indexes."""
    return f"{base},{base}{CLAIMS_SUFFIX},{base}{TENANT_INFIX}*"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _millis(value: datetime | None) -> int | None:
    """Epoch milliseconds, floored, in exact integer arithmetic (a float timestamp loses microseconds near
    year 9999 and truncates pre-1970 values towards zero)."""
    return None if value is None else (value - _EPOCH) // _MS


def index_body(dimensions: int, engine: Engine = "faiss") -> dict[str, Any]:
    """Settings and mappings of the index (checked against OpenSearch docs "k-NN vector", "Methods and
    engines", "Spaces"; AOSS accepts custom analyzers in index settings). `engine="none"` leaves the
    engine out of the method, for collections that refuse the parameter and pick their own."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in KEYWORD_FIELDS}
    properties.update({name: {"type": "date", "format": "epoch_millis"} for name in DOC_DATE_FIELDS})
    properties["text"] = {"type": "text", "analyzer": "memory_text"}
    properties["context"] = {"type": "text", "analyzer": "memory_text"}
    properties["body"] = {"type": "text", "analyzer": "memory_text"}  # what BM25 scores: body_values
    properties["written_at"] = {"type": "long"}
    properties["record"] = {"type": "object", "enabled": False}
    method: dict[str, Any] = {"name": "hnsw", "space_type": SPACE_TYPE}
    if engine != "none":
        method["engine"] = engine
    properties["vector"] = {"type": "knn_vector", "dimension": dimensions, "method": method}
    return {
        "settings": {
            "index": {"knn": True},
            "analysis": {
                "tokenizer": {"memory_words": {"type": "pattern", "pattern": "[^\\p{IsAlphabetic}\\p{N}]+"}},
                "filter": {"memory_stem": {"type": "stemmer", "language": "porter2"}},
                "analyzer": {
                    "memory_text": {
                        "type": "custom",
                        "tokenizer": "memory_words",
                        "filter": ["lowercase", "asciifolding", "memory_stem"],
                    }
                },
            },
        },
        "mappings": {"dynamic": False, "properties": properties},
    }


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _millis_range(value: datetime) -> dict[str, int]:
    """The millisecond `value` falls in, as a half-open range (what a stored date compares equal to)."""
    return {"gte": _ms(value), "lt": _ms(value) + 1}


def filter_query(tenant: str, filters: SearchFilters) -> dict[str, Any]:
    """A bool query equivalent to `filters.matches` for one tenant (tenant term always first)."""
    must: list[dict[str, Any]] = [{"term": {"tenant": tenant}}]
    must_not: list[dict[str, Any]] = []
    for name in (*TAG_FIELDS, "memory_type"):
        tag = getattr(filters, name)
        if tag is None:
            continue
        if tag.startswith is not None:
            must.append({"prefix": {name: tag.startswith}})
        # `all` arrives as one single-value group per value, i.e. one term per value (AND).
        for group in tag.required_any():
            must.append({"terms": {name: group}})
        if excluded := tag.excluded():
            must_not.append({"terms": {name: excluded}})
    for name in DATE_FIELDS:
        date_filter = getattr(filters, name)
        if date_filter is None:
            continue
        must.append({"exists": {"field": name}})  # a record without the date never matches
        # Every bound is sent as a half-open [gte, lt) range of integer millis: OpenSearch parses an
        # inclusive upper bound (`lte`, and `term`, which is a range too) by rounding up, and for a
        # negative epoch_millis value that leaves out the date itself (found on the test node).
        if date_filter.eq is not None:
            must.append({"range": {name: _millis_range(date_filter.eq)}})
        if date_filter.ne is not None:
            must_not.append({"range": {name: _millis_range(date_filter.ne)}})
        lower, lower_inc, upper, upper_inc = date_filter.bounds()
        bounds: dict[str, int] = {}
        if lower is not None:
            bounds["gte"] = _ms(lower) + (0 if lower_inc else 1)
        if upper is not None:
            bounds["lt"] = _ms(upper) + (1 if upper_inc else 0)
        if bounds:
            must.append({"range": {name: bounds}})
    query: dict[str, Any] = {"filter": must}
    if must_not:
        query["must_not"] = must_not
    return {"bool": query}


def knn_body(query: SearchQuery, size: int) -> dict[str, Any]:
    """Efficient-filtering k-NN query ("Efficient k-NN filtering"); radial (`min_score`) with a threshold
    ("Radial search"). `size` hits come back, best first."""
    assert query.vector is not None
    knn: dict[str, Any] = {"vector": list(query.vector)}
    if query.distance_threshold is None:
        knn["k"] = size
    else:
        knn["min_score"] = min_score_for_distance(query.distance_threshold)
    knn["filter"] = filter_query(query.tenant, query.filters)
    return {
        "size": size,
        "track_total_hits": True,
        "_source": SOURCE_FIELDS,
        "query": {"knn": {"vector": knn}},
    }


def list_body(query: SearchQuery) -> dict[str, Any]:
    return {
        "from": query.offset,
        "size": query.limit,
        "track_total_hits": True,
        "_source": SOURCE_FIELDS,
        "query": filter_query(query.tenant, query.filters),
        "sort": [{"created_at": {"order": "desc"}}, {"memory_id": {"order": "desc"}}],
    }


def distance_from_score(score: float) -> float:
    """Distance `1 - ip` from an `innerproduct` k-NN score (`ip + 1` for ip >= 0, else `1 / (1 - ip)`)."""
    if score <= 0:
        return 2.0
    ip = score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    return min(2.0, max(0.0, 1.0 - ip))


def min_score_for_distance(threshold: float) -> float:
    """The k-NN score of inner product `1 - threshold`: radial search keeps dist <= threshold."""
    ip = 1.0 - threshold
    return ip + 1.0 if ip >= 0 else 1.0 / (1.0 - ip)


def _at_most_unit(vector: Sequence[float]) -> list[float]:
    """The vector as floats, scaled down to unit length if longer (see the LongTermStore port)."""
    values = [float(v) for v in vector]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 1.0 + 1e-6 else values


def _ids_query(tenant: str, ids: Sequence[str]) -> dict[str, Any]:
    return {"bool": {"filter": [{"term": {"tenant": tenant}}, {"terms": {"memory_id": list(ids)}}]}}


def _newest_per_id(hits: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for hit in hits:
        source = hit["_source"]
        current = newest.get(source["memory_id"])
        if current is None or source.get("written_at", 0) > current["_source"].get("written_at", 0):
            newest[source["memory_id"]] = hit
    return newest


class OpenSearchLongTermStore:
    def __init__(
        self,
        client: Any,
        *,
        index_name: str,
        serverless: bool,
        dimensions: int | None = None,
        engine: Engine = "faiss",
        claim_grace_seconds: float = 11.0,
        tenancy: Tenancy = "index-per-tenant",
    ) -> None:
        self._client = client
        self._index = index_name
        self._serverless = serverless
        self._dims = dimensions
        self._engine = engine
        self._tenancy = tenancy
        self._checked: set[str] = set()  # indexes whose mapping this process found right (for self._dims)
        self._scanned_dims: int | None = None  # the dimension ensure_ready last checked tenant indexes for
        self._claims = HashClaims(client, index_name, self._calling, grace_seconds=claim_grace_seconds)

    @classmethod
    def from_settings_values(
        cls,
        url: str,
        index: str,
        auth: Literal["none", "basic", "sigv4"],
        service: Literal["es", "aoss"],
        region: str | None,
        username: str | None,
        password: str | None,
        timeout_seconds: float,
        engine: Engine = "faiss",
        tenancy: Tenancy = "index-per-tenant",
    ) -> OpenSearchLongTermStore:
        """Build the client once per execution environment (the caller caches the store)."""
        from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, Urllib3HttpConnection

        parsed = urlparse(url)
        use_ssl = parsed.scheme == "https"
        http_auth: Any = None
        if auth == "basic":
            if not username or not password:
                raise ConfigurationError("OPENSEARCH_AUTH=basic needs a username and a password", "opensearch")
            http_auth = (username, password)
        elif auth == "sigv4":
            import boto3

            session = boto3.Session()
            credentials = session.get_credentials()
            region = region or session.region_name
            if credentials is None or not region:
                raise ConfigurationError("OPENSEARCH_AUTH=sigv4 needs AWS credentials and a region", "opensearch")
            http_auth = Urllib3AWSV4SignerAuth(credentials, region, service)
        client = OpenSearch(
            hosts=[{"host": parsed.hostname, "port": parsed.port or (443 if use_ssl else 9200)}],
            url_prefix=parsed.path.rstrip("/"),
            http_auth=http_auth,
            use_ssl=use_ssl,
            verify_certs=use_ssl,
            connection_class=Urllib3HttpConnection,
            timeout=timeout_seconds,
            # One retry on 502/503/504 only: a timed-out request is not repeated, so the worst case
            # stays within two timeouts of the caller's budget.
            max_retries=1,
            retry_on_timeout=False,
            pool_maxsize=10,
        )
        # A writer between its hash claim and its write takes at most a search and a bulk request.
        grace = 2 * timeout_seconds + 1.0
        return cls(
            client,
            index_name=index,
            serverless=service == "aoss",
            engine=engine,
            claim_grace_seconds=grace,
            tenancy=tenancy,
        )

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        from opensearchpy.exceptions import AuthenticationException, AuthorizationException, TransportError

        try:
            yield
        except (AuthenticationException, AuthorizationException) as exc:
            raise ConfigurationError(
                f"opensearch refused {action} ({exc.status_code}); check OPENSEARCH_AUTH and the "
                "domain access policy or AOSS data access policy",
                "opensearch",
            ) from exc
        except TransportError as exc:  # includes ConnectionError / ConnectionTimeout ("N/A")
            raise DependencyUnavailableError("opensearch", f"{action} failed: {exc}") from exc

    def _index_of(self, tenant: str) -> str:
        return self._index if self._tenancy == "shared" else tenant_index_name(self._index, tenant)

    def _readable(self, tenant: str) -> str | None:
        """The index to read `tenant` from, checked; None when the tenant has no index (nothing stored).
        The shared index was checked by ensure_ready."""
        index = self._index_of(tenant)
        if self._tenancy == "shared" or index in self._checked:
            return index
        return index if self._check_index(index, self._dims) else None

    def _writable(self, tenant: str, dimensions: int) -> str:
        """The index to write `tenant` to: created on the tenant's first write, checked once per process."""
        index = self._index_of(tenant)
        if self._tenancy == "shared" or index in self._checked or self._check_index(index, dimensions):
            return index
        with self._calling("index setup"):
            self._create(index, index_body(dimensions, self._engine))
        if not self._check_index(index, dimensions):  # deleted again at once: let the caller retry
            raise DependencyUnavailableError("opensearch", f"index '{index}' vanished right after it was created")
        return index

    def _search(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        from opensearchpy.exceptions import NotFoundError

        index = self._readable(tenant)
        if index is None:
            return _no_hits()
        with self._calling("search"):
            try:
                return self._client.search(index=index, body=body)
            except NotFoundError:  # no index (any more): nothing is stored; check it again next time
                self._checked.discard(index)
                return _no_hits()

    def _count(self, tenant: str, query: dict[str, Any]) -> int:
        from opensearchpy.exceptions import NotFoundError

        index = self._readable(tenant)
        if index is None:
            return 0
        with self._calling("count"):
            try:
                return int(self._client.count(index=index, body={"query": query})["count"])
            except NotFoundError:
                self._checked.discard(index)
                return 0

    def _bulk(self, index: str, lines: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        if not lines:
            return []
        kwargs: dict[str, Any] = {} if self._serverless else {"refresh": "wait_for"}
        with self._calling("bulk write"):
            response = self._client.bulk(body=lines, index=index, **kwargs)
        items = [next(iter(item.items())) for item in response.get("items", [])]
        failed = [
            (action, result)
            for action, result in items
            if int(result.get("status", 200)) >= 300 and not (action == "delete" and int(result["status"]) == 404)
        ]
        if failed:
            self._compensate(index, items)
            action, result = failed[0]
            error = result.get("error") or {}
            detail = f"bulk {action} of {len(failed)} of {len(items)} documents failed: {error}"
            if int(result.get("status", 500)) == 400:
                # The engine refuses this document (e.g. a tag over Lucene's 32 KB term limit, or a field
                # the index maps otherwise). ensure_ready already refused indexes whose mapping conflicts
                # with ours, so the record's content is the likelier cause: a 400 with the engine's reason.
                reason = error.get("reason") or error.get("type") if isinstance(error, dict) else error
                raise InvalidInputError(f"OpenSearch refused a memory record, nothing was stored: {reason}")
            raise DependencyUnavailableError("opensearch", detail)
        return items

    def _compensate(self, index: str, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Delete the documents a partly failed bulk request created, so no half of a batch stays. A
        replaced document (`updated`) keeps its new version: its old one is gone either way, and a retry
        of the same upsert converges."""
        created = [result["_id"] for action, result in items if action == "index" and result.get("result") == "created"]
        if not created:
            return
        kwargs: dict[str, Any] = {} if self._serverless else {"refresh": "wait_for"}
        with self._calling("bulk compensation"):
            self._client.bulk(body=[{"delete": {"_index": index, "_id": _id}} for _id in created], **kwargs)

    def _hits_by_ids(self, tenant: str, ids: Sequence[str], *, with_vector: bool = False) -> list[dict[str, Any]]:
        hits: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            body = {
                "size": min(MAX_RESULTS, 4 * len(chunk)),  # room for not-yet-cleaned duplicates (AOSS)
                "_source": True if with_vector else SOURCE_FIELDS,
                "query": _ids_query(tenant, chunk),
            }
            hits += self._search(tenant, body)["hits"]["hits"]
        return hits

    def _document(
        self, tenant: str, record: MemoryRecord, vector: Sequence[float], context: str | None
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "tenant": tenant,
            "memory_id": record.id,
            "text": record.text,
            "context": context or None,
            "body": body_values(record.text, context),
            "namespace": record.namespace or None,
            "user_id": record.user_id or None,
            "session_id": record.session_id or None,
            "topics": list(record.topics or []),
            "entities": list(record.entities or []),
            "memory_type": str(record.memory_type),
            "extraction_strategy": record.extraction_strategy or None,
            "memory_hash": record.memory_hash,
            "discrete_memory_extracted": record.discrete_memory_extracted,
            "written_at": time.time_ns(),
            "vector": [float(v) for v in vector],
            "record": record.model_dump(mode="json"),
        }
        for name in DOC_DATE_FIELDS:
            doc[name] = _millis(getattr(record, name))
        return doc

    def _write(self, tenant: str, docs: Sequence[dict[str, Any]], stale: Sequence[str]) -> None:
        """Index `docs`; on AOSS also delete the `stale` generated ids they replace, in one bulk request."""
        if not docs and not stale:
            return
        # The dimension ensure_ready was given; a store used without it creates an index for its vectors.
        index = self._writable(tenant, self._dims or (len(docs[0]["vector"]) if docs else 1))
        lines: list[dict[str, Any]] = [{"delete": {"_index": index, "_id": _id}} for _id in stale]
        for doc in docs:
            if self._serverless:
                lines.append({"index": {"_index": index}})
            else:
                lines.append({"index": {"_index": index, "_id": f"{tenant}:{doc['memory_id']}"}})
            lines.append(doc)
        self._bulk(index, lines)

    # -- LongTermStore --------------------------------------------------------------------------

    def ensure_ready(self, dimensions: int) -> None:
        """Prepare and check what needs no tenant (start-up, and the deep health check).

        Shared layout: create the index if missing and check it. Index per tenant: check every tenant
        index that exists, once per process and dimension (domains; on AOSS each tenant's index is checked
        when this process first touches it), and refuse an index of the shared layout that still holds
        records. On a domain, create the hash-claims index if missing.

        Raises:
            ConfigurationError: an index holds vectors of another dimension or space, or maps one of our
                fields with another type (a mapping conflict), naming what it found and what is needed; or
                the layout is index-per-tenant and the shared index still holds records.
        """
        with self._calling("index setup"):
            if self._tenancy == "shared":
                self._create_if_missing(self._index, index_body(dimensions, self._engine))
            if not self._serverless:
                self._create_if_missing(self._claims.index, claims_index_body())
        if self._tenancy == "shared":
            self._checked.discard(self._index)
            if not self._check_index(self._index, dimensions):
                raise DependencyUnavailableError("opensearch", f"index '{self._index}' vanished right after setup")
        else:
            self._refuse_shared_records()
            if not self._serverless and self._scanned_dims != dimensions:
                self._check_tenant_indexes(dimensions)
        self._dims = dimensions

    def _create_if_missing(self, index: str, body: dict[str, Any]) -> None:
        if not self._client.indices.exists(index=index):
            self._create(index, body)

    def _create(self, index: str, body: dict[str, Any]) -> None:
        from opensearchpy.exceptions import RequestError

        try:
            self._client.indices.create(index=index, body=body)
        except RequestError as exc:  # another process created it first: checked like any existing index
            if "resource_already_exists_exception" not in str(exc):
                raise

    def _check_index(self, index: str, dimensions: int | None) -> bool:
        """Whether `index` exists; when it does, its mapping must fit (remembered once `dimensions` is known)."""
        from opensearchpy.exceptions import NotFoundError

        with self._calling("index check"):
            try:
                mapping = self._client.indices.get_mapping(index=index)
            except NotFoundError:
                return False
        self._check_mapping(index, next(iter(mapping.values()))["mappings"].get("properties", {}), dimensions)
        if self._tenancy != "shared" and not self._serverless:
            # A tenant index another process is creating exists (and has its mapping) before its primary
            # shard has started; reads and writes fail until it has (no_shard_available_action_exception).
            # Health reports such an index yellow already, so wait for its (one: index_body sets no
            # number_of_shards, OpenSearch's default is 1) primary to be active. Bounded by the client's
            # request timeout (opensearch-py takes a `timeout` argument as that, not as the server's).
            with self._calling("index check"):
                self._client.cluster.health(index=index, wait_for_active_shards="1")
        if dimensions is not None:
            self._checked.add(index)
        return True

    def _check_tenant_indexes(self, dimensions: int) -> None:
        """Check every tenant index there is (one request), so a wrong dimension stops start-up."""
        with self._calling("index check"):
            mappings = self._client.indices.get_mapping(index=f"{self._index}{TENANT_INFIX}*")
        found = sorted(name for name in mappings if _is_tenant_index(self._index, name))
        for name in found:
            self._check_mapping(name, mappings[name]["mappings"].get("properties", {}), dimensions)
        self._checked = set(found)
        self._scanned_dims = dimensions

    def _refuse_shared_records(self) -> None:
        with self._calling("index check"):
            if not self._client.indices.exists(index=self._index):
                return
            stored = int(self._client.count(index=self._index)["count"])
        if stored:
            raise ConfigurationError(
                f"OpenSearch index '{self._index}' holds {stored} memory records of the shared layout, but "
                "OPENSEARCH_TENANCY=index-per-tenant reads each tenant's own index and would never return "
                "them; set OPENSEARCH_TENANCY=shared to keep that layout, or re-index the records into "
                "their tenants' indexes (docs/architecture.md, Tenancy)",
                "opensearch",
            )

    def _check_mapping(self, index: str, properties: dict[str, Any], dimensions: int | None) -> None:
        vector = properties.get("vector", {})
        if vector and vector.get("type") != "knn_vector":
            raise ConfigurationError(
                f"OpenSearch index '{index}' maps 'vector' as '{vector.get('type', 'object')}', but this "
                "version needs 'knn_vector' (the index was not created by agent-memory, or index.knn was off); "
                "set OPENSEARCH_INDEX to a new index",
                "opensearch",
            )
        stored = vector.get("dimension")
        if stored is not None and dimensions is not None and int(stored) != dimensions:
            raise ConfigurationError(
                f"OpenSearch index '{index}' was built with {stored}-dim vectors but the embedder "
                f"produces {dimensions}; use the embedding model the index was built with, or set "
                "OPENSEARCH_INDEX to a new index (existing memories must be re-embedded)",
                "opensearch",
            )
        space = vector.get("method", {}).get("space_type") or vector.get("space_type")
        if space is not None and space != SPACE_TYPE:
            raise ConfigurationError(
                f"OpenSearch index '{index}' scores vectors with '{space}', but this version needs "
                f"'{SPACE_TYPE}' (see opensearch_long_term.py); set OPENSEARCH_INDEX to a new index and "
                "re-index the memories",
                "opensearch",
            )
        expected = index_body(dimensions or 1, self._engine)["mappings"]["properties"]
        conflicts = [
            f"'{name}' is '{properties[name].get('type', 'object')}', needs '{want['type']}'"
            for name, want in expected.items()
            if name != "vector" and name in properties and properties[name].get("type", "object") != want["type"]
        ]
        if "body" not in properties:
            conflicts.append("'body' is missing (an index written before keyword search scored it)")
        if conflicts:
            raise ConfigurationError(
                f"OpenSearch index '{index}' has a mapping that conflicts with this version's: "
                f"{'; '.join(conflicts)}; set OPENSEARCH_INDEX to a new index and re-index the memories",
                "opensearch",
            )

    def upsert(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> None:
        latest = self._prepared(records, vectors, contexts)
        stale: list[str] = []
        if self._serverless and latest:
            stale = [hit["_id"] for hit in self._hits_by_ids(tenant, list(latest))]
        self._write(tenant, [self._document(tenant, r, v, c) for r, v, c in latest.values()], stale)

    def _prepared(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None,
    ) -> dict[str, tuple[MemoryRecord, list[float], str | None]]:
        """The batch by id (the last version of a repeated id wins), vectors checked, before any write."""
        if len(records) != len(vectors) or (contexts is not None and len(contexts) != len(records)):
            raise ValueError(f"{len(records)} records but {len(vectors)} vectors / contexts")
        given = contexts if contexts is not None else [None] * len(records)
        latest = {
            record.id: (record, _at_most_unit(vector), context)
            for record, vector, context in zip(records, vectors, given, strict=True)
        }
        for _, vector, _ in latest.values():
            self._check_dims(len(vector), "vector to store")
        return latest

    def upsert_unique(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> list[str]:
        """`upsert`, skipping a record whose `memory_hash` another record of the tenant already holds.

        On a domain, atomic across writers through a hash claim per (tenant, hash) (opensearch_dedup.py).
        On Serverless (no custom `_id`, no refresh) it is a look-then-write: writers racing within the
        collection's refresh interval (seconds) can each store the same content once.
        """
        latest = self._prepared(records, vectors, contexts)
        answer: dict[str, str] = {}
        kept: dict[str, str] = {}  # memory_hash -> id kept, within this batch
        claimed: list[tuple[str, tuple[int, int]]] = []  # (hash, token) of claims this call holds
        chosen: list[tuple[MemoryRecord, list[float], str | None]] = []
        try:
            for record, vector, context in latest.values():
                digest = record.memory_hash
                if digest is not None and kept.get(digest, record.id) != record.id:
                    answer[record.id] = kept[digest]
                    continue
                if digest is not None and digest not in kept:
                    owner = self._owner_of(tenant, digest, record.id, claimed)
                    if owner != record.id:
                        answer[record.id] = owner
                        continue
                    kept[digest] = record.id
                answer[record.id] = record.id
                chosen.append((record, vector, context))
            if chosen:
                self.upsert(tenant, [c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen])
        except BaseException:
            for digest, token in claimed:  # the records were not (all) written: free their content again
                self._claims.release(tenant, digest, token)
            raise
        return [answer[record.id] for record in records]

    def _owner_of(self, tenant: str, digest: str, record_id: str, claimed: list[tuple[str, tuple[int, int]]]) -> str:
        """The id that keeps content `digest`: `record_id` when this writer may store it."""
        if self._serverless:
            others = [r for r in self.find_by_hash(tenant, digest) if r.id != record_id]
            return others[0].id if others else record_id
        claim = self._claims.claim(
            tenant,
            digest,
            record_id,
            record=lambda owner: self._record_now(tenant, owner),
            stored=lambda: self.find_by_hash(tenant, digest),
        )
        if claim.won and claim.token is not None:
            claimed.append((digest, claim.token))
        return claim.owner

    def _record_now(self, tenant: str, record_id: str) -> MemoryRecord | None:
        """One record by its `_id`, realtime: seen as soon as it is indexed, before any refresh (domains)."""
        from opensearchpy.exceptions import NotFoundError

        index = self._readable(tenant)
        if index is None:
            return None
        with self._calling("get"):
            try:
                doc = self._client.get(index=index, id=f"{tenant}:{record_id}", _source_includes=["record"])
            except NotFoundError:
                return None
        return MemoryRecord.model_validate(doc["_source"]["record"])

    def tenants(self) -> list[str]:
        """Every tenant with a record (`TenantDirectory`: the CleanupFunction's forgetting policies): a
        composite terms aggregation on `tenant` over the shared index or every tenant index, paged."""
        target = self._index if self._tenancy == "shared" else f"{self._index}{TENANT_INFIX}*"
        composite: dict[str, Any] = {"size": 1000, "sources": [{"tenant": {"terms": {"field": "tenant"}}}]}
        found: list[str] = []
        while True:
            body = {"size": 0, "aggs": {"tenants": {"composite": composite}}}
            with self._calling("tenants"):
                response = self._client.search(
                    index=target, body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
                )
            aggregation = response.get("aggregations", {}).get("tenants", {})
            found += [bucket["key"]["tenant"] for bucket in aggregation.get("buckets", [])]
            if not aggregation.get("buckets") or "after_key" not in aggregation:
                return sorted(found)
            composite = {**composite, "after": aggregation["after_key"]}

    def get(self, tenant: str, ids: Sequence[str]) -> list[MemoryRecord]:
        newest = _newest_per_id(self._hits_by_ids(tenant, ids))
        return [MemoryRecord.model_validate(newest[i]["_source"]["record"]) for i in dict.fromkeys(ids) if i in newest]

    def delete(self, tenant: str, ids: Sequence[str]) -> int:
        hits = self._hits_by_ids(tenant, ids)
        owner = {hit["_id"]: hit["_source"]["memory_id"] for hit in hits}
        index = self._index_of(tenant)
        items = self._bulk(index, [{"delete": {"_index": index, "_id": _id}} for _id in owner])
        deleted = {owner[result["_id"]] for _, result in items if result.get("result") == "deleted"}
        if not self._serverless:  # a deleted memory's content may be stored again at once
            hashes = {hit["_source"]["record"].get("memory_hash"): hit["_source"]["memory_id"] for hit in hits}
            self._claims.release_owned(tenant, {h: i for h, i in hashes.items() if h and i in deleted})
        return len(deleted)

    def find_by_hash(self, tenant: str, memory_hash: str) -> list[MemoryRecord]:
        body = {
            "size": MAX_RESULTS,
            "_source": SOURCE_FIELDS,
            "query": {"bool": {"filter": [{"term": {"tenant": tenant}}, {"term": {"memory_hash": memory_hash}}]}},
            "sort": [{"created_at": {"order": "asc"}}, {"memory_id": {"order": "asc"}}],
        }
        newest = _newest_per_id(self._search(tenant, body)["hits"]["hits"])
        return [MemoryRecord.model_validate(hit["_source"]["record"]) for hit in newest.values()]

    def touch(self, tenant: str, ids: Sequence[str], when: datetime) -> None:
        # AOSS vector collections have no partial update, so the whole document is written again.
        hits = self._hits_by_ids(tenant, ids, with_vector=True)
        docs = []
        for hit in _newest_per_id(hits).values():
            record = MemoryRecord.model_validate(hit["_source"]["record"])
            record = record.model_copy(update={"last_accessed": when, "access_count": record.access_count + 1})
            source = hit["_source"]
            docs.append(self._document(tenant, record, source["vector"], source.get("context")))
        stale = [hit["_id"] for hit in hits] if self._serverless else []
        self._write(tenant, docs, stale)

    def user_records(
        self, tenant: str, user_id: str, *, namespace: str | None = None, after: str | None = None, limit: int = 500
    ) -> list[MemoryRecord]:
        # A keyset page by memory_id (a range, not `from`), so paging stays cheap past max_result_window.
        # On AOSS a not-yet-cleaned duplicate makes a page shorter; callers page until one is empty.
        must: list[dict[str, Any]] = [{"term": {"tenant": tenant}}, {"term": {"user_id": user_id}}]
        if namespace is not None:
            must.append({"term": {"namespace": namespace}})
        if after is not None:
            must.append({"range": {"memory_id": {"gt": after}}})
        body = {"size": min(limit, MAX_RESULTS), "_source": SOURCE_FIELDS, "query": {"bool": {"filter": must}},
                "sort": [{"memory_id": {"order": "asc"}}]}
        newest = _newest_per_id(self._search(tenant, body)["hits"]["hits"])
        return [MemoryRecord.model_validate(newest[i]["_source"]["record"]) for i in sorted(newest)]

    def search(self, query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
        from agent_memory.adapters.opensearch_search import OpenSearchCandidates

        return ranking.search(OpenSearchCandidates(self), query)

    # -- search ------------------------------------------------------------------------------------

    def _check_dims(self, dims: int, what: str) -> None:
        if self._dims is not None and dims != self._dims:
            raise ConfigurationError(
                f"OpenSearch long-term store '{self._index}' holds {self._dims}-dim vectors but the {what} has {dims}",
                "opensearch",
            )
