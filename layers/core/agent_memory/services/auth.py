"""Who is calling: API keys (create, list, revoke, verify) and the `Authenticator` every request goes through.

The HTTP layer hands the `Authenticator` the request's credential headers and gets a `Principal` or a
401/403; it never looks into keys or tokens itself. Nothing here caches a positive answer: a revoked or
expired key fails on the very next request (one primary-key read per request; see docs/architecture.md).

    >>> from agent_memory.adapters.sqlite_api_keys import SqliteApiKeyStore
    >>> import tempfile, pathlib
    >>> keys = ApiKeyService(SqliteApiKeyStore(pathlib.Path(tempfile.mkdtemp()) / "k.sqlite3"))
    >>> record, secret = keys.create("acme", name="ci")
    >>> keys.verify(secret).tenant
    'acme'
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from agent_memory.domain.api_keys import ApiKey, format_key, hash_secret, new_key, parse_key, secret_matches
from agent_memory.domain.auth import ALL_SCOPES, DEFAULT_KEY_SCOPES, Principal
from agent_memory.domain.errors import AgentMemoryError, AuthenticationError, InvalidInputError, PermissionDeniedError
from agent_memory.domain.validation import check_identifier

if TYPE_CHECKING:
    from agent_memory.ports import ApiKeyStore

logger = logging.getLogger("agent_memory.auth")

AuthMode = Literal["disabled", "api_key", "jwt"]
TENANT_HEADER = "x-tenant-id"
# last_used_at is written at most this often per key: a write per request would double the store's load.
TOUCH_INTERVAL = timedelta(hours=1)

MISSING = "Missing authorization header"
MISSING_BEARER = "Missing bearer token"
INVALID = "Invalid token"
EXPIRED = "Token has expired"
REVOKED = "Token has been revoked"


def check_tenant(value: str, *, source: str = "tenant") -> str:
    """A tenant name: an Identifier. InvalidInputError naming `source` otherwise."""
    try:
        return check_identifier(value)
    except ValueError as exc:
        raise InvalidInputError(f"{source} {value[:80]!r} is not a valid tenant id: {exc}") from None


def check_scopes(scopes: Collection[str]) -> frozenset[str]:
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise InvalidInputError(f"unknown scope {', '.join(unknown)}; known: {', '.join(sorted(ALL_SCOPES))}")
    if not scopes:
        raise InvalidInputError("a key needs at least one scope")
    return frozenset(scopes)


class ApiKeyService:
    """Create, list, revoke and verify API keys over one `ApiKeyStore`."""

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store

    @property
    def blocking(self) -> bool:
        return self.store.blocking

    def create(
        self,
        tenant: str,
        *,
        name: str = "",
        scopes: Collection[str] = DEFAULT_KEY_SCOPES,
        expires_in_days: float | None = None,
        now: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for `tenant`: its record and the key itself, which nothing stores (show it once)."""
        now = now or datetime.now(UTC)
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInputError("expires_in_days must be positive")
        key_id, secret = new_key()
        record = ApiKey(
            key_id=key_id,
            tenant=check_tenant(tenant),
            name=name,
            scopes=check_scopes(scopes),
            created_at=now,
            secret_hash=hash_secret(secret),
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days is not None else None,
        )
        self.store.create(record)
        return record, format_key(key_id, secret)

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        return self.store.list_keys(tenant)

    def revoke(self, key_id: str) -> ApiKey:
        return self.store.revoke(key_id, datetime.now(UTC))

    def verify(self, presented: str, *, now: datetime | None = None) -> Principal:
        """The principal of a valid key. AuthenticationError: malformed, unknown, wrong secret, expired, revoked.

        Revoked and expired are told apart only after the secret matched, so the answer says nothing
        about keys the caller does not hold.
        """
        parsed = parse_key(presented)
        if parsed is None:
            raise AuthenticationError(INVALID)
        key_id, secret = parsed
        record = self.store.get(key_id)
        if record is None or not secret_matches(secret, record.secret_hash):
            raise AuthenticationError(INVALID)
        now = now or datetime.now(UTC)
        if record.revoked_at is not None:
            raise AuthenticationError(REVOKED)
        if record.expired(now):
            raise AuthenticationError(EXPIRED)
        if record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL:
            try:
                self.store.touch(key_id, now)
            except AgentMemoryError as exc:  # bookkeeping only: the request goes on
                logger.warning("could not record the use of key %s: %s", key_id, exc.detail)
        return Principal(tenant=record.tenant, subject=f"key:{key_id}", scopes=record.scopes, key_id=key_id)


