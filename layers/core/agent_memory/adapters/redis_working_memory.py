"""Working memory in plain Redis 7 / ElastiCache / Valkey: no modules, only core commands and Lua.

Storage (key names in `agent_memory.domain.keys`): per session a HASH (`meta`: the document without
its messages, plus `ttl` and `updated_at` as their own fields so a script can read and set them without
parsing JSON), a LIST of messages and a ZSET of recent append ids, all under the tenant's hash tag. Every write
is one Lua script, so the value, its TTL and the index entries change together or not at all: Redis
runs a script atomically, but it does not roll back a script that fails half-way, so every script
follows one ordering rule: everything it can fail on (key types, the TTL and the expiry it gives) is
checked before its first write, and nothing after the first write can fail. The adapter checks the
arguments too (`check_ttl`), so a bad one never reaches the server. The `#!lua` shebang (Redis >= 7)
makes Redis refuse a script under OOM before it starts instead of at its first write.

Index: per tenant, sorted sets of session members (all / namespace / user / namespace+user / session
id) scored by expiry in epoch ms (`+inf` when persistent), taken from the server clock (TIME) and
applied to the keys with PEXPIREAT, so an index entry and its session expire at the same millisecond.
Reads first drop entries scored in the past, which keeps `total` true without a sweeper. Lists are
ordered by expiry (soonest first, persistent last), ties by member; offsets shift when a listed
session is written, as with any offset paging.

Cluster mode: a session's keys and its tenant's indexes share the tenant's hash tag (one slot), so
every script stays within one slot and the index is exact in cluster mode too. The client is a
standalone one or a `redis.cluster.RedisCluster` (`_redis.redis_client`, REDIS_CLUSTER); `tenants`,
the one read that is not within a tenant, SCANs every primary.

Retries: `from_url` allows one retry after a connection error or timeout. A timed-out append may have
run on the server, so each append carries an operation id that the script records for a few minutes;
a repeated id returns the document without appending twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError, ResponseError

from agent_memory.adapters._redis import RedisClient, is_cluster_client, redis_client
from agent_memory.domain import keys
from agent_memory.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    InvalidInputError,
    MessageLimitError,
)
from agent_memory.domain.models import (
    MemoryMessage,
    MemoryRecord,
    SessionJson,
    SessionKey,
    SessionPage,
    WorkingMemory,
    check_ttl,
    format_datetime,
    utcnow,
)

# How long an append's operation id is remembered; longer than any client retry can take.
_APPEND_OPERATION_MS = 300_000
# Written beside a document that `model_dump_json` wrote (a PUT, a new session's first append), so that a GET
# showing the session unchanged may answer the stored JSON as it is (`RedisSessionReader`); a prime, which
# rewrites the document with the json module, removes it. Bump it whenever WorkingMemory or a model inside it
# changes what its JSON holds: documents written before then are decoded (tests/unit/test_session_json.py).
WIRE_VERSION = "1"
# Fields kept outside the JSON document because scripts read or set them.
_META_FIELDS = {"messages", "ttl_seconds", "updated_at", "message_limit", "primed_memory_ids"}
# How often a prime retries when a write to the session lands between its read and its write.
_PRIME_ATTEMPTS = 20

# Every session script gets KEYS = meta (hash), msgs (list), ops (zset), index (zset)...
_LUA_SESSION = """#!lua
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Fail before the first write: Redis keeps the writes a script made before an error.
local function check_types()
  local want = {'hash', 'list'}
  for i = 1, #KEYS do
    local t = redis.call('TYPE', KEYS[i])['ok']
    if t ~= 'none' and t ~= (want[i] or 'zset') then
      return error('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t .. ', expected ' .. (want[i] or 'zset'))
    end
  end
end
local function rpush_from(first)
  for i = first, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
-- The expiry (epoch ms, as an integer string; '' = persistent) for a TTL argument, or an error. Called
-- before the first write: a TTL the server cannot apply must fail the script while nothing changed.
local function expiry_of(now, ttl)
  if ttl == '' then return '' end
  local seconds = tonumber(ttl)
  if not seconds or seconds < 1 or seconds > 2147483647 or seconds ~= math.floor(seconds) then
    return error('ERR invalid ttl ' .. ttl)
  end
  return string.format('%d', now + seconds * 1000)
end
-- Restart the TTL of the session keys and move the session to its new expiry in every index.
local function expire_and_index(now, expiry, member)
  for i = 1, 3 do
    if expiry == '' then
      redis.call('PERSIST', KEYS[i])
    else
      redis.call('PEXPIREAT', KEYS[i], expiry)
    end
  end
  local score = expiry
  if expiry == '' then score = '+inf' end
  for i = 4, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. now)
    redis.call('ZADD', KEYS[i], score, member)
  end
