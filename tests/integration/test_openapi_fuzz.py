"""schemathesis over our own `/openapi.json`, with auth off and on: generated requests (valid and invalid)
never get a 5xx, and every answer matches what the document declares for that route.

Given the app in-process on the embedded SQLite stores with the fake embedder (data under tmp_path)
When schemathesis sends positive and negative cases for every documented operation
  - with AUTH_MODE=disabled (the document of that mode: no security schemes),
  - with AUTH_MODE=api_key and a valid key of every scope on every request (the document of that mode:
    its schemes, 401/403 and the optional x-tenant-id header, which schemathesis also fills in),
  - with AUTH_MODE=api_key and no key, or a malformed or unknown one,
Then every check passes except those listed in EXCLUDED_CHECKS, each with its reason; and without a
valid key every operation that reads or writes a tenant's data answers 401 (documented), whatever else
is wrong with the request (except REFUSED_BEFORE_AUTH: documented 422s no route could run on).

Bounded for CI (two shared cores): FUZZ_EXAMPLES examples per operation in each of the first two runs,
FUZZ_AUTH_EXAMPLES in each run without a valid key (about 6,000 requests in all, two to three minutes on
two cores); set them higher for a deeper run. Rate limiting is off in these apps: a fuzzer is a flood.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    ignored_auth,
    max_response_time,
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from agent_memory.domain.auth import ALL_SCOPES
from agent_memory.http.app import create_app
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_container

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ_AUTH_EXAMPLES = int(os.environ.get("FUZZ_AUTH_EXAMPLES", "10"))

# Checks we do not run, and why (also in docs/architecture.md, "Validation at the edge"):
# - positive_data_acceptance: a body the schema allows can still be refused on purpose, after the
#   schema: a blank message or memory text (400, AMS does the same), an id the schema cannot express
#   as unaddressable (422), a duplicate id, a created_at in the future (422). Each is a documented 4xx.
# - negative_data_rejection: the wire contract is lax on purpose, as AMS's is: numeric strings are
#   ints (the 0.14 client sends `context_window_max` as "4000"), 0/1 are bools, epoch numbers are
#   datetimes. schemathesis counts such coercible values as schema violations that should be refused.
#   Whatever is refused is still checked: a 4xx of the documented shape, never a 5xx.
# - max_response_time: timing on two shared CI cores says nothing about correctness.
EXCLUDED_CHECKS = [positive_data_acceptance, negative_data_rejection, max_response_time]
# unsupported_method and allow_header_conformance are skipped for one path pair only:
# `/v1/long-term-memory/` (POST) and `/v1/long-term-memory` (DELETE) each also answer under the other
# spelling, undocumented, because API Gateway does not redirect and clients send either
# (ams_contract.md §1). schemathesis sends the other method to each spelling and expects a 405, and
# finds the other method in `Allow`.
TRAILING_SLASH_ALIASES = ("/v1/long-term-memory", "/v1/long-term-memory/")
ALIAS_CHECKS = [unsupported_method, allow_header_conformance]


def _document(**settings: object) -> dict[str, Any]:
    # The OpenAPI document needs no store: the container is built lazily and nothing here touches it,
    # so no data directory is created at import. The app that answers is built per module below.
    return create_app(make_container(Path("/nonexistent/openapi-only"), **settings)).openapi()


# schemathesis.pytest.from_fixture would build the schema from a fixture, but its lazy mode does not
# run under pytest 9 (it reads a private node attribute), so the documents are loaded eagerly.
schema = schemathesis.openapi.from_dict(_document())
keyed_schema = schemathesis.openapi.from_dict(_document(auth_mode="api_key", rate_limit_per_second=0))
FUZZ_SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same cases on every run: a CI failure reproduces locally
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(make_container(tmp_path_factory.mktemp("openapi-fuzz"), rate_limit_per_second=0))


@dataclass
class KeyedApp:
    app: FastAPI
    key: str


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> KeyedApp:
    container = make_container(tmp_path_factory.mktemp("openapi-fuzz-keyed"), auth_mode="api_key",
                               rate_limit_per_second=0)
    _, key = ApiKeyService(container.api_key_store).create("fuzz", name="schemathesis", scopes=ALL_SCOPES)
    return KeyedApp(create_app(container), key)


def _excluded(case: schemathesis.Case) -> list[Any]:
    return [*EXCLUDED_CHECKS, *ALIAS_CHECKS] if case.path in TRAILING_SLASH_ALIASES else EXCLUDED_CHECKS


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_every_documented_operation_holds_under_generated_input(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, excluded_checks=_excluded(case))


# ignored_auth sends a probe of its own without the credential, through the schema's transport, which
# needs a base_url (it cannot take the app given to `call_and_validate`); the runs without a valid key
# below check the same thing (401 on every operation that needs a credential) on every operation.
KEYED_EXCLUDED = [ignored_auth]


@keyed_schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_every_documented_operation_holds_with_a_valid_key(case: schemathesis.Case, keyed_app: KeyedApp) -> None:
    case.call_and_validate(app=keyed_app.app, headers={"Authorization": f"Bearer {keyed_app.key}"},
                           excluded_checks=[*_excluded(case), *KEYED_EXCLUDED])


# No credential, a malformed one, another scheme, and a well-formed key that no store holds, in both
# headers the API reads; the examples of each operation take them in turn.
BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"X-API-Key": "am_0123456789abcdef_" + "A" * 43},
]
_next_credential = itertools.count()

# Refused before authentication, because no route can run on them yet, and documented as 422: a path
# holding a control character (no route matches it), a body that is not JSON (decoded before the
# route's dependencies, the principal among them, are solved). Neither reads or names any data.
REFUSED_BEFORE_AUTH = ("the path must not contain control characters", '"type":"json_invalid"')


@keyed_schema.parametrize()
@settings(max_examples=FUZZ_AUTH_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_without_a_valid_key_every_tenant_operation_is_a_documented_401(
    case: schemathesis.Case, keyed_app: KeyedApp
) -> None:
    credential = BAD_CREDENTIALS[next(_next_credential) % len(BAD_CREDENTIALS)]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")}
    case.headers = {**headers, **credential}
    response = case.call_and_validate(app=keyed_app.app, excluded_checks=[*_excluded(case), *KEYED_EXCLUDED])
    security = case.operation.definition.raw.get("security")
    # The operation's own method (schemathesis also sends others, rightly a 405); `{}` in security: open
    # without a credential (plain /v1/health).
    if case.method.upper() == case.operation.method.upper() and security and {} not in security:
        if response.status_code == 422 and any(reason in response.text for reason in REFUSED_BEFORE_AUTH):
            return
        assert response.status_code == 401, (case.method, case.path, credential, response.status_code,
                                              response.text[:300])
        challenge = {k.lower(): v for k, v in response.headers.items()}["www-authenticate"]
        assert "Bearer" in str(challenge)
