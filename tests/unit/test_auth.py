"""API key format, hashing, verification and expiry; the Authenticator's header rules (in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent_memory.domain.api_keys import ApiKey, format_key, hash_secret, new_key, parse_key, secret_matches
from agent_memory.domain.auth import ALL_SCOPES, DEFAULT_KEY_SCOPES, SCOPE_READ, Principal
from agent_memory.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from agent_memory.services.auth import TOUCH_INTERVAL, ApiKeyService, Authenticator, Credential, require

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class MemoryKeyStore:
    """An in-memory ApiKeyStore (unit tests only; the real stores run the same contract in integration)."""

    blocking = False

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.touches: list[str] = []
        self.fail_touch = False

    def create(self, key: ApiKey) -> None:
        if key.key_id in self.keys:
            raise ConflictError("exists")
        self.keys[key.key_id] = key

    def get(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        return [k for k in self.keys.values() if tenant is None or k.tenant == tenant]

    def revoke(self, key_id: str, when: datetime) -> ApiKey:
        if key_id not in self.keys:
            raise NotFoundError(key_id)
        from dataclasses import replace

        self.keys[key_id] = replace(self.keys[key_id], revoked_at=when)
        return self.keys[key_id]

    def touch(self, key_id: str, when: datetime) -> None:
        if self.fail_touch:
            raise DependencyUnavailableError("api_keys", "down")
        self.touches.append(key_id)
        self.keys[key_id] = self.keys[key_id].with_last_used(when)


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def keys(store: MemoryKeyStore) -> ApiKeyService:
    return ApiKeyService(store)


def test_a_key_has_a_recognisable_prefix_its_id_and_a_256_bit_secret() -> None:
    key_id, secret = new_key()
    key = format_key(key_id, secret)
    assert key.startswith(f"am_{key_id}_")
    assert len(key_id) == 16 and len(secret) == 43  # 64-bit id, 32 random bytes
    assert parse_key(key) == (key_id, secret)
    assert new_key() != new_key()


ID, SECRET = "0123456789abcdef", "a" * 43


@pytest.mark.parametrize(
    "bad", ["", "am_", "am_xyz_abc", f"sk_{ID}_{SECRET}", f"am_{ID.upper()}_{SECRET}", f"am_{ID}_{SECRET[1:]}",
            f"am_{ID}_{SECRET} ", f"am_{ID}_{SECRET}!"],
)  # fmt: skip
def test_anything_but_the_exact_format_does_not_parse(bad: str) -> None:
    assert parse_key(bad) is None


def test_only_the_sha256_of_the_secret_is_stored_and_compared(keys: ApiKeyService, store: MemoryKeyStore) -> None:
    record, key = keys.create("acme", now=NOW)
    _, secret = parse_key(key)  # type: ignore[misc]
    assert record.secret_hash == hash_secret(secret) and len(record.secret_hash) == 64
    assert secret not in repr(store.keys[record.key_id])
    assert secret_matches(secret, record.secret_hash)
    assert not secret_matches(secret[:-1] + "x", record.secret_hash)


def test_a_key_verifies_to_its_tenant_scopes_and_subject(keys: ApiKeyService) -> None:
    record, key = keys.create("acme", name="ci", now=NOW)
    principal = keys.verify(key, now=NOW)
    assert principal == Principal(tenant="acme", subject=f"key:{record.key_id}", scopes=DEFAULT_KEY_SCOPES,
                                  key_id=record.key_id)  # fmt: skip


def test_wrong_secret_unknown_id_and_garbage_are_all_invalid_token(keys: ApiKeyService) -> None:
    _, key = keys.create("acme", now=NOW)
    key_id, secret = parse_key(key)  # type: ignore[misc]
    for bad in (format_key(key_id, secret[::-1]), format_key("f" * 16, secret), "garbage"):
        with pytest.raises(AuthenticationError, match=r"^Invalid token$"):
            keys.verify(bad, now=NOW)


def test_a_key_expires_at_its_expiry_not_a_moment_later(keys: ApiKeyService) -> None:
    record, key = keys.create("acme", expires_in_days=2, now=NOW)
    assert record.expires_at == NOW + timedelta(days=2)
    assert keys.verify(key, now=NOW + timedelta(days=2) - timedelta(microseconds=1)).tenant == "acme"
    with pytest.raises(AuthenticationError, match=r"^Token has expired$"):
        keys.verify(key, now=NOW + timedelta(days=2))


def test_a_revoked_key_fails_at_once(keys: ApiKeyService) -> None:
    record, key = keys.create("acme", now=NOW)
    keys.verify(key, now=NOW)
    keys.revoke(record.key_id)
    with pytest.raises(AuthenticationError, match=r"^Token has been revoked$"):
        keys.verify(key, now=NOW)


def test_revoking_an_unknown_key_is_not_found(keys: ApiKeyService) -> None:
    with pytest.raises(NotFoundError):
        keys.revoke("0" * 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": ["memory:everything"]}, "unknown scope memory:everything"),
        ({"scopes": []}, "at least one scope"),
        ({"expires_in_days": 0}, "expires_in_days must be positive"),
    ],
)
def test_bad_key_settings_are_refused(keys: ApiKeyService, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        keys.create("acme", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("tenant", ["", " acme", "a/b", "a?b", "x" * 300])
def test_a_key_needs_a_valid_tenant_id(keys: ApiKeyService, tenant: str) -> None:
    with pytest.raises(InvalidInputError, match="not a valid tenant id"):
        keys.create(tenant)


def test_last_used_is_written_at_most_once_per_interval(keys: ApiKeyService, store: MemoryKeyStore) -> None:
    record, key = keys.create("acme", now=NOW)
    for seconds in (0, 1, 60):
        keys.verify(key, now=NOW + timedelta(seconds=seconds))
    assert store.touches == [record.key_id]
    keys.verify(key, now=NOW + TOUCH_INTERVAL)
    assert store.touches == [record.key_id] * 2


def test_a_failed_last_used_write_does_not_fail_the_request(keys: ApiKeyService, store: MemoryKeyStore) -> None:
    _, key = keys.create("acme", now=NOW)
    store.fail_touch = True
    assert keys.verify(key, now=NOW).tenant == "acme"


def test_disabled_auth_is_every_scope_in_the_default_or_named_tenant() -> None:
    auth = Authenticator("disabled", default_tenant="default")
    assert auth.local_principal(None) == Principal(tenant="default", subject="local", scopes=ALL_SCOPES)
    assert auth.local_principal("acme").tenant == "acme"
    with pytest.raises(InvalidInputError, match="x-tenant-id header"):
        auth.local_principal("a/b")


def test_authorization_wins_over_x_api_key_and_x_api_key_counts_only_for_api_keys(keys: ApiKeyService) -> None:
    auth = Authenticator("api_key", default_tenant="default", api_keys=keys)
    assert auth.credential({"authorization": "Bearer a", "x-api-key": "b"}) == Credential("a", "authorization")
    assert auth.credential({"x-api-key": "b"}) == Credential("b", "x-api-key")
    with pytest.raises(AuthenticationError, match=r"^Missing authorization header$"):
        auth.credential({})
    with pytest.raises(AuthenticationError, match=r"^Missing bearer token$"):
        auth.credential({"authorization": "Token abc"})


def test_x_tenant_id_of_another_tenant_is_403(keys: ApiKeyService) -> None:
    auth = Authenticator("api_key", default_tenant="default", api_keys=keys)
    _, key = keys.create("acme")
    assert auth.verify(Credential(key, "x-api-key"), "acme").tenant == "acme"
    with pytest.raises(PermissionDeniedError):
        auth.verify(Credential(key, "x-api-key"), "other")
    with pytest.raises(InvalidInputError):
        auth.verify(Credential(key, "x-api-key"), "a/b")


def test_require_names_the_missing_scope() -> None:
    principal = Principal(tenant="t", subject="s", scopes=frozenset({SCOPE_READ}))
    assert require(principal, SCOPE_READ) is principal
    with pytest.raises(PermissionDeniedError, match="lacks the memory:write scope"):
        require(principal, "memory:write")


@pytest.mark.parametrize("module", ["agent_memory.domain.api_keys", "agent_memory.domain.auth", "agent_memory.services.auth"])  # noqa: E501
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False)],
)  # fmt: skip
def test_serve_allows_auth_disabled_only_on_loopback(host: str, allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_memory import cli
    from agent_memory.config import Settings

    monkeypatch.setattr("agent_memory.config.get_settings", lambda: Settings(_env_file=None, auth_mode="disabled"))
    problem = cli._check_auth_binding(host)
    assert (problem is None) is allowed, problem
    if not allowed:
        assert "AUTH_MODE=disabled" in problem and "AUTH_MODE=api_key" in problem  # type: ignore[operator]
    monkeypatch.setattr("agent_memory.config.get_settings", lambda: Settings(_env_file=None, auth_mode="api_key"))
    assert cli._check_auth_binding(host) is None
