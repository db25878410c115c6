"""Every Redis key name this package uses, built in one place. Pure functions, no I/O.

Layout (``am`` is the configurable prefix, ``<x>`` a percent-encoded component, ``{...}`` a hash tag)::

    am:wm:{<tenant>}:<ns>:<user>:<session>:meta       HASH  document without messages, ttl, updated_at
    am:wm:{<tenant>}:<ns>:<user>:<session>:msgs       LIST  messages as JSON, oldest first
    am:wm:{<tenant>}:<ns>:<user>:<session>:ops        ZSET  ids of recent appends (retry dedup)
    am:wmidx:{<tenant>}:all                           ZSET  every session of the tenant
    am:wmidx:{<tenant>}:ns:<ns>                       ZSET  sessions in one namespace
    am:wmidx:{<tenant>}:user:<user>                   ZSET  sessions of one user
    am:wmidx:{<tenant>}:nsuser:<ns>:<user>            ZSET  sessions of one user in one namespace
    am:wmidx:{<tenant>}:sid:<session>                 ZSET  sessions with one session id (for `resolve`)
    am:doc:{<tenant>}:<kind>:<id>                     STRING a small JSON document (summary view, result, task)
    am:docidx:{<tenant>}:<kind>                       SET   ids of the documents of one kind
    am:rl:{<tenant>}:<subject>                        HASH  a caller's rate-limit token bucket (t, ts)

Why this shape:
- Every key of a tenant (its sessions and its indexes) shares the tenant's hash tag, so each write
  script — session value, TTL and index entries together — touches one cluster slot and runs on a
  cluster-mode ElastiCache too. The price: one tenant's working memory lives on one shard, which
  holds far more sessions than one team's agents keep alive at once; tenants spread across shards.
- Components are percent-encoded (``quote(safe="")`` leaves only ``A-Za-z0-9_.-~``), so ``:``, ``{``,
  ``}`` and ``%`` never appear raw and ``("a:b", None)`` cannot collide with ``("a", "b")``.
  A missing namespace or user is the empty component; any real value encodes to a non-empty one.
- The session *member* (``tenant:ns:user:session``) is also the index member, so an index entry decodes
  back into its `SessionKey` without another read.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, unquote

from agent_memory.domain.models import SessionKey

DEFAULT_PREFIX = "am"


@lru_cache(maxsize=4096)  # every request builds 5-9 keys from the same few tenants, scopes and ids
def _enc(value: str | None) -> str:
    return quote(value or "", safe="")


def _dec(value: str) -> str | None:
    return unquote(value) or None


def check_prefix(prefix: str) -> str:
    """Reject a prefix that would break hash tags or the layout, e.g. ``check_prefix("am")``."""
    if not prefix or any(ch in prefix for ch in "{}"):
        raise ValueError(f"key prefix must be non-empty and contain no braces: {prefix!r}")
    return prefix


def session_member(key: SessionKey) -> str:
    """The encoded identity of a session: ``tenant:ns:user:session`` with each part percent-encoded."""
    return ":".join((_enc(key.tenant), _enc(key.namespace), _enc(key.user_id), _enc(key.session_id)))


def parse_session_member(member: str) -> SessionKey:
    """Inverse of `session_member`."""
    tenant, namespace, user_id, session_id = member.split(":")
    return SessionKey(
        tenant=unquote(tenant),
        namespace=_dec(namespace),
        user_id=_dec(user_id),
        session_id=unquote(session_id),
    )


def _session_base(prefix: str, key: SessionKey) -> str:
    scope = ":".join((_enc(key.namespace), _enc(key.user_id), _enc(key.session_id)))
    return f"{prefix}:wm:{{{_enc(key.tenant)}}}:{scope}"


def session_meta_key(prefix: str, key: SessionKey) -> str:
    return f"{_session_base(prefix, key)}:meta"


def session_messages_key(prefix: str, key: SessionKey) -> str:
    return f"{_session_base(prefix, key)}:msgs"


def session_operations_key(prefix: str, key: SessionKey) -> str:
    return f"{_session_base(prefix, key)}:ops"


def _index_base(prefix: str, tenant: str) -> str:
    return f"{prefix}:wmidx:{{{_enc(tenant)}}}"


def list_index_key(prefix: str, tenant: str, namespace: str | None = None, user_id: str | None = None) -> str:
    """The index that answers a list query with these filters (None = no filter)."""
    base = _index_base(prefix, tenant)
    if namespace and user_id:
        return f"{base}:nsuser:{_enc(namespace)}:{_enc(user_id)}"
    if namespace:
        return f"{base}:ns:{_enc(namespace)}"
    if user_id:
        return f"{base}:user:{_enc(user_id)}"
    return f"{base}:all"


def session_id_index_key(prefix: str, tenant: str, session_id: str) -> str:
    return f"{_index_base(prefix, tenant)}:sid:{_enc(session_id)}"


def _glob_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


def index_pattern(prefix: str) -> str:
    """A SCAN pattern matching every index key of every tenant."""
    return f"{_glob_escape(prefix)}:wmidx:*"


def tenant_index_pattern(prefix: str, tenant: str) -> str:
    """A SCAN pattern matching every index key of one tenant (encoded components hold no glob characters)."""
    return f"{_glob_escape(prefix)}:wmidx:{{{_enc(tenant)}}}:*"


def index_key_tenant(prefix: str, index_key: str) -> str | None:
    """The tenant of an index key (``am:wmidx:{acme}:all`` → ``acme``), None for a key of another shape."""
    head = f"{prefix}:wmidx:{{"
    if not index_key.startswith(head) or "}" not in index_key[len(head) :]:
        return None
    return unquote(index_key[len(head) :].split("}", 1)[0])


def index_keys(prefix: str, key: SessionKey) -> list[str]:
    """Every index a session belongs to: the list indexes its scope matches, then its session-id index."""
    keys = [list_index_key(prefix, key.tenant)]
    if key.namespace:
        keys.append(list_index_key(prefix, key.tenant, namespace=key.namespace))
    if key.user_id:
        keys.append(list_index_key(prefix, key.tenant, user_id=key.user_id))
    if key.namespace and key.user_id:
        keys.append(list_index_key(prefix, key.tenant, key.namespace, key.user_id))
    keys.append(session_id_index_key(prefix, key.tenant, key.session_id))
    return keys


def document_key(prefix: str, tenant: str, kind: str, doc_id: str) -> str:
    return f"{prefix}:doc:{{{_enc(tenant)}}}:{_enc(kind)}:{_enc(doc_id)}"


def document_index_key(prefix: str, tenant: str, kind: str) -> str:
    return f"{prefix}:docidx:{{{_enc(tenant)}}}:{_enc(kind)}"


def rate_limit_key(prefix: str, tenant: str, subject: str) -> str:
    """The token bucket of one principal (`Principal.subject` within its tenant)."""
    return f"{prefix}:rl:{{{_enc(tenant)}}}:{_enc(subject)}"