class TokenVerifier(Protocol):
    """Turns a bearer JWT into a principal (adapters/jwt_verifier.py). `blocking`: may fetch the JWKS."""

    blocking: bool

    def verify(self, token: str) -> Principal: ...


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request presented: the token and which header carried it."""

    token: str
    header: Literal["authorization", "x-api-key"]


class Authenticator:
    """The request's `Principal` from its headers, by AUTH_MODE.

    - disabled: every scope, in `default_tenant`, or the tenant `x-tenant-id` names.
    - api_key: `Authorization: Bearer am_...` or `X-API-Key: am_...`.
    - jwt: `Authorization: Bearer <JWT>`.
    With auth on, `x-tenant-id` may only repeat the credential's tenant (else 403).
    """

    def __init__(
        self,
        mode: AuthMode,
        *,
        default_tenant: str,
        api_keys: ApiKeyService | None = None,
        tokens: TokenVerifier | None = None,
    ) -> None:
        if mode == "api_key" and api_keys is None:
            raise ValueError("AUTH_MODE=api_key needs an ApiKeyService")
        if mode == "jwt" and tokens is None:
            raise ValueError("AUTH_MODE=jwt needs a token verifier")
        self.mode = mode
        self.disabled = mode == "disabled"
        self.local = Principal(tenant=default_tenant, subject="local", scopes=ALL_SCOPES)
        self._api_keys = api_keys
        self._tokens = tokens

    @property
    def verify_blocks(self) -> bool:
        """Whether verifying a credential is network I/O (DynamoDB, a JWKS fetch)."""
        if self.mode == "api_key":
            return bool(self._api_keys and self._api_keys.blocking)
        return self.mode == "jwt"

    def local_principal(self, tenant_header: str | None) -> Principal:
        """Auth disabled: the default tenant, or the one `x-tenant-id` names."""
        if tenant_header is None:
            return self.local
        tenant = check_tenant(tenant_header, source="x-tenant-id header")
        return Principal(tenant=tenant, subject="local", scopes=ALL_SCOPES)

    def credential(self, headers: Mapping[str, str]) -> Credential:
        """The presented credential; AuthenticationError when there is none."""
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer":
                raise AuthenticationError(MISSING_BEARER)
            token = token.strip()
            if not token:
                raise AuthenticationError(MISSING_BEARER)
            return Credential(token, "authorization")
        api_key = headers.get("x-api-key")
        if api_key is not None and self.mode == "api_key":
            if not api_key.strip():
                raise AuthenticationError(INVALID)
            return Credential(api_key.strip(), "x-api-key")
        raise AuthenticationError(MISSING)

    def verify(self, credential: Credential, tenant_header: str | None) -> Principal:
        """The principal of a credential (blocking when `verify_blocks`), checked against `x-tenant-id`."""
        if self.mode == "api_key":
            assert self._api_keys is not None
            principal = self._api_keys.verify(credential.token)
        else:
            assert self._tokens is not None
            principal = self._tokens.verify(credential.token)
        if tenant_header is not None and tenant_header != principal.tenant:
            check_tenant(tenant_header, source="x-tenant-id header")
            raise PermissionDeniedError("x-tenant-id names a tenant this credential does not belong to")
        return principal


def require(principal: Principal, scope: str) -> Principal:
    """The principal if it has `scope`, else PermissionDeniedError naming it."""
    if scope not in principal.scopes:
        raise PermissionDeniedError(f"This credential lacks the {scope} scope")
    return principal


__all__ = [
    "TENANT_HEADER",
    "ApiKeyService",
    "Authenticator",
    "Credential",
    "TokenVerifier",
    "check_scopes",
    "check_tenant",
    "require",
]