end
"""

# ARGV: member, doc, ttl ('' = persistent), updated_at, limit and primed ('' = keep the stored ones),
# message...
_PUT = (
    _LUA_SESSION
    + """
check_types()
local now = now_ms()
local expiry = expiry_of(now, ARGV[3])
-- The session API's settings survive a write that does not carry them (an AMS PUT).
local limit, primed = ARGV[5], ARGV[6]
if limit == '' then limit = redis.call('HGET', KEYS[1], 'limit') or '' end
if primed == '' then primed = redis.call('HGET', KEYS[1], 'primed') or '' end
-- Nothing below can fail: every key has the right type and the expiry is a valid integer.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'ttl', ARGV[3], 'updated_at', ARGV[4], 'wire', '@WIRE@')
if limit ~= '' then redis.call('HSET', KEYS[1], 'limit', limit) end
if primed ~= '' then redis.call('HSET', KEYS[1], 'primed', primed) end
rpush_from(7)
expire_and_index(now, expiry, ARGV[1])
return 1
"""
)

# ARGV: member, doc and ttl for a new session, updated_at, max_messages ('' = no limit), operation id,
# operation memory in ms, message limit for a new session ('' = none), max_total ('' = none), message...
# Returns {HGETALL meta, LRANGE msgs}; an `OVERLIMIT <count>` error, with nothing written, when the session
# would then hold more than max_total messages (a repeated operation id is never refused: it is the same append).
# A session with a message limit drops its oldest messages beyond it, but only those already extracted: the
# first message that is not stops the trim (see `WorkingMemoryStore.append_messages`). Inside the JSON of a
# string value every quote is escaped, so the plain find can only match the message's own flag.
_APPEND = (
    _LUA_SESSION
    + """
check_types()
local now = now_ms()
local exists = redis.call('EXISTS', KEYS[1]) == 1
local ttl = ARGV[3]
if exists then ttl = redis.call('HGET', KEYS[1], 'ttl') or '' end
local expiry = expiry_of(now, ttl)
-- An operation id stays remembered for ARGV[7] ms (older ones are dropped below).
local seen = redis.call('ZSCORE', KEYS[3], ARGV[6])
local repeated = seen and tonumber(seen) > now - tonumber(ARGV[7])
if not repeated and ARGV[9] ~= '' then
  local total = redis.call('LLEN', KEYS[2]) + #ARGV - 9
  if total > tonumber(ARGV[9]) then return redis.error_reply('OVERLIMIT ' .. total) end
end
-- Nothing below can fail (see PUT).
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[7]))
if not repeated then
  if not exists then
    redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'ttl', ttl, 'wire', '@WIRE@')
    if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'limit', ARGV[8]) end
  end
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
  rpush_from(10)
  if ARGV[5] ~= '' then
    local keep = tonumber(ARGV[5])
    if keep == 0 then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], -keep, -1) end
  end
  local limit = redis.call('HGET', KEYS[1], 'limit')
  if limit then
    local excess = redis.call('LLEN', KEYS[2]) - tonumber(limit)
    while excess > 0 do
      local oldest = redis.call('LINDEX', KEYS[2], 0)
      if not string.find(oldest, '"discrete_memory_extracted":"t"', 1, true) then break end
      redis.call('LPOP', KEYS[2])
      excess = excess - 1
    end
  end
  redis.call('ZADD', KEYS[3], now, ARGV[6])
  expire_and_index(now, expiry, ARGV[1])
end
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""
)

# ARGV: member. Returns how many of meta/msgs existed.
_DELETE = (
    _LUA_SESSION
    + """
check_types()
local removed = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[3])
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return removed
"""
)

