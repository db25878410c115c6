"""The Visualizer (`/ui`) in headless Chromium against live `agent-memory serve` processes with data in
them: one with auth disabled (and the scripted LLM, so extraction tasks exist), one with API keys; and
the app under uvicorn in this process with AUTH_MODE=jwt and a JWKS served here.

Every wait is for an element or a value (WebDriverWait), never a sleep. Screenshots of each test's last
state, and of the named states below, are saved under tests/artifacts/visualizer/ (tests/fixtures/chromium.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from agent_memory.domain.models import MemoryMessage
from agent_memory.services.auth import ApiKeyService
from agent_memory.services.tokens import total_tokens
from tests.fixtures.app import make_container, serve_in_thread
from tests.fixtures.chromium import ARTIFACTS
from tests.fixtures.openai_stub import OpenAIStub
from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import AGENT_MEMORY, ServeDidNotStart, wait_until_healthy

T = TypeVar("T")
XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
TRIP = {
    "namespace": "travel",
    "user_id": "alice",
    "ttl_seconds": 3600,
    "messages": [
        {"id": "m1", "role": "user", "content": "Plan a hiking week in the Dolomites in June"},
        {"id": "m2", "role": "assistant", "content": "Sure: Val Gardena first, then the Alta Via 1."},
        {"id": "m3", "role": "user", "content": f"My notes say {XSS} but ignore that"},
    ],
    "memories": [{"id": "trip-pref", "text": "Alice prefers huts over hotels", "memory_type": "semantic",
                  "topics": ["travel", "lodging"]}],
    "data": {"budget_eur": 1200},
}
SUPPORT = {
    "namespace": "support",
    "user_id": "bob",
    "ttl_seconds": 600,
    "messages": [{"id": "s1", "role": "user", "content": "My router keeps rebooting"}],
}
RECORDS = [
    {"id": "tea", "text": "Alice prefers green tea over coffee", "namespace": "travel", "user_id": "alice",
     "topics": ["drinks"], "memory_type": "semantic"},
    {"id": "huts", "text": "Alice stayed in mountain huts last summer", "namespace": "travel", "user_id": "alice",
     "topics": ["travel"], "memory_type": "episodic"},
    {"id": "bob-tea", "text": "Bob drinks black tea every morning", "namespace": "support", "user_id": "bob",
     "topics": ["drinks"], "memory_type": "semantic"},
    {"id": "xss-record", "text": f"A record that says {XSS}", "namespace": "travel", "user_id": "alice",
     "memory_type": "semantic"},
]
QUIET_EXTRACTION = json.dumps({"memories": []})
HOUR_LEFT = r"5\d min \d\d s|1 h 00 min"  # a TTL of 3600 s, some seconds (at most minutes) later


@dataclass
class Server:
    base: str
    headers: dict[str, str] = field(default_factory=dict)

    def put(self, session_id: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        response = httpx.put(f"{self.base}/v1/working-memory/{session_id}", json=body,
                             headers=headers or self.headers, timeout=10)
        assert response.status_code == 200, response.text

    def create(self, records: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        response = httpx.post(f"{self.base}/v1/long-term-memory/", json={"memories": records},
                              headers=headers or self.headers, timeout=10)
        assert response.status_code == 200, response.text


def _environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "", **extra}
    for name in ("AGENT_MEMORY_DATA_DIR", "AUTH_MODE", "API_KEYS_TABLE", "AWS_LAMBDA_FUNCTION_NAME", "REDIS_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


@contextmanager
def serving(*deployments: tuple[Path, dict[str, str]]) -> Iterator[list[str]]:
    """`agent-memory serve` per (data dir, environment), started together (each takes seconds to import)."""
    started = []
    try:
        for data_dir, env in deployments:
            port = free_port()
            process = subprocess.Popen(
                [str(AGENT_MEMORY), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            started.append((f"http://127.0.0.1:{port}", process))
        for base, process in started:
            try:
                wait_until_healthy(base, process)
            except ServeDidNotStart as exc:
                pytest.fail(str(exc))
        yield [base for base, _ in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _create_keys(data_root: Path, *tenants: str) -> list[str]:
    """Keys made in-process in the server's data dir (`agent-memory keys create` is tested in
    test_auth_serve.py; a CLI process per key would cost seconds here)."""
    container = make_container(data_root, auth_mode="api_key")
    try:
        keys = ApiKeyService(container.api_key_store)
        return [keys.create(tenant)[1] for tenant in tenants]
    finally:
        container.close()


@dataclass
class KeyedServer(Server):
    acme_key: str = ""
    beta_key: str = ""


@dataclass
class Deployments:
    open_base: str
    keyed_base: str
    acme_key: str
    beta_key: str


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory, _openai_stub_server: OpenAIStub) -> Iterator[Deployments]:
    """Two servers: auth disabled with an LLM (the stub: extraction finds nothing), and AUTH_MODE=api_key
    with a key for each of two tenants."""
    stub = _openai_stub_server
    stub.reset()
    stub.default_chat_content = QUIET_EXTRACTION
    open_env = _environment(OPENAI_API_KEY="test", OPENAI_BASE_URL=stub.base_url, EXTRACTION_DEBOUNCE_SECONDS="0",
                            VISUALIZER_POLL_SECONDS="1")  # the refresh test waits for polls (the keyed server: 5 s)
    keyed_root = tmp_path_factory.mktemp("visualizer-keyed")
    acme, beta = _create_keys(keyed_root, "acme", "beta")
    with serving((tmp_path_factory.mktemp("visualizer-open"), open_env),
                 (keyed_root / "data", _environment(AUTH_MODE="api_key"))) as (open_base, keyed_base):
        yield Deployments(open_base, keyed_base, acme, beta)
    stub.reset()


@pytest.fixture(scope="module")
def open_server(deployments: Deployments) -> Server:
    """Auth disabled: two sessions (one with a primed record) and long-term records."""
    server = Server(deployments.open_base)
    server.put("trip-planning", TRIP)
    server.put("support-42", SUPPORT)
    server.create(RECORDS)
    primed = httpx.post(f"{server.base}/api/v1/working-memory/sessions/trip-planning/prime",
                        json={"memory_ids": ["tea", "no-such-record"]}, timeout=10)
    assert primed.status_code == 200, primed.text
    return server


@pytest.fixture(scope="module")
def keyed_server(deployments: Deployments) -> KeyedServer:
    """AUTH_MODE=api_key with two tenants, each with a session the other must never see."""
    acme, beta = deployments.acme_key, deployments.beta_key
    server = KeyedServer(deployments.keyed_base, {"X-API-Key": acme}, acme_key=acme, beta_key=beta)
    server.put("acme-session", {"messages": [{"id": "a1", "role": "user", "content": "acme asks"}]})
    server.put("beta-session", {"messages": [{"id": "b1", "role": "user", "content": "beta secret"}]},
               headers={"X-API-Key": beta})
    return server


# -- helpers ------------------------------------------------------------------------------------------


def tokens_of(session: dict[str, Any]) -> int:
    """The server's count (cl100k) of a session's messages."""
    return total_tokens([MemoryMessage.model_validate(m) for m in session["messages"]])


def wait(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 10, what: str = "") -> T:
    def attempt(d: WebDriver) -> T | bool:
        try:
            return condition(d)
        except StaleElementReferenceException:  # the page re-rendered under us: try again
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(attempt, message=what)  # type: ignore[arg-type]


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def texts(driver: WebDriver, selector: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def fits_the_window(driver: WebDriver) -> bool:
    """Nothing wider than the laptop-sized window: no sideways scrolling."""
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def screenshot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def session_row(driver: WebDriver, session_id: str) -> WebElement | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f'#sessions-body tr[data-session="{session_id}"]')
    return rows[0] if rows else None


def open_session(driver: WebDriver, base: str, session_id: str) -> None:
    driver.get(f"{base}/ui")
    row = wait(driver, lambda d: session_row(d, session_id), what=f"{session_id} listed")
    row.click()
    wait(driver, lambda d: by_id(d, "session-id").text == session_id and by_id(d, "session-detail").is_displayed(),
         what="the session's detail")


def search(driver: WebDriver, text: str, **fields: str) -> list[WebElement]:
    driver.find_element(By.CSS_SELECTOR, "[data-tab=search]").click()
    for element_id, value in {"search-text": text, **fields}.items():
        element = by_id(driver, element_id)
        if element.tag_name == "select":
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)
    summary = by_id(driver, "search-summary")
    driver.execute_script("arguments[0].textContent = ''", summary)  # so a repeated answer is seen as new
    by_id(driver, "search-run").click()
    wait(driver, lambda d: summary.text not in ("", "Searching…"), what="search answered")
    return driver.find_elements(By.CSS_SELECTOR, "#search-body tr.result-row")


def enter_key(driver: WebDriver, key: str) -> None:
    field_ = by_id(driver, "api-key")
    field_.clear()
    field_.send_keys(key)
    by_id(driver, "key-use").click()


def notice(driver: WebDriver) -> str:
    box = by_id(driver, "notice")
    return box.text if box.is_displayed() else ""


# -- auth disabled ------------------------------------------------------------------------------------


def test_the_page_lists_active_sessions_with_their_item_counts_and_ttl_left(
    browser: WebDriver, open_server: Server
) -> None:
    browser.get(f"{open_server.base}/")  # the root links to the page
    assert json.loads(browser.find_element(By.TAG_NAME, "body").text)["ui"] == "/ui"
    browser.get(f"{open_server.base}/ui")
    wait(browser, lambda d: session_row(d, "trip-planning") and session_row(d, "support-42"), what="both sessions")
    trip, support = session_row(browser, "trip-planning"), session_row(browser, "support-42")
    assert trip is not None and support is not None
    assert trip.find_element(By.CSS_SELECTOR, "td.items").text == "3"
    assert trip.find_element(By.CSS_SELECTOR, "td.tokens").text == str(tokens_of(TRIP))
    assert support.find_element(By.CSS_SELECTOR, "td.items").text == "1"
    assert "travel / alice" in trip.text and "support / bob" in support.text
    # TTL left: under the session's TTL, counting down (3600 s and 600 s when written).
    assert re.fullmatch(HOUR_LEFT, trip.find_element(By.CSS_SELECTOR, "td.ttl").text)
    assert re.fullmatch(r"[5-9] min \d\d s|10 min 00 s", support.find_element(By.CSS_SELECTOR, "td.ttl").text)
    assert by_id(browser, "sessions-total").text == "(2)"
    # The TTL counts down (the page ticks it every second, between polls).
    shown = trip.find_element(By.CSS_SELECTOR, "td.ttl").text
    wait(browser, lambda d: session_row(d, "trip-planning").find_element(By.CSS_SELECTOR, "td.ttl").text != shown,
         what="the TTL counting down")
    assert notice(browser) == ""
    # Nothing but this origin was loaded (no CDN): every resource the page fetched is ours.
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert origins and set(origins) == {open_server.base}
    screenshot(browser, "sessions")


def test_a_session_shows_its_buffer_token_usage_and_every_field_of_an_item(
    browser: WebDriver, open_server: Server
) -> None:
    open_session(browser, open_server.base, "trip-planning")
    tokens = tokens_of(TRIP)
    wait(browser, lambda d: by_id(d, "session-tokens").text == str(tokens), what=f"{tokens} tokens shown")
    assert by_id(browser, "context-window").get_attribute("value") == "16000"  # the server's default window
    assert by_id(browser, "session-percent").text == f"{100 * tokens / 16000:.1f} % of the context window"
    assert by_id(browser, "session-items").text == "3 messages, 1 memories, 1 primed"
    assert (by_id(browser, "session-namespace").text, by_id(browser, "session-user").text) == ("travel", "alice")
    assert re.fullmatch(HOUR_LEFT, by_id(browser, "session-ttl").text)
    contents = texts(browser, "#session-messages summary .content")
    assert contents == [m["content"] for m in TRIP["messages"]]  # type: ignore[index]
    assert texts(browser, "#session-memories summary .content") == ["Alice prefers huts over hotels"]
    # The long-term record primed into the session (through the session API), apart from its own memories.
    assert texts(browser, "#session-primed summary .content") == ["Alice prefers green tea over coffee"]
    assert json.loads(by_id(browser, "session-data").text) == {"budget_eur": 1200}

    # Each item expands to every field it has.
    first = browser.find_element(By.CSS_SELECTOR, "#session-messages details")
    first.find_element(By.TAG_NAME, "summary").click()
    shown = json.loads(first.find_element(By.TAG_NAME, "pre").text)
    assert shown["id"] == "m1" and shown["role"] == "user" and shown["content"] == TRIP["messages"][0]["content"]  # type: ignore[index]
    assert {"created_at", "discrete_memory_extracted"} <= set(shown)
    memory = browser.find_element(By.CSS_SELECTOR, "#session-memories details")
    memory.find_element(By.TAG_NAME, "summary").click()
    record = json.loads(memory.find_element(By.TAG_NAME, "pre").text)
    assert record["id"] == "trip-pref" and record["topics"] == ["travel", "lodging"]

    # A smaller window: the usage is measured against it.
    window = by_id(browser, "context-window")
    window.clear()
    window.send_keys("100\n")
    wait(browser, lambda d: by_id(d, "session-percent").text == f"{tokens:.1f} % of the context window",
         what="usage against a 100-token window")
    assert fits_the_window(browser)
    screenshot(browser, "session")


def test_message_and_record_text_is_shown_as_text_never_run_as_html(browser: WebDriver, open_server: Server) -> None:
    open_session(browser, open_server.base, "trip-planning")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#session-messages summary")) == 3)
    xss_message = texts(browser, "#session-messages summary .content")[2]
    assert xss_message == f"My notes say {XSS} but ignore that"  # the markup, as text
    browser.find_elements(By.CSS_SELECTOR, "#session-messages summary")[2].click()
    rows = search(browser, "record that says")
    assert any(XSS in row.text for row in rows)
    rows[0].click()  # and the expanded record
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    assert browser.execute_script("return window.__xss") is None
    screenshot(browser, "xss")


def test_long_term_search_with_filters_and_modes_shows_scored_results(browser: WebDriver, open_server: Server) -> None:
    browser.get(f"{open_server.base}/ui")
    rows = search(browser, "tea", **{"search-mode": "hybrid"})
    ids = [row.get_attribute("data-id") for row in rows]
    assert {"tea", "bob-tea"} <= set(ids) and "Alice prefers green tea over coffee" in rows[0].text
    scores = [float(row.find_element(By.CSS_SELECTOR, "td.score").text) for row in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert re.fullmatch(rf"{len(rows)} of \d+ · hybrid search", by_id(browser, "search-summary").text)

    rows = search(browser, "tea", **{"search-namespace": "travel", "search-mode": "keyword"})
    assert [row.get_attribute("data-id") for row in rows] == ["tea"]  # Bob's tea is in another namespace
    assert by_id(browser, "search-summary").text == "1 of 1 · keyword search"
    rows[0].click()
    detail = json.loads(browser.find_element(By.CSS_SELECTOR, "#search-body tr.detail-row pre").text)
    assert detail["id"] == "tea" and detail["score_type"] == "keyword" and detail["topics"] == ["drinks"]

    rows = search(browser, "alice", **{"search-mode": "semantic", "search-namespace": "", "search-type": "episodic"})
    assert [row.get_attribute("data-id") for row in rows] == ["huts"]
    rows = search(browser, "", **{"search-type": "", "search-topics": "drinks, lodging"})
    assert {row.get_attribute("data-id") for row in rows} == {"tea", "bob-tea", "trip-pref"}
    rows = search(browser, "", **{"search-topics": "", "search-user": "bob", "search-session": ""})
    assert {row.get_attribute("data-id") for row in rows} == {"bob-tea"}
    rows = search(browser, "", **{"search-user": "", "search-session": "trip-planning"})
    assert {row.get_attribute("data-id") for row in rows} == {"trip-pref"}  # promoted from the session
    assert fits_the_window(browser)
    screenshot(browser, "search")


def test_the_page_refreshes_while_open(browser: WebDriver, open_server: Server) -> None:
    live = {"messages": [{"id": "l1", "role": "user", "content": "Is anyone there?"}]}
    open_server.put("live-session", live)
    open_session(browser, open_server.base, "live-session")
    open_server.put("live-session", {"messages": [*live["messages"], {"id": "l2", "role": "assistant",
                                                                       "content": "Yes, right here"}]})
    open_server.put("new-session", {"messages": [{"id": "n1", "role": "user", "content": "hello"}]})
    # The poll runs every second here: wait for what it brings, not for a time.
    wait(browser, lambda d: "Yes, right here" in texts(d, "#session-messages summary .content"), timeout=20,
         what="the appended message")
    wait(browser, lambda d: session_row(d, "new-session"), timeout=20, what="the new session listed")
    assert by_id(browser, "session-items").text == "2 messages, 0 memories, 0 primed"
    for session_id in ("new-session", "live-session"):
        httpx.delete(f"{open_server.base}/v1/working-memory/{session_id}", timeout=10).raise_for_status()
    wait(browser, lambda d: session_row(d, "new-session") is None, timeout=20, what="the deleted session gone")
    wait(browser, lambda d: "is gone" in by_id(d, "session-empty").text, timeout=20, what="the open session gone")


def test_polling_pauses_while_the_tab_is_hidden(browser: WebDriver, open_server: Server) -> None:
    browser.get(f"{open_server.base}/ui")
    wait(browser, lambda d: by_id(d, "refresh-state").text.startswith("updated"), what="first refresh")
    browser.execute_script(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.dispatchEvent(new Event('visibilitychange'));")
    assert by_id(browser, "refresh-state").text == "paused (tab hidden)"
    requests = browser.execute_script("return performance.getEntriesByType('resource').length")
    browser.execute_script(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.dispatchEvent(new Event('visibilitychange'));")
    wait(browser, lambda d: by_id(d, "refresh-state").text.startswith("updated"), what="a refresh on return")
    assert browser.execute_script("return performance.getEntriesByType('resource').length") > requests


def test_the_tasks_tab_lists_the_extraction_task_of_each_session(browser: WebDriver, open_server: Server) -> None:
    browser.get(f"{open_server.base}/ui")
    browser.find_element(By.CSS_SELECTOR, "[data-tab=tasks]").click()

    def statuses(d: WebDriver) -> list[tuple[str, str]]:
        return [(row.find_elements(By.TAG_NAME, "td")[1].text, row.find_elements(By.TAG_NAME, "td")[2].text)
                for row in d.find_elements(By.CSS_SELECTOR, "#tasks-body tr[data-task]")]

    # Both seeded sessions were extracted by the server's embedded worker (the refresh brings the result).
    wait(browser, lambda d: statuses(d).count(("extract_session", "success")) >= 2, timeout=20,
         what="two successful extraction tasks")
    assert all(task_id.startswith("extract_") for task_id in texts(browser, "#tasks-body tr[data-task] code"))
    screenshot(browser, "tasks")


def test_assets_are_served_with_the_content_security_policy(open_server: Server) -> None:
    for path in ("/ui", "/ui/app.js", "/ui/app.css"):
        response = httpx.get(f"{open_server.base}{path}", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
        assert response.headers["x-content-type-options"] == "nosniff"


# -- auth on ------------------------------------------------------------------------------------------


def test_with_auth_on_the_page_asks_for_a_key_and_shows_only_the_keys_tenant(
    browser: WebDriver, keyed_server: KeyedServer
) -> None:
    browser.get(f"{keyed_server.base}/ui")  # the page itself is open
    wait(browser, lambda d: "needs an API key" in notice(d), what="the page asks for a key")
    assert session_row(browser, "acme-session") is None
    screenshot(browser, "auth-needs-key")

    enter_key(browser, "am_0000000000000000_" + "x" * 43)
    wait(browser, lambda d: "was refused" in notice(d), what="a wrong key is refused")

    enter_key(browser, keyed_server.acme_key)
    wait(browser, lambda d: session_row(d, "acme-session"), what="acme's session")
    assert notice(browser) == ""
    assert session_row(browser, "beta-session") is None and by_id(browser, "sessions-total").text == "(1)"
    assert by_id(browser, "key-state").text == "key set" and by_id(browser, "api-key").get_attribute("value") == ""
    # The key is kept in this tab's sessionStorage only: not in the URL, not in localStorage, no cookie.
    assert keyed_server.acme_key not in browser.current_url
    assert browser.execute_script("return localStorage.length") == 0 and browser.get_cookies() == []
    assert browser.execute_script("return sessionStorage.getItem('agent-memory-api-key')") == keyed_server.acme_key
    screenshot(browser, "auth-acme")

    browser.refresh()  # the same tab keeps it
    wait(browser, lambda d: session_row(d, "acme-session"), what="acme's session after a reload")
    open_session(browser, keyed_server.base, "acme-session")
    assert texts(browser, "#session-messages summary .content") == ["acme asks"]

    enter_key(browser, keyed_server.beta_key)  # another tenant's key: its data, and nothing of acme's
    wait(browser, lambda d: session_row(d, "beta-session"), what="beta's session")
    assert session_row(browser, "acme-session") is None

    open_session(browser, keyed_server.base, "beta-session")
    by_id(browser, "key-forget").click()
    wait(browser, lambda d: "needs an API key" in notice(d), what="asks again once the key is forgotten")
    assert browser.execute_script("return sessionStorage.length") == 0
    # Nothing the last key showed stays on screen.
    assert session_row(browser, "beta-session") is None and not by_id(browser, "session-detail").is_displayed()
    assert "beta secret" not in browser.find_element(By.TAG_NAME, "main").text


def test_with_auth_on_search_needs_the_key_too(browser: WebDriver, keyed_server: KeyedServer) -> None:
    keyed_server.create([{"id": "acme-fact", "text": "Acme ships rockets", "namespace": "acme-ns"}])
    keyed_server.create([{"id": "beta-fact", "text": "Beta ships rockets", "namespace": "beta-ns"}],
                        headers={"X-API-Key": keyed_server.beta_key})
    browser.get(f"{keyed_server.base}/ui")
    assert search(browser, "rockets") == []
    assert by_id(browser, "search-summary").text.startswith("Search failed")
    assert "needs an API key" in notice(browser)
    enter_key(browser, keyed_server.acme_key)
    rows = search(browser, "rockets")
    assert [row.get_attribute("data-id") for row in rows] == ["acme-fact"]


# -- a JWT instead of a key ---------------------------------------------------------------------------

JWT_ISSUER = "https://idp.example.test/pool"


@pytest.fixture
def jwt_server(tmp_path: Path) -> Iterator[tuple[str, Callable[[str], str]]]:
    """AUTH_MODE=jwt under uvicorn in this process, trusting a JWKS served here; and a token maker."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "RS256"}
    document = json.dumps({"keys": [jwk]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    jwks = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    container = make_container(tmp_path, auth_mode="jwt", jwt_issuer=JWT_ISSUER,
                               jwt_jwks_url=f"http://127.0.0.1:{jwks.server_address[1]}/jwks.json")

    def token(tenant: str) -> str:
        now = int(time.time())
        claims = {"iss": JWT_ISSUER, "sub": "viewer", "iat": now, "exp": now + 600, "tenant_id": tenant,
                  "scope": "memory:read memory:write"}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    try:
        for live in serve_in_thread(container):
            yield live.base_url, token
    finally:
        jwks.shutdown()
        jwks.server_close()
        container.close()


def test_with_jwt_auth_the_page_takes_a_bearer_token(
    browser: WebDriver, jwt_server: tuple[str, Callable[[str], str]]
) -> None:
    base, token = jwt_server
    acme = token("acme")
    put = httpx.put(f"{base}/v1/working-memory/jwt-session", headers={"Authorization": f"Bearer {acme}"},
                    json={"messages": [{"id": "j1", "role": "user", "content": "signed in with a token"}]}, timeout=10)
    assert put.status_code == 200, put.text
    browser.get(f"{base}/ui")
    wait(browser, lambda d: "needs an API key" in notice(d), what="the page asks for a credential")
    enter_key(browser, token("other"))  # a valid token of another tenant sees nothing of acme's
    wait(browser, lambda d: by_id(d, "sessions-total").text == "(0)", what="the other tenant's empty list")
    enter_key(browser, acme)  # sent as Authorization: Bearer (an X-API-Key is only for am_ keys)
    open_session(browser, base, "jwt-session")
    assert texts(browser, "#session-messages summary .content") == ["signed in with a token"]
    assert notice(browser) == ""
