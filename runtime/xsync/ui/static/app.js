// The xsync status page. Every piece of object data goes into the DOM as text (textContent,
// createTextNode): names and messages may hold markup or script, and must show as written.
"use strict";

const STATE_LABELS = {
  ok: "OK",
  pending: "pending",
  deferred: "deferred",
  held: "held back",
  backing_off: "backing off",
  error: "error",
};

const page = {
  filters: { model: "", state: "", q: "" },
  rows: new Map(), // "Model:id" -> summary
  selected: null, // "Model:id"
  seq: 0,
  allowRetry: false,
  modelOrder: new Map(), // model -> position in /api/models
  clockOffset: 0, // server time - browser time, seconds
  events: null,
  listRequest: 0,
  countsTimer: null,
  refreshingDue: false,
};

// --- DOM helpers -------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function icon(state) {
  const label = STATE_LABELS[state] || state;
  return el("span", { class: "icon", "data-state": state, title: label, role: "img", "aria-label": label });
}

function keyOf(summary) {
  return `${summary.model}:${summary.id}`;
}

function serverNow() {
  return Date.now() / 1000 + page.clockOffset;
}

function formatTime(seconds) {
  if (!seconds) return "never";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function retryText(nextRetry) {
  if (!nextRetry) return "";
  const left = Math.max(0, Math.round(nextRetry - serverNow()));
  return `in ${left} s (${formatTime(nextRetry)})`;
}

function showError(message) {
  const node = document.getElementById("error");
  node.textContent = message || "";
  node.hidden = !message;
}

async function getJSON(url, options) {
  const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options || {}));
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `${url}: HTTP ${response.status}`);
  }
  return body;
}

// --- filters and the list ------------------------------------------------------------------

function matches(summary) {
  const f = page.filters;
  if (f.model && summary.model !== f.model) return false;
  if (f.state && summary.state !== f.state) return false;
  const needle = f.q.trim().toLowerCase();
  if (needle) return summary.name.toLowerCase().includes(needle) || String(summary.id) === needle;
  return true;
}

function rowFor(summary) {
  const key = keyOf(summary);
  const row = el(
    "tr",
    { "data-key": key, "data-state": summary.state, tabindex: "0", on: { click: () => select(key) } },
    el("td", {}, icon(summary.state)),
    el("td", { text: summary.model }),
    el("td", { text: String(summary.id) }),
    el("td", { class: "name", text: summary.name }),
    el("td", { class: "state", text: (STATE_LABELS[summary.state] || summary.state) + (summary.deleting ? " (deleting)" : "") }),
    el("td", { class: "message", text: summary.state === "ok" ? "" : summary.message }),
    el("td", { class: "retry", "data-next-retry": summary.next_retry || "", text: retryText(summary.next_retry) })
  );
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter") select(key);
  });
  if (key === page.selected) row.classList.add("selected");
  return row;
}

function compareRows(a, b) {
  // Models in the order the server lists them (the schema's), then by id.
  const order = (model) => (page.modelOrder.has(model) ? page.modelOrder.get(model) : Infinity);
  if (a.model !== b.model) return order(a.model) - order(b.model) || (a.model < b.model ? -1 : 1);
  return a.id - b.id;
}

function renderList() {
  const body = document.querySelector("#objects tbody");
  const rows = Array.from(page.rows.values()).sort(compareRows);
  body.replaceChildren(...rows.map(rowFor));
  document.getElementById("empty").hidden = rows.length > 0;
}

function upsert(summary) {
  const key = keyOf(summary);
  page.rows.set(key, summary);
  const body = document.querySelector("#objects tbody");
  const existing = body.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
  if (existing) existing.replaceWith(rowFor(summary));
  else renderList();
}

function removeRow(key) {
  if (!page.rows.delete(key)) return;
  const existing = document.querySelector(`#objects tbody tr[data-key="${CSS.escape(key)}"]`);
  if (existing) existing.remove();
  document.getElementById("empty").hidden = page.rows.size > 0;
}

