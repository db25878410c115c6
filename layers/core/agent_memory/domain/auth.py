"""Who is calling: the principal every request acts as, and what it may do.

The tenant of every key, row, document and task comes from here, never from a request body.

    >>> p = Principal(tenant="acme", subject="key:k1", scopes=frozenset({SCOPE_READ}))
    >>> p.may(SCOPE_READ), p.may(SCOPE_WRITE)
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

SCOPE_READ = "memory:read"  # read, list and search
SCOPE_WRITE = "memory:write"  # create, change and delete memories and sessions
SCOPE_ADMIN = "memory:admin"  # user data rights (export, delete everything of a user)
ALL_SCOPES = frozenset({SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN})
DEFAULT_KEY_SCOPES = frozenset({SCOPE_READ, SCOPE_WRITE})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `subject` is stable per credential ("key:<key_id>", a JWT's `sub`, or
    "local" with auth disabled) and is what rate limits count against."""

    tenant: str
    subject: str
    scopes: frozenset[str] = ALL_SCOPES
    key_id: str | None = None

    def may(self, scope: str) -> bool:
        return scope in self.scopes
