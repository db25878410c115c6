"""Bearer JWTs from an OIDC issuer or a Cognito user pool, checked against the issuer's JWKS (AUTH_MODE=jwt).

PyJWT's `PyJWKClient` fetches the JWKS (urllib, with JWKS_TIMEOUT_SECONDS), caches the key set for
JWKS_CACHE_SECONDS and, for a `kid` it does not know, refetches at most once per 30 s cooldown (a key
rotation is picked up; a flood of made-up `kid`s does not become a flood of fetches). One client per
process, built on first use; `jwt` is imported then too.

Checked: the signature (RS256/ES256, JWT_ALGORITHMS; `none` and HMAC never), `exp` (required), `nbf`
and `iat` (not in the future), `sub` (required), `iss` when JWT_ISSUER is set, `aud` when JWT_AUDIENCE
is set, with 30 s of leeway for clock skew. The tenant is the JWT_TENANT_CLAIM claim: a token without
it (or with an invalid one) is valid but belongs to no tenant, hence 403. Scopes come from `scope`
(space-separated) or `scp` (list or string); a scope matches ours exactly or as a suffix after `/`,
which is how Cognito names resource-server scopes (`https://memory.example.com/memory:read`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agent_memory.domain.auth import ALL_SCOPES, Principal
from agent_memory.domain.errors import AuthenticationError, DependencyUnavailableError, PermissionDeniedError
from agent_memory.domain.validation import check_identifier

if TYPE_CHECKING:
    from agent_memory.config import Settings

LEEWAY_SECONDS = 30


def granted_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Our scopes among the token's `scope`/`scp`, exact or as a `/`-suffix.

    >>> sorted(granted_scopes({"scope": "openid https://api.example.com/memory:read memory:write"}))
    ['memory:read', 'memory:write']
    >>> granted_scopes({"scp": ["notmemory:read"]})
    frozenset()
    """
    raw: Iterable[str] = ()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            raw = [*raw, *value.split()]
        elif isinstance(value, list):
            raw = [*raw, *(v for v in value if isinstance(v, str))]
    return frozenset(s for s in ALL_SCOPES if any(t == s or t.endswith("/" + s) for t in raw))


class JwtVerifier:
    """`TokenVerifier` (services/auth.py) for one issuer.

    Example::

        verifier = JwtVerifier(jwks_url="https://idp.example.com/.well-known/jwks.json",
                               issuer="https://idp.example.com", audience="agent-memory")
        principal = verifier.verify(token)
    """

    blocking = True  # a JWKS fetch may happen on any call

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str | None = None,
        audience: str | None = None,
        tenant_claim: str = "tenant_id",
        algorithms: Iterable[str] = ("RS256", "ES256"),
        cache_seconds: float = 3600,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.tenant_claim = tenant_claim
        self.algorithms = list(algorithms)
        self._cache_seconds = cache_seconds
        self._timeout_seconds = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, s: Settings) -> JwtVerifier:
        assert s.jwks_url, "Settings requires JWT_ISSUER or JWT_JWKS_URL with AUTH_MODE=jwt"
        return cls(
            jwks_url=s.jwks_url,
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            tenant_claim=s.jwt_tenant_claim,
            algorithms=s.jwt_algorithms,
            cache_seconds=s.jwks_cache_seconds,
            timeout_seconds=s.jwks_timeout_seconds,
        )

    def verify(self, token: str) -> Principal:
        """The principal of a valid token: AuthenticationError (401) when it is not valid, PermissionDeniedError
        (403) when it names no tenant, DependencyUnavailableError (503) when the JWKS cannot be fetched."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("Invalid token header") from None
        kid = header.get("kid")
        if not kid:
            raise AuthenticationError("Token missing key identifier (kid)")
        if header.get("alg") not in self.algorithms:
            raise AuthenticationError(f"Invalid JWT: algorithm {str(header.get('alg'))[:20]!r} is not accepted")
        key = self._signing_key(str(kid))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(f"Invalid audience. Expected: {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError(f"Invalid issuer. Expected: {self.issuer}") from None
        except jwt.MissingRequiredClaimError as exc:
            detail = "Token missing subject (sub) claim" if exc.claim == "sub" else f"Token missing {exc.claim} claim"
            raise AuthenticationError(detail) from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("Invalid token") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"Invalid JWT: {str(exc)[:200]}") from None
        return Principal(tenant=self._tenant(claims), subject=f"jwt:{claims['sub']}", scopes=granted_scopes(claims))

    def _tenant(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.tenant_claim)
        if not isinstance(value, str):
            raise PermissionDeniedError(f"Token has no {self.tenant_claim} claim: it names no tenant")
        try:
            return check_identifier(value)
        except ValueError as exc:
            raise PermissionDeniedError(f"Token's {self.tenant_claim} claim is not a valid tenant id: {exc}") from None

    def _signing_key(self, kid: str) -> Any:
        import jwt

        try:
            return self._jwks().get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyUnavailableError("jwks", f"fetching {self.jwks_url} failed: {str(exc)[:200]}") from exc
        except jwt.PyJWKClientError as exc:
            message = str(exc)
            if "matches" in message:
                raise AuthenticationError(f"Unable to find matching public key for kid: {kid[:100]}") from None
            # Not JSON, or no signing keys: the issuer's endpoint is broken, not the caller's token.
            raise DependencyUnavailableError("jwks", f"{self.jwks_url}: {message[:200]}") from exc
        except jwt.PyJWTError as exc:  # a key in the set PyJWT cannot use
            raise DependencyUnavailableError("jwks", f"{self.jwks_url}: {str(exc)[:200]}") from exc

    def _jwks(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from jwt import PyJWKClient

                    self._client = PyJWKClient(
                        self.jwks_url, cache_jwk_set=True, lifespan=self._cache_seconds, timeout=self._timeout_seconds
                    )
        return self._client


__all__ = ["JwtVerifier", "granted_scopes"]