async function loadList() {
  const request = ++page.listRequest;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(page.filters)) if (value) params.set(name, value);
  const data = await getJSON(`/api/objects?${params}`);
  if (request !== page.listRequest) return; // a newer filter has been asked for meanwhile
  page.clockOffset = data.now - Date.now() / 1000;
  page.rows = new Map(data.objects.map((s) => [keyOf(s), s]));
  renderList();
}

// --- counts per model ------------------------------------------------------------------------

async function loadModels() {
  const data = await getJSON("/api/models");
  page.allowRetry = data.allow_retry;
  page.modelOrder = new Map(data.models.map((model, index) => [model.name, index]));
  page.clockOffset = data.now - Date.now() / 1000;
  if (data.title) {
    document.getElementById("title").textContent = data.title;
    document.title = data.title;
  }
  const select = document.getElementById("filter-model");
  if (select.options.length === 1) {
    for (const model of data.models) select.appendChild(el("option", { value: model.name, text: model.name }));
    const states = document.getElementById("filter-state");
    for (const state of data.states) states.appendChild(el("option", { value: state, text: STATE_LABELS[state] || state }));
  }
  const body = document.querySelector("#counts tbody");
  body.replaceChildren(
    ...data.models.map((model) =>
      el(
        "tr",
        { "data-model": model.name },
        el("td", { text: model.name }),
        ...data.states.map((state) => el("td", { "data-state": state, text: String(model.counts[state]) }))
      )
    )
  );
  return data.seq;
}

function refreshCountsSoon() {
  if (page.countsTimer) return;
  page.countsTimer = setTimeout(() => {
    page.countsTimer = null;
    loadModels().catch((error) => showError(error.message));
  }, 300);
}

// --- the detail pane -------------------------------------------------------------------------

function objectLink(summary) {
  const key = keyOf(summary);
  return el(
    "li",
    {},
    icon(summary.state),
    " ",
    el("a", { class: "object-link", "data-key": key, tabindex: "0", on: { click: () => select(key) } }, `${summary.model} ${summary.id} ${summary.name}`),
    ` (${STATE_LABELS[summary.state] || summary.state})`
  );
}

function definitions(pairs) {
  const list = el("dl");
  for (const [term, value] of pairs) {
    list.appendChild(el("dt", { text: term }));
    list.appendChild(el("dd", { text: value === null || value === undefined ? "" : String(value) }));
  }
  return list;
}

// A traceback kept beside the object: the frames in the user's files, innermost last.
function traceback(title, id, text) {
  return text ? [el("h3", { text: title }), el("pre", { class: "traceback", id, text })] : [];
}

function renderDetail(detail) {
  const pane = document.getElementById("detail");
  const o = detail.object;
  const parts = [
    el("h2", { id: "detail-title" }, icon(o.state), " ", `${o.model} ${o.id}: ${o.name}`),
    definitions([
      ["State", (STATE_LABELS[o.state] || o.state) + (o.deleting ? " (deleting)" : "")],
      ["Next retry", o.next_retry ? retryText(o.next_retry) : "-"],
      ["backend_code", detail.backend_code],
    ]),
    el("h3", { text: "backend_status" }),
    el("p", { class: "status", id: "detail-status", text: detail.backend_status }),
    ...traceback("Where it failed", "detail-traceback", detail.traceback),
    el("h3", { text: "Backoff" }),
    definitions([
      ["Failures", detail.backoff.failures],
      ["Last failure", formatTime(detail.backoff.last_failure)],
      ["Next run", detail.backoff.next_run ? formatTime(detail.backoff.next_run) : "now"],
      ["Last success", formatTime(detail.backoff.last_success)],
    ]),
    el("h3", { text: "Policy" }),
    definitions([
      ["Status", detail.policy.status],
      ["Code", detail.policy.code],
      ["Policed", formatTime(detail.policy.policed)],
      ["Pending", detail.policy.pending ? "yes" : "no"],
    ]),
    ...traceback("Where the policy failed", "detail-policy-traceback", detail.policy_traceback),
    el("h3", { text: "Waits for" }),
    detail.waits_for.length ? el("ul", { id: "waits-for" }, ...detail.waits_for.map(objectLink)) : el("p", { text: "nothing" }),
    el("h3", { text: "Waited for by" }),
    detail.waited_by.length ? el("ul", { id: "waited-by" }, ...detail.waited_by.map(objectLink)) : el("p", { text: "nothing" }),
  ];
  if (detail.waited_by_total > detail.waited_by.length) {
    parts.push(el("p", { text: `and ${detail.waited_by_total - detail.waited_by.length} more` }));
  }
  if (detail.allow_retry && o.state !== "ok") {
    parts.push(el("button", { id: "retry", type: "button", on: { click: () => retryNow(o) } }, "Retry now"));
  }
  parts.push(el("h3", { text: "Fields" }));
  parts.push(definitions(detail.fields));
  pane.replaceChildren(...parts);
  pane.hidden = false;
}

