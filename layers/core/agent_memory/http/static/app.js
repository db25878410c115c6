// The Visualizer: plain JavaScript over the JSON API, no framework and no build step.
//
// Rules this file keeps:
// - Every piece of data reaches the page through textContent or element properties, never innerHTML
//   (a message can hold any text, `<img src=x onerror=...>` included).
// - The API key (or a JWT) lives in sessionStorage (this tab only, gone when it closes) and in memory; it
//   is sent in headers (X-API-Key and Authorization) and never put in a URL or in localStorage.
// - URLs are relative to the page (/ui), so the page also works under a path prefix.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const metaContent = (name) => {
    const meta = document.querySelector(`meta[name="${name}"]`);
    return meta ? meta.content : null;
  };
  const KEY_STORAGE = "agent-memory-api-key";
  const POLL_MS = 1000 * Math.max(1, Number(metaContent("agent-memory-poll-seconds")) || 5); // VISUALIZER_POLL_SECONDS
  const TIMEOUT_MS = 10000;
  const PAGE_SIZE = 20;

  const state = {
    key: null,
    tab: "sessions",
    filter: { namespace: "", user_id: "" },
    offset: 0,
    total: 0,
    selected: null, // {session_id, namespace, user_id}
    sessionApi: null, // null: not probed yet; true/false: whether GET api/v1/working-memory/sessions/{id} exists
    open: new Set(), // keys of the expanded items, kept across refreshes
    rendered: new Map(), // list element id -> JSON of what it shows, to re-render only on change
    expiries: new Map(), // element -> epoch ms of the session's expiry, for the TTL countdown
    timer: null,
    refreshing: false,
    authNeeded: false,
  };

  // ---- the key -----------------------------------------------------------------------------------

  function loadKey() {
    try {
      state.key = sessionStorage.getItem(KEY_STORAGE) || null;
    } catch (_) {
      state.key = null; // storage disabled: the key stays in memory only
    }
    showKeyState();
  }

  function setKey(key) {
    state.key = key || null;
    try {
      if (state.key) sessionStorage.setItem(KEY_STORAGE, state.key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      // storage disabled: memory only
    }
    $("api-key").value = "";
    showKeyState();
  }

  function showKeyState() {
    const badge = $("key-state");
    badge.textContent = state.key ? "key set" : "no key";
    badge.classList.toggle("on", Boolean(state.key));
    $("api-key").placeholder = state.key ? "a key is set for this tab" : "am_… (kept in this tab only)";
  }

  // ---- the API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  function detailOf(body, fallback) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    }
    return fallback;
  }

  async function api(path, { method = "GET", params = null, body = undefined } = {}) {
    let url = path;
    if (params) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(params)) {
        if (value !== null && value !== undefined && value !== "") query.append(name, String(value));
      }
      const text = query.toString();
      if (text) url += "?" + text;
    }
    const headers = { Accept: "application/json" };
    if (state.key) {
      // Authorization too: a JWT goes only there, and a deployed stack's caching gateway authorizer reads
      // only that header. The API takes either for a key (Authorization wins when both are sent).
      headers.Authorization = `Bearer ${state.key}`;
      if (state.key.startsWith("am_")) headers["X-API-Key"] = state.key;
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
    } catch (error) {
      throw new ApiError(0, error.name === "AbortError" ? `no answer within ${TIMEOUT_MS / 1000} s` : "the server cannot be reached");
    } finally {
      clearTimeout(timeout);
    }
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (_) {
      parsed = null;
    }
    if (!response.ok) throw new ApiError(response.status, detailOf(parsed, `HTTP ${response.status}`));
    return parsed;
  }

  // ---- notices -----------------------------------------------------------------------------------

  function notice(text, kind = "warn") {
    const box = $("notice");
    box.textContent = text;
    box.classList.toggle("error", kind === "error");
    box.hidden = !text;
  }

  // What one credential showed must not stay on screen for the next (or for none).
  function clearData() {
    state.rendered.clear();
    state.expiries.clear();
    state.total = 0;
    state.offset = 0;
    state.selected = null;
    state.sessionApi = null;
    for (const id of ["sessions-body", "search-body", "tasks-body"]) $(id).replaceChildren();
    for (const id of ["sessions-total", "tasks-total", "sessions-page"]) $(id).textContent = "";
    $("session-detail").hidden = true;
    $("session-empty").hidden = false;
    $("session-empty").textContent = "Pick a session to see its buffer.";
  }

  // One place that turns an API error into what the user reads. Returns true when it was about auth.
  function explain(error) {
    if (!(error instanceof ApiError)) {
      notice(`Error: ${error.message}`, "error");
      return false;
    }
    if (error.status === 401) {
      state.authNeeded = true;
      clearData();
      notice(state.key
        ? `The API key was refused (${error.detail}). Enter another key above.`
        : "This server needs an API key: enter one above (it is kept in this tab only).");
      return true;
    }
    if (error.status === 403) {
      notice(`Not allowed with this key: ${error.detail}`, "error");
      return true;
    }
    if (error.status === 429) {
      notice(`Rate limited: ${error.detail}. The page keeps trying.`);
      return false;
    }
    if (error.status === 0) {
      notice(`The API did not answer: ${error.detail}.`, "error");
      return false;
    }
    notice(`HTTP ${error.status}: ${error.detail}`, "error");
    return false;
  }

  // ---- small DOM helpers (text only, never HTML) -------------------------------------------------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "title") node.title = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, value) {
    $(id).textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  }

  // Replace a container's children only when what it shows changed, so scrolling, focus and the
  // expanded items stay put between refreshes.
  function renderInto(id, data, build) {
    const json = JSON.stringify(data);
    if (state.rendered.get(id) === json) return;
    state.rendered.set(id, json);
    $(id).replaceChildren(...build(data));
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  function duration(ms) {
    if (ms === null) return "no expiry";
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s === 0) return "expired";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    if (m) return `${m} min ${String(r).padStart(2, "0")} s`;
    return `${r} s`;
  }

  function showExpiry(node, expiresAt) {
    if (expiresAt === undefined) {
      state.expiries.delete(node);
      node.textContent = "—";
      return;
    }
    state.expiries.set(node, expiresAt);
    node.textContent = duration(expiresAt === null ? null : expiresAt - Date.now());
  }

  function tickExpiries() {
    for (const [node, expiresAt] of state.expiries) {
      if (!node.isConnected) state.expiries.delete(node);
      else node.textContent = duration(expiresAt === null ? null : expiresAt - Date.now());
    }
  }

  // An item that expands to show every field it has.
  function inspectable(key, summaryParts, record) {
    const details = el("details", { dataset: { key } });
    if (state.open.has(key)) details.open = true;
    details.addEventListener("toggle", () => {
      if (details.open) state.open.add(key);
      else state.open.delete(key);
    });
    details.append(el("summary", {}, ...summaryParts), el("pre", { class: "json", text: JSON.stringify(record, null, 2) }));
    return el("li", {}, details);
  }

  // ---- sessions ----------------------------------------------------------------------------------

  function sessionParams(ref) {
    return { namespace: ref.namespace, user_id: ref.user_id };
  }

  // What the session API (Memory Platform, issue 12) adds: the TTL left, the token count and the primed
  // ids. Null when the server has no session API or the session is not readable through it.
  async function sessionFacts(sessionId) {
    if (state.sessionApi === false) return null;
    try {
      const facts = await api(`api/v1/working-memory/sessions/${encodeURIComponent(sessionId)}`);
      state.sessionApi = true;
      return facts;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && error.detail === "Not Found") {
        state.sessionApi = false; // FastAPI's answer for a route it does not have
        return null;
      }
      // Not readable through it (e.g. an id two namespaces share): the AMS answer alone still shows it.
      if (error instanceof ApiError && [400, 404, 409, 422].includes(error.status)) return null;
      throw error;
    }
  }

  function expiryOf(memory, facts) {
    if (facts && typeof facts.ttl === "number") return Date.now() + facts.ttl * 1000;
    if (facts && facts.ttl === null) return null;
    // Without the session API: every write restarts the TTL and sets updated_at.
    if (memory.ttl_seconds === null || memory.ttl_seconds === undefined) return null;
    const updated = Date.parse(memory.updated_at);
    return Number.isNaN(updated) ? undefined : updated + memory.ttl_seconds * 1000;
  }

  async function loadSession(ref) {
    const path = `v1/working-memory/${encodeURIComponent(ref.session_id)}`;
    const [memory, facts] = await Promise.all([api(path, { params: sessionParams(ref) }), sessionFacts(ref.session_id)]);
    let tokens = facts && typeof facts.token_count === "number" ? facts.token_count : null;
    return { memory, facts, tokens, expiresAt: expiryOf(memory, facts) };
  }

  async function refreshSessions() {
    const page = await api("v1/working-memory/", {
      params: { limit: PAGE_SIZE, offset: state.offset, namespace: state.filter.namespace, user_id: state.filter.user_id },
    });
    state.total = page.total;
    const rows = await Promise.all(page.sessions.map(async (sessionId) => {
      const ref = { session_id: sessionId, namespace: state.filter.namespace || null, user_id: state.filter.user_id || null };
      try {
        return { ref, ...(await loadSession(ref)) };
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null; // expired between list and get
        throw error;
      }
    }));
    renderSessionList(rows.filter(Boolean));
  }

  function renderSessionList(rows) {
    setText("sessions-total", `(${state.total})`);
    const first = state.total ? state.offset + 1 : 0;
    $("sessions-page").textContent = `${first}–${state.offset + rows.length} of ${state.total}`;
    $("sessions-prev").disabled = state.offset === 0;
    $("sessions-next").disabled = state.offset + PAGE_SIZE >= state.total;
    // Rebuilt only when a row's content changed (not for the TTL, which counts down in place), so a row
    // under the pointer is not replaced every poll.
    const shown = rows.map(({ memory, tokens }) => [memory.session_id, memory.namespace, memory.user_id,
      memory.messages.length, tokens]);
    const body = $("sessions-body");
    if (state.rendered.get("sessions-body") === JSON.stringify(shown)) {
      rows.forEach(({ expiresAt }, index) => {
        const cell = body.rows[index] && body.rows[index].querySelector("td.ttl");
        if (cell) showExpiry(cell, expiresAt);
      });
      return;
    }
    state.rendered.set("sessions-body", JSON.stringify(shown));
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No active sessions." })));
      return;
    }
    body.replaceChildren(...rows.map(({ memory, tokens, expiresAt }) => {
      const ttl = el("td", { class: "num ttl" });
      showExpiry(ttl, expiresAt);
      const scope = [memory.namespace, memory.user_id].filter(Boolean).join(" / ");
      const row = el("tr", { class: "session-row", dataset: { session: memory.session_id } },
        el("td", {}, el("code", { text: memory.session_id }), scope ? el("div", { class: "muted", text: scope }) : null),
        el("td", { class: "num items", text: String(memory.messages.length) }),
        el("td", { class: "num tokens", text: tokens === null ? "—" : String(tokens) }),
        ttl);
      if (state.selected && state.selected.session_id === memory.session_id) row.classList.add("selected");
      row.addEventListener("click", () => {
        selectSession({ session_id: memory.session_id, namespace: memory.namespace || null, user_id: memory.user_id || null });
      });
      return row;
    }));
  }

  function selectSession(ref) {
    state.selected = ref;
    for (const row of document.querySelectorAll("#sessions-body tr.session-row")) {
      row.classList.toggle("selected", row.dataset.session === ref.session_id);
    }
    refreshSelected().catch(explain);
  }

  function contextWindow() {
    const value = Number($("context-window").value);
    return Number.isInteger(value) && value > 0 ? value : null;
  }

  async function refreshSelected() {
    if (!state.selected) return;
    let loaded;
    try {
      loaded = await loadSession(state.selected);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        $("session-detail").hidden = true;
        $("session-empty").hidden = false;
        $("session-empty").textContent = `Session ${state.selected.session_id} is gone (expired or deleted).`;
        state.rendered.clear();
        return;
      }
      throw error;
    }
    const window_ = contextWindow();
    if (loaded.tokens === null && window_ !== null) {
      // No session API: the server's own count, as the percentage of a window large enough not to cut.
      const probe = await api(`v1/working-memory/${encodeURIComponent(state.selected.session_id)}`, {
        params: { ...sessionParams(state.selected), context_window_max: 1000000000 },
      });
      if (typeof probe.context_percentage_total_used === "number") {
        loaded.tokens = Math.round(probe.context_percentage_total_used * 1e7);
      }
    }
    renderSession(loaded, window_);
  }

  function renderSession({ memory, facts, tokens, expiresAt }, window_) {
    $("session-empty").hidden = true;
    $("session-detail").hidden = false;
    setText("session-id", memory.session_id);
    setText("session-namespace", memory.namespace);
    setText("session-user", memory.user_id);
    setText("session-updated", when(memory.updated_at));
    showExpiry($("session-ttl"), expiresAt);

    setText("session-tokens", tokens === null ? "?" : tokens);
    const meter = $("session-meter");
    if (tokens !== null && window_) {
      const percent = (100 * tokens) / window_;
      $("session-percent").textContent = `${percent.toFixed(1)} % of the context window`;
      meter.style.width = `${Math.min(100, percent)}%`;
      meter.classList.toggle("high", percent >= 70 && percent < 100);
      meter.classList.toggle("full", percent >= 100);
    } else {
      $("session-percent").textContent = "";
      meter.style.width = "0";
    }

    $("session-context-box").hidden = !memory.context;
    $("session-context").textContent = memory.context || "";

    const key = `${memory.namespace || ""}|${memory.user_id || ""}|${memory.session_id}`;
    setText("session-messages-count", `(${memory.messages.length})`);
    renderInto("session-messages", { key, messages: memory.messages }, () => memory.messages.map((message, index) =>
      inspectable(`${key}|m|${message.id || index}`, [
        el("span", { class: `role ${message.role}`, text: message.role }),
        el("span", { class: "when", text: when(message.created_at) }),
        el("span", { class: "content", text: message.content }),
      ], message)));
    if (!memory.messages.length) $("session-messages").replaceChildren(el("li", { class: "muted", text: "No messages." }));

    // Primed records sit in the session's memories too; the session API names them and returns them.
    const primedIds = new Set((facts && facts.primed_memory_ids) || memory.primed_memory_ids || []);
    const own = memory.memories.filter((record) => !primedIds.has(record.id));
    const primed = facts && Array.isArray(facts.primed_memories)
      ? facts.primed_memories
      : memory.memories.filter((record) => primedIds.has(record.id));
    const limit = facts && typeof facts.max_items === "number" ? ` (keeps ${facts.max_items})` : "";
    setText("session-items", `${memory.messages.length} messages${limit}, ${own.length} memories, ${primed.length} primed`);
    setText("session-memories-count", `(${own.length})`);
    renderInto("session-memories", { key, own }, () => own.map((record) => recordItem(`${key}|r`, record)));
    if (!own.length) $("session-memories").replaceChildren(el("li", { class: "muted", text: "None." }));
    setText("session-primed-count", `(${primed.length})`);
    $("session-primed-note").textContent = state.sessionApi === false
      ? "This server has no session API, so no memories are primed."
      : primed.length ? "" : "None primed (POST api/v1/working-memory/sessions/{id}/prime loads some).";
    const missing = [...primedIds].filter((id) => !primed.some((record) => record.id === id));
    renderInto("session-primed", { key, primed, missing }, () => [
      ...primed.map((record) => recordItem(`${key}|p`, record)),
      ...missing.map((id) => el("li", { class: "muted", text: `${id} (not in the session any more)` })),
    ]);
    $("session-data").textContent = JSON.stringify(memory.data || {}, null, 2);
  }

  function recordItem(prefix, record) {
    return inspectable(`${prefix}|${record.id}`, [
      el("span", { class: "role", text: record.memory_type || "memory" }),
      el("span", { class: "content", text: record.text }),
      el("span", { class: "when", text: (record.topics || []).join(", ") }),
    ], record);
  }

  // ---- long-term search --------------------------------------------------------------------------

  function searchBody() {
    const text = $("search-text").value.trim();
    const body = { limit: Number($("search-limit").value) || 20, search_mode: $("search-mode").value };
    if (text) body.text = text;
    const eq = (id, field) => {
      const value = $(id).value.trim();
      if (value) body[field] = { eq: value };
    };
    eq("search-namespace", "namespace");
    eq("search-user", "user_id");
    eq("search-session", "session_id");
    eq("search-type", "memory_type");
    const topics = $("search-topics").value.split(",").map((t) => t.trim()).filter(Boolean);
    if (topics.length) body.topics = { any: topics };
    return body;
  }

  async function runSearch() {
    $("search-run").disabled = true;
    $("search-summary").textContent = "Searching…";
    try {
      const body = searchBody();
      const result = await api("v1/long-term-memory/search", { method: "POST", body });
      const how = body.text ? `${body.search_mode} search` : "newest records (no search text)";
      $("search-summary").textContent = `${result.memories.length} of ${result.total} · ${how}`;
      renderResults(result.memories);
    } catch (error) {
      $("search-summary").textContent = error instanceof ApiError ? `Search failed: ${error.detail}` : "Search failed.";
      explain(error);
    } finally {
      $("search-run").disabled = false;
    }
  }

  function score(value) {
    return typeof value === "number" ? value.toFixed(3) : "—";
  }

  function renderResults(records) {
    const body = $("search-body");
    if (!records.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "Nothing found." })));
      return;
    }
    body.replaceChildren(...records.flatMap((record) => {
      const scope = [record.namespace, record.user_id, record.session_id].filter(Boolean).join(" / ");
      const row = el("tr", { class: "result-row session-row", dataset: { id: record.id } },
        el("td", { class: "num score", text: score(record.score), title: record.score_type || "" }),
        el("td", { class: "num", text: score(record.dist) }),
        el("td", { text: record.memory_type || "" }),
        el("td", { class: "text", text: record.text }),
        el("td", { class: "muted", text: scope }),
        el("td", { text: (record.topics || []).join(", ") }));
      const detail = el("tr", { class: "detail-row", hidden: "" },
        el("td", { colspan: "6" }, el("pre", { class: "json", text: JSON.stringify(record, null, 2) })));
      row.addEventListener("click", () => { detail.hidden = !detail.hidden; });
      return [row, detail];
    }));
  }

  // ---- tasks -------------------------------------------------------------------------------------

  async function refreshTasks() {
    const page = await api("v1/tasks", { params: { limit: 50 } });
    setText("tasks-total", `(${page.total})`);
    renderInto("tasks-body", page.tasks, (tasks) => tasks.length ? tasks.map((task) =>
      el("tr", { dataset: { task: task.id } },
        el("td", {}, el("code", { text: task.id })),
        el("td", { text: task.type }),
        el("td", { class: `status-${task.status}`, text: task.status }),
        el("td", { text: when(task.created_at) }),
        el("td", { text: when(task.completed_at) }),
        el("td", { class: "text", text: task.error_message || "" }))) : [
      el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No tasks in the last 7 days." }))]);
  }

  // ---- refresh loop ------------------------------------------------------------------------------

  async function refresh() {
    if (state.refreshing) return;
    state.refreshing = true;
    try {
      if (state.tab === "sessions") {
        await refreshSessions();
        await refreshSelected();
      } else if (state.tab === "tasks") {
        await refreshTasks();
      }
      state.authNeeded = false;
      notice("");
      $("refresh-state").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      explain(error);
      $("refresh-state").textContent = `failed ${new Date().toLocaleTimeString()}`;
    } finally {
      state.refreshing = false;
    }
  }

  function startPolling() {
    stopPolling();
    state.timer = setInterval(refresh, POLL_MS);
  }

  function stopPolling() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
  }

  function onVisibility() {
    if (document.hidden) {
      stopPolling();
      $("refresh-state").textContent = "paused (tab hidden)";
    } else {
      refresh();
      startPolling();
    }
  }

  function showTab(name) {
    state.tab = name;
    for (const button of document.querySelectorAll(".tab")) {
      button.classList.toggle("active", button.dataset.tab === name);
      button.setAttribute("aria-selected", String(button.dataset.tab === name));
    }
    for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.id !== `tab-${name}`;
    refresh();
  }

  function start() {
    loadKey();
    const defaultWindow = Number(metaContent("agent-memory-default-context-window"));
    $("context-window").value = Number.isInteger(defaultWindow) && defaultWindow > 0 ? defaultWindow : 16000;
    $("context-window").addEventListener("change", () => refreshSelected().catch(explain));

    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (key) setKey(key);
      clearData();
      refresh();
    });
    $("key-forget").addEventListener("click", () => {
      setKey(null);
      clearData();
      refresh();
    });
    $("sessions-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      state.filter = { namespace: $("sessions-namespace").value.trim(), user_id: $("sessions-user").value.trim() };
      state.offset = 0;
      refresh();
    });
    $("sessions-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); refresh(); });
    $("sessions-next").addEventListener("click", () => { state.offset += PAGE_SIZE; refresh(); });
    $("search-form").addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
    for (const button of document.querySelectorAll(".tab")) button.addEventListener("click", () => showTab(button.dataset.tab));

    document.addEventListener("visibilitychange", onVisibility);
    setInterval(tickExpiries, 1000);
    refresh();
    if (!document.hidden) startPolling();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
