"""AUTH_MODE=jwt against a real local HTTP server serving a JWKS generated here (RSA and EC keys from
`cryptography`), with tokens signed here: good, expired, not yet valid, wrong issuer, wrong audience,
unknown kid, bad signature, unaccepted algorithms, no tenant claim, no sub, Cognito-style scopes, and the
JWKS server down (503). Through the app (TestClient) and the verifier alone."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from agent_memory.adapters.jwt_verifier import JwtVerifier
from agent_memory.domain.errors import AuthenticationError, DependencyUnavailableError, PermissionDeniedError
from agent_memory.http.app import create_app
from tests.fixtures.app import make_container
from tests.fixtures.redis_process import free_port

ISSUER = "https://idp.example.test/pool"
AUDIENCE = "agent-memory"
SESSION = {"messages": [{"role": "user", "content": "hi", "created_at": "2026-01-01T00:00:00Z"}]}


@dataclass
class Jwks:
    """The issuer: its keys, the JWKS server's URL and how often it was fetched."""

    url: str
    rsa_key: Any
    ec_key: Any
    fetches: list[float] = field(default_factory=list)
    up: bool = True

    def token(self, *, kid: str = "rsa-1", key: Any = None, algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300,
                                "tenant_id": "acme", "scope": "openid memory:read memory:write"}  # fmt: skip
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or (self.ec_key if algorithm == "ES256" else self.rsa_key), algorithm=algorithm,
                          headers={"kid": kid})  # fmt: skip


def _jwk(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    data: dict[str, Any] = json.loads(algorithm.to_jwk(public_key))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def issuer_keys() -> tuple[Any, Any]:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(issuer_keys: tuple[Any, Any]) -> Iterator[Jwks]:
    rsa_key, ec_key = issuer_keys
    document = json.dumps(
        {"keys": [_jwk(rsa_key.public_key(), "rsa-1", "RS256"), _jwk(ec_key.public_key(), "ec-1", "ES256")]}
    ).encode()
    port = free_port()
    state = Jwks(url=f"http://127.0.0.1:{port}/.well-known/jwks.json", rsa_key=rsa_key, ec_key=ec_key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches.append(time.monotonic())
            if not state.up:
                self.send_response(500)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def verifier(jwks: Jwks) -> JwtVerifier:
    return JwtVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=AUDIENCE, timeout_seconds=2.0)


@pytest.fixture
def api(jwks: Jwks, tmp_path: Path) -> Iterator[TestClient]:
    container = make_container(
        tmp_path, auth_mode="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url
    )
    with TestClient(create_app(container)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_good_token_reads_and_writes_its_tenant(api: TestClient, jwks: Jwks) -> None:
    token = jwks.token()
    assert api.put("/v1/working-memory/s1", json=SESSION, headers=bearer(token)).status_code == 200
    assert api.get("/v1/working-memory/", headers=bearer(token)).json()["sessions"] == ["s1"]
    other = jwks.token(tenant_id="other")
    assert api.get("/v1/working-memory/", headers=bearer(other)).json()["sessions"] == []


def test_an_es256_token_is_accepted(verifier: JwtVerifier, jwks: Jwks) -> None:
    principal = verifier.verify(jwks.token(kid="ec-1", algorithm="ES256"))
    assert (principal.tenant, principal.subject) == ("acme", "jwt:user-1")


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"exp": int(time.time()) - 120}, "Token has expired"),
        ({"iss": "https://evil.example.test"}, f"Invalid issuer. Expected: {ISSUER}"),
        ({"aud": "someone-else"}, f"Invalid audience. Expected: {AUDIENCE}"),
        ({"sub": None}, "Token missing subject (sub) claim"),
        ({"exp": None}, "Token missing exp claim"),
        ({"nbf": int(time.time()) + 3600}, "Invalid JWT: The token is not yet valid (nbf)"),
        ({"iat": int(time.time()) + 3600}, "Invalid JWT: The token is not yet valid (iat)"),
        ({"iat": "yesterday"}, "Invalid JWT: Issued At claim (iat) must be an integer."),
    ],
)
def test_a_token_with_bad_claims_is_401(api: TestClient, jwks: Jwks, claims: dict[str, Any], detail: str) -> None:
    response = api.get("/v1/working-memory/", headers=bearer(jwks.token(**claims)))
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": detail}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_unknown_kid_is_401_and_refetches_at_most_once(api: TestClient, jwks: Jwks) -> None:
    api.get("/v1/working-memory/", headers=bearer(jwks.token()))
    before = len(jwks.fetches)
    for _ in range(3):
        response = api.get("/v1/working-memory/", headers=bearer(jwks.token(kid="rotated-away")))
        assert response.status_code == 401
        assert response.json() == {"detail": "Unable to find matching public key for kid: rotated-away"}
    assert len(jwks.fetches) - before <= 1  # the cooldown: made-up kids do not become a flood of fetches