async function select(key) {
  page.selected = key;
  for (const row of document.querySelectorAll("#objects tbody tr")) {
    row.classList.toggle("selected", row.getAttribute("data-key") === key);
  }
  await showDetail(key);
}

async function showDetail(key) {
  const cut = key.lastIndexOf(":");
  const model = key.slice(0, cut);
  const id = key.slice(cut + 1);
  try {
    const detail = await getJSON(`/api/object/${encodeURIComponent(model)}/${encodeURIComponent(id)}`);
    if (page.selected === key) renderDetail(detail);
  } catch (error) {
    if (page.selected !== key) return;
    const pane = document.getElementById("detail");
    pane.replaceChildren(el("p", { class: "error", text: error.message }));
    pane.hidden = false;
  }
}

async function retryNow(summary) {
  try {
    await getJSON(`/api/object/${encodeURIComponent(summary.model)}/${summary.id}/retry`, {
      method: "POST",
      headers: { Accept: "application/json", "X-XSync-UI": "1" },
    });
    showError("");
  } catch (error) {
    showError(error.message);
  }
  await showDetail(keyOf(summary));
}

// --- live updates ------------------------------------------------------------------------------

function applyChange(message) {
  const key = `${message.model}:${message.id}`;
  if (message.object && matches(message.object)) upsert(message.object);
  else removeRow(key);
  if (page.selected === key) showDetail(key);
  else if (page.selected) showDetail(page.selected); // its neighbours may have changed
  refreshCountsSoon();
}

function setLive(state) {
  const node = document.getElementById("live");
  node.setAttribute("data-live", state);
  node.textContent = { live: "live", lost: "reconnecting", connecting: "connecting" }[state];
}

function follow(seq) {
  const source = new EventSource(`/api/events?after=${encodeURIComponent(seq)}`);
  page.events = source;
  source.addEventListener("ready", () => setLive("live"));
  source.addEventListener("change", (event) => applyChange(JSON.parse(event.data)));
  source.addEventListener("resync", () => reloadAll());
  source.addEventListener("failure", (event) => showError(JSON.parse(event.data).error));
  source.addEventListener("error", () => setLive("lost"));
}

async function reloadAll() {
  try {
    await loadModels();
    await loadList();
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

// Backoffs end without any change in the store: re-read the list when one is due.
function tick() {
  const now = serverNow();
  let due = false;
  for (const cell of document.querySelectorAll("#objects td.retry")) {
    const next = Number(cell.getAttribute("data-next-retry"));
    if (!next) continue;
    cell.textContent = retryText(next);
    if (next <= now) due = true;
  }
  if (due && !page.refreshingDue) {
    page.refreshingDue = true;
    reloadAll().finally(() => {
      page.refreshingDue = false;
    });
  }
}

function watchFilters() {
  const model = document.getElementById("filter-model");
  const state = document.getElementById("filter-state");
  const search = document.getElementById("filter-q");
  const apply = () => loadList().then(() => showError(""), (error) => showError(error.message));
  model.addEventListener("change", () => {
    page.filters.model = model.value;
    apply();
  });
  state.addEventListener("change", () => {
    page.filters.state = state.value;
    apply();
  });
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      page.filters.q = search.value;
      apply();
    }, 200);
  });
}

async function start() {
  watchFilters();
  try {
    const seq = await loadModels();
    await loadList();
    follow(seq);
  } catch (error) {
    showError(error.message);
  }
  setInterval(tick, 1000);
  document.body.setAttribute("data-ready", "true");
}

document.addEventListener("DOMContentLoaded", start);