# KEYS: msgs. ARGV: id, role, content of each extracted message. Sets the flag of each stored message
# that still has that id, role and content and is unextracted, with LSET (which keeps the key's TTL).
# The flag is replaced in the stored JSON text rather than re-encoded by cjson, which would change it;
# inside the JSON of a string value every quote is escaped, so the pattern can only match the field.
_MARK = """#!lua
if redis.call('TYPE', KEYS[1])['ok'] ~= 'list' then return 0 end
local wanted = {}
for i = 1, #ARGV, 3 do wanted[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]} end
local marked = 0
for i, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, m = pcall(cjson.decode, item)
  if ok and type(m) == 'table' and m.discrete_memory_extracted == 'f' then
    local want = wanted[m.id]
    if want and want[1] == m.role and want[2] == m.content then
      local flagged = string.gsub(item, '"discrete_memory_extracted":"f"', '"discrete_memory_extracted":"t"', 1)
      redis.call('LSET', KEYS[1], i - 1, flagged)
      marked = marked + 1
    end
  end
end
return marked
"""

# KEYS: meta. ARGV: sha1 of the document and primed ids read, the new document, the new primed ids. Writes
# only when the stored ones are still those read (0 when the session is gone or changed). HSET keeps the TTL.
_PRIME = """#!lua
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local doc = redis.call('HGET', KEYS[1], 'doc')
if not doc then return 0 end
local primed = redis.call('HGET', KEYS[1], 'primed') or ''
if redis.sha1hex(doc .. '\\0' .. primed) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'primed', ARGV[3])
redis.call('HDEL', KEYS[1], 'wire')
return 1
"""

# KEYS: meta, msgs. Returns {HGETALL meta, LRANGE msgs}: one consistent read in one round trip (a
# MULTI/EXEC pipeline needs four replies for the same). `no-writes` lets it run under OOM and on replicas.
_GET = """#!lua flags=no-writes
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# KEYS: one index. ARGV: offset, limit ('' = all). Returns {live total, members of the page}.
_PAGE = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local total = redis.call('ZCARD', KEYS[1])
local stop = -1
if ARGV[2] ~= '' then
  if tonumber(ARGV[2]) == 0 then return {total, {}} end
  stop = tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1
end
return {total, redis.call('ZRANGE', KEYS[1], ARGV[1], stop)}
"""


