// The inspector: plain JavaScript, no build step, nothing from the internet. Everything it does
// goes through the documented /_mock/ control routes, so a script or a test can do the same.
"use strict";

// The control app may be mounted anywhere: derive its prefix from where this page is served.
const BASE = location.pathname.replace(/\/inspector\/?[^/]*$/, "");
const POLL_MS = 500;
const COLLECTION = { auvy: "jobs", ava: "jobs", strait: "runs" };
const TERMINAL = new Set([
  "completed", "failed", "cancelled", "canceled", "timed_out", "crashed", "system_failed",
  "expired", "dead_letter",
]);
const $ = (id) => document.getElementById(id);

const state = {
  outcomes: { auvy: [], ava: [], strait: [] },
  records: { auvy: new Map(), ava: new Map(), strait: new Map() },
  selected: null, // {api, id}
  source: null, // the selected job's EventSource
  lastId: null,
  seen: 0,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function say(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("error", isError);
}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${data.error || ""}`);
  return data;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function badge(status) {
  return el("span", { class: `badge ${status}` }, status);
}

function progress(pct) {
  const bar = el("span", { class: "bar" }, el("i", { style: `width:${pct}%` }));
  return el("span", {}, bar, el("span", { class: "pct" }, `${pct}%`));
}

// One row per job: [id, what, status, extra cell, created]
const ROWS = {
  auvy: (j) => [j.job_id, j.pathway_name || j.kind, j.status, progress(j.progress), j.created_at],
  ava: (j) => [j.id, j.worker_id, j.status, String(j.priority), j.created_at],
  strait: (r) => [r.id, r.job_id, r.status, String(r.attempt), r.created_at],
};

function renderList(api, records) {
  const body = $(`list-${api}`);
  const rows = records.map((record) => {
    const [id, what, status, extra, created] = ROWS[api](record);
    const selected = state.selected && state.selected.api === api && state.selected.id === id;
    const row = el(
      "tr",
      { class: selected ? "selected" : "", dataset: { api, id, status } },
      el("td", { class: "id", title: id }, id.slice(0, 13) + "…"),
      el("td", { class: "what", title: what }, what),
      el("td", { class: "status" }, badge(status)),
      el("td", { class: "extra" }, extra),
      el("td", { class: "created" }, time(created)),
    );
    row.addEventListener("click", () => select(api, id));
    return row;
  });
  body.replaceChildren(...rows);
  $(`count-${api}`).textContent = records.length ? String(records.length) : "";
}

async function refresh() {
  const [auvy, ava, strait, clock] = await Promise.all([
    call("GET", "/auvy/jobs").catch(() => ({ jobs: [] })),
    call("GET", "/ava/jobs").catch(() => ({ jobs: [] })),
    call("GET", "/strait/runs").catch(() => []),
    call("GET", "/clock"),
  ]);
  const lists = { auvy: auvy.jobs, ava: ava.jobs, strait };
  for (const api of Object.keys(lists)) {
    const idOf = api === "auvy" ? (j) => j.job_id : (j) => j.id;
    state.records[api] = new Map(lists[api].map((j) => [idOf(j), j]));
    renderList(api, lists[api]);
  }
  $("clock").textContent = new Date(clock.now_ms).toLocaleTimeString() + (clock.manual ? " (manual)" : "");
  renderDetail();
}

function renderDetail() {
  if (!state.selected) return;
  const { api, id } = state.selected;
  const record = state.records[api].get(id);
  if (!record) return;
  const fields = {
    auvy: ["status", "progress", "current_step", "failedReason", "pathway_name", "workspace_id"],
    ava: ["status", "worker_id", "tenant_id", "priority", "error", "duration_ms"],
    strait: ["status", "job_id", "attempt", "error", "next_retry_at", "finished_at"],
  }[api];
  const items = [];
  for (const name of fields) {
    if (record[name] === null || record[name] === undefined) continue;
    items.push(el("dt", {}, name), el("dd", { dataset: { field: name } }, record[name]));
  }
  if (record.waitingFor) {
    items.push(el("dt", {}, "waiting for"), el("dd", {}, `${record.waitingFor.type}: ${record.waitingFor.prompt}`));
  }
  $("detail-fields").replaceChildren(...items);
}

function select(api, id) {
  state.selected = { api, id };
  $("empty").hidden = true;
  $("detail").hidden = false;
  $("detail-title").textContent = `${api} ${COLLECTION[api].slice(0, -1)} ${id}`;
  $("detail").dataset.api = api;
  $("detail").dataset.id = id;
  const buttons = state.outcomes[api].map((outcome) => {
    const button = el("button", { type: "button", dataset: { outcome } }, label(outcome));
    button.addEventListener("click", () => force(api, id, outcome));
    return button;
  });
  $("outcome-buttons").replaceChildren(...buttons);
  for (const row of document.querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", row.dataset.api === api && row.dataset.id === id);
  }
  $("events").replaceChildren();
  state.lastId = null;
  state.seen = 0;
  follow();
  renderDetail();
}

const LABELS = {
  complete: "Complete now", fail: "Fail", timeout: "Time out", approval: "Ask for approval",
  questions: "Ask questions", input: "Ask for input", crash: "Crash", dead_letter: "Dead-letter",
  wait: "Wait",
};
const label = (outcome) => LABELS[outcome] || outcome;

// Follows the selected job's events; after a dropped connection it resumes with `after`, the
// way a UI should, so nothing is shown twice or lost.
function follow() {
  if (state.source) state.source.close();
  const { api, id } = state.selected;
  const after = state.lastId ? `?after=${encodeURIComponent(state.lastId)}` : "";
  const source = new EventSource(`${BASE}/${api}/${COLLECTION[api]}/${id}/events${after}`);
  state.source = source;
  $("events-state").textContent = "live";
  source.onmessage = (message) => {
    if (message.lastEventId) state.lastId = message.lastEventId;
    state.seen += 1;
    const item = el("li", {}, el("span", { class: "sid" }, `${message.lastEventId || "-"} `), message.data);
    const list = $("events");
    list.append(item);
    list.scrollTop = list.scrollHeight;
  };
  source.onerror = () => {
    source.close();
    if (state.source !== source) return;
    const record = state.records[api].get(id);
    if (record && TERMINAL.has(record.status)) {
      $("events-state").textContent = `ended (${state.seen} events)`;
      return;
    }
    // The server ends a stream when the job ends; a live job's stream only drops: resume it.
    $("events-state").textContent = "reconnecting…";
    setTimeout(() => state.source === source && follow(), 500);
  };
}

async function force(api, id, outcome) {
  const reason = $("reason").value.trim();
  const body = reason ? { outcome, reason } : { outcome };
  try {
    await call("POST", `/${api}/${COLLECTION[api]}/${id}/outcome`, body);
    say(`${api} ${id}: ${outcome}`);
  } catch (error) {
    say(error.message, true);
  }
  await refresh();
  if (state.source === null || state.source.readyState === EventSource.CLOSED) follow();
}

// Each served API's description routes (its docs page and OpenAPI document), as health lists
// them: under the API's prefix, or at the root when one API is served there.
async function linkDescriptions() {
  const { described = {} } = await call("GET", "/health");
  for (const [api, links] of Object.entries(described)) {
    const holder = document.querySelector(`.describe[data-api="${api}"]`);
    if (holder === null) continue;
    const link = (href, text) => el("a", { href, target: "_blank", rel: "noopener" }, text);
    holder.replaceChildren(
      link(links.docs, "docs"), " · ",
      link(links.openapi_json, "openapi.json"), " · ",
      link(links.openapi_yaml, "openapi.yaml"),
    );
    holder.hidden = false;
  }
}

async function init() {
  await linkDescriptions();
  state.outcomes = await call("GET", "/outcomes");
  const { scenarios } = await call("GET", "/scenarios");
  $("scenario").replaceChildren(
    ...scenarios.map((s) => el("option", { value: s.name, title: s.description }, s.title)),
  );
  $("advance").addEventListener("click", async () => {
    const ms = Number($("advance-ms").value || 0);
    try {
      const result = await call("POST", "/clock/advance", { ms });
      say(`clock advanced ${ms} ms; ${result.timers_run} timers ran`);
    } catch (error) {
      say(error.message, true);
    }
    await refresh();
  });
  $("load-scenario").addEventListener("click", async () => {
    const name = $("scenario").value;
    try {
      const result = await call("POST", `/scenarios/${encodeURIComponent(name)}`);
      const started = Object.values(result.created).reduce((n, ids) => n + ids.length, 0);
      say(`scenario "${result.title}" loaded: ${started} jobs and runs started`);
    } catch (error) {
      say(error.message, true);
    }
    await refresh();
  });
  $("reset").addEventListener("click", async () => {
    await call("POST", "/reset");
    say("world reset to the seed");
    await refresh();
  });
  await refresh();
  const tick = async () => {
    try {
      await refresh();
    } catch (error) {
      say(`server unreachable: ${error.message}`, true);
    }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

init().catch((error) => say(error.message, true));
