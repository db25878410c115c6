"""API keys: their format, their stored form and how a presented key is checked. Pure, no I/O.

A key reads `am_<key_id>_<secret>`: `key_id` (16 hex digits) is the store's primary key, so a request
costs one lookup by id, never a scan; `secret` is 32 random bytes (URL-safe base64). Only SHA-256 of
the secret is stored. A fast hash is right here: bcrypt and friends slow down guessing *low-entropy*
passwords, but a 256-bit random secret cannot be guessed however fast the hash, and a slow hash would
cost every request tens of milliseconds. The digest is compared with `hmac.compare_digest`.

    >>> key_id, secret = "0123456789abcdef", "s" * 43
    >>> parse_key(format_key(key_id, secret)) == (key_id, secret)
    True
    >>> parse_key("not-a-key") is None
    True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

KEY_PREFIX = "am_"
_KEY = re.compile(r"^am_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: everything but the secret, whose SHA-256 (hex) is `secret_hash`."""

    key_id: str
    tenant: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    secret_hash: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def with_last_used(self, when: datetime) -> ApiKey:
        return replace(self, last_used_at=when)


def new_key() -> tuple[str, str]:
    """A fresh (key_id, secret)."""
    return secrets.token_hex(8), secrets.token_urlsafe(32)


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key(presented: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    match = _KEY.match(presented)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of the presented secret's digest with the stored one."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


__all__ = ["KEY_PREFIX", "ApiKey", "format_key", "hash_secret", "new_key", "parse_key", "secret_matches"]