def test_a_token_signed_by_another_key_is_401_invalid_token(api: TestClient, jwks: Jwks) -> None:
    forged = jwks.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    response = api.get("/v1/working-memory/", headers=bearer(forged))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token"})


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_hmac_and_unsigned_tokens_are_refused(api: TestClient, jwks: Jwks, algorithm: str) -> None:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": int(time.time()) + 60, "tenant_id": "acme"}
    token = jwt.encode(body, "s" * 32 if algorithm == "HS256" else None, algorithm=algorithm, headers={"kid": "rsa-1"})
    response = api.get("/v1/working-memory/", headers=bearer(token))
    assert response.status_code == 401
    assert "is not accepted" in response.json()["detail"]


@pytest.mark.parametrize("garbage", ["not.a.jwt", "abc", "a.b.c"])
def test_garbage_is_401_invalid_token_header(api: TestClient, garbage: str) -> None:
    response = api.get("/v1/working-memory/", headers=bearer(garbage))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token header"})


def test_a_token_without_the_tenant_claim_is_403(api: TestClient, jwks: Jwks) -> None:
    response = api.get("/v1/working-memory/", headers=bearer(jwks.token(tenant_id=None)))
    assert response.status_code == 403
    assert response.json() == {"detail": "Token has no tenant_id claim: it names no tenant"}
    bad = api.get("/v1/working-memory/", headers=bearer(jwks.token(tenant_id="a/b")))
    assert bad.status_code == 403


def test_a_configurable_tenant_claim_and_cognito_scopes(jwks: Jwks) -> None:
    verifier = JwtVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, tenant_claim="custom:tenant_id")
    token = jwks.token(aud=None, tenant_id=None, scope=None, **{"custom:tenant_id": "acme",
                       "scp": ["https://memory.example.test/memory:read"]})  # fmt: skip
    principal = verifier.verify(token)
    assert principal.tenant == "acme"
    assert principal.scopes == frozenset({"memory:read"})


def test_a_token_without_our_scopes_may_do_nothing(api: TestClient, jwks: Jwks) -> None:
    token = jwks.token(scope="openid profile")
    response = api.get("/v1/working-memory/", headers=bearer(token))
    assert (response.status_code, response.json()) == (403, {"detail": "This credential lacks the memory:read scope"})


def test_x_tenant_id_must_match_the_tokens_tenant(api: TestClient, jwks: Jwks) -> None:
    token = jwks.token()
    assert api.get("/v1/working-memory/", headers={**bearer(token), "x-tenant-id": "acme"}).status_code == 200
    assert api.get("/v1/working-memory/", headers={**bearer(token), "x-tenant-id": "other"}).status_code == 403


def test_x_api_key_is_not_a_credential_in_jwt_mode(api: TestClient, jwks: Jwks) -> None:
    response = api.get("/v1/working-memory/", headers={"X-API-Key": jwks.token()})
    assert (response.status_code, response.json()) == (401, {"detail": "Missing authorization header"})
    schema = api.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer"}


def test_the_jwks_server_down_is_503_naming_jwks(jwks: Jwks, tmp_path: Path) -> None:
    token = jwks.token()
    jwks.up = False
    container = make_container(tmp_path, auth_mode="jwt", jwt_issuer=ISSUER, jwt_jwks_url=jwks.url)
    with TestClient(create_app(container)) as api:
        response = api.get("/v1/working-memory/", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("jwks unavailable: fetching")
    assert response.headers["Retry-After"] == "1"


def test_an_unreachable_jwks_is_503(jwks: Jwks) -> None:
    verifier = JwtVerifier(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json", timeout_seconds=0.5)
    with pytest.raises(DependencyUnavailableError, match="jwks unavailable: fetching"):
        verifier.verify(jwks.token())


def test_the_key_set_is_cached_between_requests(verifier: JwtVerifier, jwks: Jwks) -> None:
    for _ in range(5):
        verifier.verify(jwks.token())
    assert len(jwks.fetches) == 1


def test_errors_are_the_domain_errors(verifier: JwtVerifier, jwks: Jwks) -> None:
    with pytest.raises(AuthenticationError):
        verifier.verify(jwks.token(exp=int(time.time()) - 100))
    with pytest.raises(PermissionDeniedError):
        verifier.verify(jwks.token(tenant_id=None))


def test_jwt_mode_needs_an_issuer_or_a_jwks_url(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="AUTH_MODE=jwt needs JWT_ISSUER"):
        make_container(tmp_path, auth_mode="jwt")
    with pytest.raises(ValidationError, match="must be http"):
        make_container(tmp_path, auth_mode="jwt", jwt_jwks_url="file:///etc/passwd")
    container = make_container(tmp_path, auth_mode="jwt", jwt_issuer=ISSUER + "/")
    assert container.settings.jwks_url == ISSUER + "/.well-known/jwks.json"