# KEYS: the tenant's `all` index, then its other indexes. Drops the entries of expired sessions (scored
# before the server's now) from each; returns {sessions swept (from `all`), entries removed in all}.
_SWEEP = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local swept = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local entries = swept
for i = 2, #KEYS do entries = entries + redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. now) end
return {swept, entries}
"""

# KEYS: the tenant's `all` index. ARGV: window (ms), limit. Members expiring from now to now + window,
# soonest first, with their expiry (WITHSCORES: member, score, ...).
_EXPIRING = """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, now + tonumber(ARGV[1]), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
"""

# Index keys handed to one sweep script (all in the tenant's slot).
_SWEEP_BATCH = 500


@contextmanager
def _redis_errors(operation: str) -> Iterator[None]:
    """A Redis or socket error as DependencyUnavailableError (a 503 naming Redis and the operation)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        detail = f"{operation} failed: {type(exc).__name__}: {exc}"
        raise DependencyUnavailableError("redis", detail[:300]) from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisWorkingMemoryStore:
    """`WorkingMemoryStore` on Redis 7 / ElastiCache / Valkey, standalone or a cluster.

    Example::

        store = RedisWorkingMemoryStore.from_url("rediss://user:pass@host:6379/0", timeout_seconds=0.5)
        store.put(SessionKey(tenant="t1", session_id="s1"), WorkingMemory(session_id="s1"))
    """

    def __init__(self, client: RedisClient, *, key_prefix: str = keys.DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = keys.check_prefix(key_prefix)
        self._put = client.register_script(_PUT.replace("@WIRE@", WIRE_VERSION))
        self._append = client.register_script(_APPEND.replace("@WIRE@", WIRE_VERSION))
        self._delete = client.register_script(_DELETE)
        self._page = client.register_script(_PAGE)
        self._get = client.register_script(_GET)
        self._mark = client.register_script(_MARK)
        self._sweep = client.register_script(_SWEEP)
        self._expiring = client.register_script(_EXPIRING)
        self._prime = client.register_script(_PRIME)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout_seconds: float = 1.0,
        key_prefix: str = keys.DEFAULT_PREFIX,
        cluster: bool | None = False,
    ) -> RedisWorkingMemoryStore:
        """A store on its own client (`_redis.redis_client`: timeouts, one retry, health checks); `cluster`
        True for a Redis Cluster, None to ask the server now (a connection at construction)."""
        client = redis_client(url, timeout_seconds=timeout_seconds, cluster=cluster)
        return cls(client, key_prefix=key_prefix)

    # -- port -------------------------------------------------------------------------------------

    def get(self, key: SessionKey) -> WorkingMemory | None:
        session_keys = [keys.session_meta_key(self._prefix, key), keys.session_messages_key(self._prefix, key)]
        with self._errors("get"):
            meta, messages = self._get(keys=session_keys)
        return self._decode(dict(zip(meta[::2], meta[1::2], strict=True)), messages)

    def put(self, key: SessionKey, memory: WorkingMemory) -> None:
        """Replace the document and its TTL. The key decides session_id, namespace and user_id."""
        memory = memory.model_copy(
            update={"session_id": key.session_id, "namespace": key.namespace, "user_id": key.user_id}
        )
        args = [
            keys.session_member(key),
            memory.model_dump_json(exclude=_META_FIELDS),
            _ttl_arg(memory.ttl_seconds),
            format_datetime(memory.updated_at),
            "" if memory.message_limit is None else str(memory.message_limit),
            "" if memory.primed_memory_ids is None else json.dumps(memory.primed_memory_ids),
            *(message.model_dump_json() for message in memory.messages),
        ]
        with self._errors("put"):
            self._put(keys=self._session_keys(key), args=args)

    def append_messages(
        self,
        key: SessionKey,
        messages: Sequence[MemoryMessage],
        *,
        max_messages: int | None = None,
        ttl_seconds: int | None = None,
        message_limit: int | None = None,
        max_total: int | None = None,
    ) -> WorkingMemory:
        if max_messages is not None and max_messages < 0:
            raise InvalidInputError(f"max_messages must be >= 0, got {max_messages}")
        if message_limit is not None and message_limit < 1:
            raise InvalidInputError(f"message_limit must be >= 1, got {message_limit}")
        ttl = _ttl_arg(ttl_seconds)
        new = WorkingMemory(
            session_id=key.session_id, namespace=key.namespace, user_id=key.user_id, ttl_seconds=ttl_seconds
        )
        args = [
            keys.session_member(key),
            new.model_dump_json(exclude=_META_FIELDS),
            ttl,
            format_datetime(utcnow()),
            "" if max_messages is None else str(max_messages),
            uuid.uuid4().hex,
            str(_APPEND_OPERATION_MS),
            "" if message_limit is None else str(message_limit),
            "" if max_total is None else str(max_total),
            *(message.model_dump_json() for message in messages),
        ]
        with self._errors("append_messages"):
            try:
                meta, stored = self._append(keys=self._session_keys(key), args=args)
            except ResponseError as exc:  # the script's refusal is the caller's 413, not a Redis outage
                if str(exc).startswith("OVERLIMIT ") and max_total is not None:
                    raise MessageLimitError(int(str(exc).split()[1]), max_total) from None
                raise
        # HGETALL inside a script comes back as a flat [field, value, ...] list.
        memory = self._decode(dict(zip(meta[::2], meta[1::2], strict=True)), stored)
        if memory is None:
            raise ConflictError(f"session {key.session_id} was deleted while appending")
        return memory

    def prime(self, key: SessionKey, records: Sequence[MemoryRecord]) -> WorkingMemory | None:
        """Add `records` to the session's memories (replacing by id) and their ids to its primed ids.

        Compare-and-set: read the document, build the new one here (cjson would re-encode the stored JSON
        differently), and let one script write it only if the document and the primed ids are still the ones
        read; a PUT in between makes the prime read again. One key, so cluster mode is fine. Messages, TTL and
        `updated_at` are untouched, so a pending extraction is not superseded."""
        meta_key = keys.session_meta_key(self._prefix, key)
        added = {r.id: r.model_dump(mode="json") for r in records}
        for _ in range(_PRIME_ATTEMPTS):
            with self._errors("prime"):
                fields = {_text(k): _text(v) for k, v in self._client.hgetall(meta_key).items()}
            if not fields:
                return None
            document = json.loads(fields["doc"])
            kept = [m for m in document.get("memories", []) if m.get("id") not in added]
            document["memories"] = [*kept, *added.values()]
            old_primed = fields.get("primed", "")
            primed = json.loads(old_primed or "[]")
            primed += [i for i in added if i not in primed]
            seen = hashlib.sha1(f"{fields['doc']}\0{old_primed}".encode()).hexdigest()
            with self._errors("prime"):
                written = self._prime(keys=[meta_key], args=[seen, json.dumps(document), json.dumps(primed)])
            if written:
                return self.get(key)
        raise ConflictError(f"session {key.session_id} kept changing while it was primed; prime it again")

    def delete(self, key: SessionKey) -> bool:
        with self._errors("delete"):
            removed = self._delete(keys=self._session_keys(key), args=[keys.session_member(key)])
        return int(removed) > 0

    def mark_extracted(self, key: SessionKey, messages: Sequence[MemoryMessage]) -> int:
        """Mark, in one script, the stored messages with the id, role and content of one of `messages`."""
        args = [value for m in messages for value in (m.id, m.role, m.content)]
        if not args:
            return 0
        with self._errors("mark_extracted"):
            return int(self._mark(keys=[keys.session_messages_key(self._prefix, key)], args=args))

    def list_sessions(
        self,
        tenant: str,
        *,
        namespace: str | None = None,
        user_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SessionPage:
        index = keys.list_index_key(self._prefix, tenant, namespace, user_id)
        with self._errors("list_sessions"):
            total, members = self._page(keys=[index], args=[offset, limit])
        sessions = [keys.parse_session_member(_text(m)).session_id for m in members]
        return SessionPage(sessions=sessions, total=int(total))

    def resolve(
        self, tenant: str, session_id: str, *, namespace: str | None = None, user_id: str | None = None
    ) -> SessionKey | None:
        index = keys.session_id_index_key(self._prefix, tenant, session_id)
        with self._errors("resolve"):
            _, members = self._page(keys=[index], args=[0, ""])
        matches = [keys.parse_session_member(_text(m)) for m in members]
        if namespace:
            matches = [m for m in matches if m.namespace == namespace]
        if user_id:
            matches = [m for m in matches if m.user_id == user_id]
        return matches[0] if len(matches) == 1 else None

    def user_sessions(
        self, tenant: str, user_id: str, *, namespace: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionKey]:
        # The user's own index (or the namespace-and-user one): its members decode into keys, no other read.
        index = keys.list_index_key(self._prefix, tenant, namespace, user_id)
        with self._errors("user_sessions"):
            _, members = self._page(keys=[index], args=[offset, limit])
        return [keys.parse_session_member(_text(m)) for m in members]

    # -- SessionSweeper (the CleanupFunction) -----------------------------------------------------

    def tenants(self) -> list[str]:
        """Tenants with an index key: one SCAN of the index keys (on a cluster, of every primary)."""
        pattern = keys.index_pattern(self._prefix)
        with self._errors("tenants"):
            found = {keys.index_key_tenant(self._prefix, _text(k)) for k in self._client.scan_iter(pattern, count=1000)}
        return sorted(t for t in found if t is not None)

    def sweep_expired(self, tenant: str) -> int:
        """Drop expired sessions from every index of the tenant without a read. Their keys are already
        gone (they expire at the same millisecond as their index entries, by the same server clock)."""
        everything = keys.list_index_key(self._prefix, tenant)
        pattern = keys.tenant_index_pattern(self._prefix, tenant)
        # On a cluster only the node that owns the tenant's slot holds its indexes: scan that one.
        node = {"target_nodes": self._client.get_node_from_key(everything)} if self._is_cluster else {}
        swept = 0
        with self._errors("sweep_expired"):
            others = sorted({_text(k) for k in self._client.scan_iter(pattern, count=1000, **node)} - {everything})
            for start in range(0, max(len(others), 1), _SWEEP_BATCH):
                done, _ = self._sweep(keys=[everything, *others[start : start + _SWEEP_BATCH]])
                swept += int(done)
        return swept

    def expiring_sessions(
        self, tenant: str, within_seconds: float, *, limit: int = 1000
    ) -> list[tuple[SessionKey, int]]:
        index = keys.list_index_key(self._prefix, tenant)
        with self._errors("expiring_sessions"):
            found = self._expiring(keys=[index], args=[int(within_seconds * 1000), limit])
        pairs = zip(found[::2], found[1::2], strict=True)
        return [(keys.parse_session_member(_text(m)), int(float(score))) for m, score in pairs]

    @property
    def _is_cluster(self) -> bool:
        return is_cluster_client(self._client)

    def ping(self) -> None:
        with self._errors("ping"):
            self._client.ping()

    def close(self) -> None:
        """Release the client's connections."""
        self._client.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _session_keys(self, key: SessionKey) -> list[str]:
        return [
            keys.session_meta_key(self._prefix, key),
            keys.session_messages_key(self._prefix, key),
            keys.session_operations_key(self._prefix, key),
            *keys.index_keys(self._prefix, key),
        ]

    @staticmethod
    def _decode(meta: Mapping[Any, Any], messages: Sequence[Any]) -> WorkingMemory | None:
        """The stored pieces as one JSON document, validated once by pydantic-core (the read hot path:
        no Python-level JSON parsing). Every piece was written by `put`/`append_messages` as JSON."""
        if not meta:
            return None
        fields = {_text(k): _text(v) for k, v in meta.items()}
        return WorkingMemory.model_validate_json(_joined(fields, [_text(m) for m in messages], settings=True))

    _errors = staticmethod(_redis_errors)


class RedisSessionReader:
    """`SessionReader` on Redis: the working-memory GET's read on the event loop, with no worker thread.

    The same script and decoding as `RedisWorkingMemoryStore.get` (one round trip, one pydantic-core
    validation), on a `redis.asyncio` client (`_redis.async_redis_client`: the same timeouts and retry),
    pipelined automatically with the reads of concurrent requests on a standalone server
    (`redis_autopipeline`; a cluster client sends each read by itself). Its connections belong to the
    event loop that opened them, so a server builds one reader per loop (the app's lifespan) and closes
    it there. Writes stay on the store: they are rarer and run longer scripts.
    """

    def __init__(self, client: Any, *, key_prefix: str = keys.DEFAULT_PREFIX) -> None:
        from agent_memory.adapters.redis_autopipeline import ScriptPipeline

        self._client = client
        self._prefix = keys.check_prefix(key_prefix)
        if is_cluster_client(client):  # a cluster: reads of different slots go to different nodes
            script = client.register_script(_GET)
            self._read = lambda session_keys: script(keys=session_keys)
        else:
            self._read = ScriptPipeline(client, _GET).call

    async def get(self, key: SessionKey, *, as_json: bool = False) -> WorkingMemory | SessionJson | None:
        """The session at exactly `key`, or None. `as_json`: as its stored JSON when a PUT or an append wrote
        it in this version's format (`WIRE_VERSION`), else decoded."""
        session_keys = [keys.session_meta_key(self._prefix, key), keys.session_messages_key(self._prefix, key)]
        with _redis_errors("get"):
            meta, messages = await self._read(session_keys)
        fields = dict(zip(meta[::2], meta[1::2], strict=True))
        if as_json and fields.get("wire") == WIRE_VERSION:
            return _session_json(fields, messages)
        return RedisWorkingMemoryStore._decode(fields, messages)

    async def aclose(self) -> None:
        await self._client.aclose()


def _joined(fields: Mapping[str, str], messages: Sequence[str], *, settings: bool) -> str:
    """The stored pieces as WorkingMemory's JSON object: the document (every field but those kept beside it),
    the messages, the TTL, `updated_at` (written by `format_datetime`) and, with `settings`, the session
    API's two settings."""
    document = fields["doc"]
    parts = [document[:-1], "," if document.strip() != "{}" else ""]
    parts += ['"messages":[', ",".join(messages), "]"]
    parts += [',"ttl_seconds":', fields.get("ttl") or "null"]
    if settings:
        parts += [',"message_limit":', fields.get("limit") or "null"]
        parts += [',"primed_memory_ids":', fields.get("primed") or "null"]
    if fields.get("updated_at"):
        parts += [',"updated_at":', json.dumps(fields["updated_at"])]
    parts.append("}")
    return "".join(parts)


def _session_json(fields: Mapping[str, str], messages: Sequence[str]) -> SessionJson:
    """The stored session as `model_dump_json` writes it less SESSION_SETTINGS (keys in another order)."""
    return SessionJson(_joined(fields, messages, settings=False))


def _ttl_arg(ttl_seconds: int | None) -> str:
    """The script's TTL argument; bounded so that the expiry it computes is an exact integer."""
    try:
        check_ttl(ttl_seconds)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    return "" if ttl_seconds is None else str(ttl_seconds)


__all__ = ["RedisSessionReader", "RedisWorkingMemoryStore"]
