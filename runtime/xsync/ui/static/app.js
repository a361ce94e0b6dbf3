// The xsync status page. Every piece of object data goes into the DOM as text (textContent,
// createTextNode): names and messages may hold markup or script, and must show as written.
//
// The list is paged on the server: the page asks /api/objects for the blocks of rows that are
// in view (and a few around them) and draws only those, between two spacer rows that give the
// scroll bar its full length. A live change redraws its row if it is in view, and asks again,
// shortly after, for the rows in view and the counts: nothing else is fetched.
"use strict";

const STATE_LABELS = {
  ok: "OK",
  pending: "pending",
  deferred: "deferred",
  held: "held back",
  backing_off: "backing off",
  error: "error",
};
const STATE_SHORT = { ok: "ok", pending: "pend.", deferred: "def.", held: "held", backing_off: "back.", error: "err." };
const BLOCK = 100; // rows per /api/objects request
const OVERSCAN = 15; // rows drawn beyond each edge of the view
const VIEW_REFRESH_MS = 500; // after a live change: ask again for the rows in view
const COUNTS_REFRESH_MS = 300;
const GROUP_LINKS = 24; // objects linked per group; "List them" shows them all

const page = {
  filters: { model: "", state: "", q: "" },
  sort: { by: "model", order: "asc" },
  showEmpty: false,
  list: { generation: 0, total: 0, blocks: new Map(), loading: new Set() },
  selected: null, // "Model:id"
  allowRetry: false,
  models: [], // from /api/models
  states: [],
  clockOffset: 0, // server time - browser time, seconds
  events: null,
  timers: {},
  refreshingDue: false,
  tab: "objects",
  rowHeight: 30,
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

function $(selector) {
  return document.querySelector(selector);
}

function icon(state) {
  const label = STATE_LABELS[state] || state;
  return el("span", { class: "icon", "data-state": state, title: label, role: "img", "aria-label": label });
}

function keyOf(summary) {
  return `${summary.model}:${summary.id}`;
}

function splitKey(key) {
  const cut = key.lastIndexOf(":");
  return [key.slice(0, cut), key.slice(cut + 1)];
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

// Counts in the narrow sidebar: 12,345 reads "12k" (the exact number is in the title).
function compact(n) {
  if (n < 10000) return String(n);
  if (n < 1000000) return `${Math.floor(n / 1000)}k`;
  return `${Math.floor(n / 100000) / 10}M`;
}

function showError(message) {
  const node = document.getElementById("error");
  node.textContent = message || "";
  node.hidden = !message;
}

function later(name, ms, fn) {
  if (page.timers[name]) return;
  page.timers[name] = setTimeout(() => {
    page.timers[name] = null;
    fn();
  }, ms);
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

function writeOptions() {
  return { method: "POST", headers: { Accept: "application/json", "X-XSync-UI": "1" } };
}

// --- the list: server-side pages, drawn as a window over the whole -----------------------------

function listParams(extra) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(page.filters)) if (value) params.set(name, value);
  params.set("sort", page.sort.by);
  params.set("order", page.sort.order);
  for (const [name, value] of Object.entries(extra || {})) params.set(name, value);
  return params;
}

function matches(summary) {
  const f = page.filters;
  if (f.model && summary.model !== f.model) return false;
  if (f.state && summary.state !== f.state) return false;
  const needle = f.q.trim().toLowerCase();
  if (!needle) return true;
  const message = summary.state === "ok" ? "" : summary.message.toLowerCase();
  return summary.name.toLowerCase().includes(needle) || String(summary.id) === needle || message.includes(needle);
}

// Forget every fetched row: the filters or the sort changed. Scrolls back to the top.
function resetList() {
  page.list = { generation: page.list.generation + 1, total: page.list.total, blocks: new Map(), loading: new Set() };
  $("#list-scroll").scrollTop = 0;
  return loadBlock(0).then(drawList);
}

// Ask again for the rows in view (after live changes): the scroll position is kept.
function refreshView() {
  const list = page.list;
  const wanted = blocksInView();
  page.list = { generation: list.generation + 1, total: list.total, blocks: new Map(), loading: new Set() };
  for (const block of wanted) if (list.blocks.has(block)) page.list.blocks.set(block, list.blocks.get(block));
  return Promise.all(wanted.map((block) => loadBlock(block))).then(drawList);
}

async function loadBlock(block) {
  const list = page.list;
  if (list.loading.has(block)) return;
  list.loading.add(block);
  try {
    const data = await getJSON(`/api/objects?${listParams({ offset: block * BLOCK, limit: BLOCK })}`);
    if (list !== page.list) return; // the filters changed meanwhile
    page.clockOffset = data.now - Date.now() / 1000;
    list.total = data.total;
    list.blocks.set(block, data.objects);
    showError("");
  } catch (error) {
    showError(error.message);
  } finally {
    list.loading.delete(block);
  }
}

function viewRange() {
  const scroller = $("#list-scroll");
  const head = $("#objects thead").offsetHeight;
  const first = Math.max(0, Math.floor((scroller.scrollTop - head) / page.rowHeight) - OVERSCAN);
  const count = Math.ceil(scroller.clientHeight / page.rowHeight) + 2 * OVERSCAN;
  return [first, Math.min(page.list.total, first + count)];
}

function blocksInView() {
  const [first, last] = viewRange();
  const blocks = [];
  for (let b = Math.floor(first / BLOCK); b * BLOCK < Math.max(last, 1); b++) blocks.push(b);
  return blocks;
}

function rowAt(index) {
  const block = page.list.blocks.get(Math.floor(index / BLOCK));
  return block ? block[index % BLOCK] : undefined;
}

function spacer(height) {
  const row = el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: "7" }));
  row.firstChild.style.height = `${height}px`;
  return row;
}

function drawList() {
  const total = page.list.total;
  const [first, last] = viewRange();
  const rows = [spacer(first * page.rowHeight)];
  const missing = new Set();
  for (let i = first; i < last; i++) {
    const summary = rowAt(i);
    if (summary) rows.push(rowFor(summary, i));
    else {
      missing.add(Math.floor(i / BLOCK));
      rows.push(el("tr", { class: "loading", "aria-rowindex": String(i + 2) }, el("td", { colspan: "7", text: "…" })));
    }
  }
  rows.push(spacer(Math.max(0, total - last) * page.rowHeight));
  $("#objects tbody").replaceChildren(...rows);
  $("#objects").setAttribute("aria-rowcount", String(total + 1));
  $("#empty").hidden = total > 0;
  $("#list-summary").textContent = `${total.toLocaleString("en")} object${total === 1 ? "" : "s"}` +
    (page.filters.model || page.filters.state || page.filters.q ? " match the filters" : "");
  for (const block of missing) {
    if (!page.list.loading.has(block)) loadBlock(block).then(drawList);
  }
  // The rows' real height (fonts, zoom) sets the spacers: measured once rows are drawn.
  const drawn = $("#objects tbody tr[data-key]");
  const height = drawn ? drawn.getBoundingClientRect().height : 0;
  if (height && Math.abs(height - page.rowHeight) > 0.25) {
    page.rowHeight = height;
    drawList();
  }
}

function rowFor(summary, index) {
  const key = keyOf(summary);
  const state = (STATE_LABELS[summary.state] || summary.state) + (summary.deleting ? " (deleting)" : "");
  const message = summary.state === "ok" ? "" : summary.message;
  const row = el(
    "tr",
    {
      "data-key": key,
      "data-state": summary.state,
      "data-index": String(index),
      "aria-rowindex": String(index + 2),
      tabindex: "0",
      on: { click: () => select(key) },
    },
    el("td", {}, icon(summary.state)),
    el("td", { text: summary.model, title: summary.model }),
    el("td", { text: String(summary.id) }),
    el("td", { class: "name", text: summary.name, title: summary.name }),
    el("td", { class: "state", text: state }),
    el("td", { class: "message", text: message, title: message }),
    el("td", { class: "retry", "data-next-retry": summary.next_retry || "", text: retryText(summary.next_retry) })
  );
  row.addEventListener("keydown", (event) => rowKey(event, key, index));
  if (key === page.selected) row.classList.add("selected");
  return row;
}

function rowKey(event, key, index) {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    select(key);
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    focusRow(index + (event.key === "ArrowDown" ? 1 : -1));
  }
}

function focusRow(index) {
  if (index < 0 || index >= page.list.total) return;
  const scroller = $("#list-scroll");
  const head = $("#objects thead").offsetHeight;
  const top = head + index * page.rowHeight;
  if (top < scroller.scrollTop + head) scroller.scrollTop = top - head;
  else if (top + page.rowHeight > scroller.scrollTop + scroller.clientHeight)
    scroller.scrollTop = top + page.rowHeight - scroller.clientHeight;
  drawList();
  const row = $(`#objects tbody tr[data-index="${index}"]`);
  if (row) row.focus();
}

// Bring the row at `index` into view (a link to an object, or a test).
function scrollToIndex(index) {
  const scroller = $("#list-scroll");
  scroller.scrollTop = Math.max(0, index * page.rowHeight - scroller.clientHeight / 3);
  drawList();
}

// A live change: its row is redrawn if it is in view; the rows in view and counts follow shortly.
function applyChange(message) {
  const key = `${message.model}:${message.id}`;
  for (const block of page.list.blocks.values()) {
    const at = block.findIndex((s) => keyOf(s) === key);
    if (at >= 0 && message.object) block[at] = message.object;
  }
  const existing = $(`#objects tbody tr[data-key="${CSS.escape(key)}"]`);
  if (existing) {
    if (message.object && matches(message.object)) {
      existing.replaceWith(rowFor(message.object, Number(existing.getAttribute("data-index"))));
    } else {
      existing.classList.add("stale");
    }
  }
  later("view", VIEW_REFRESH_MS, () => refreshView());
  if (page.selected) showDetail(page.selected); // it, or one of its neighbours, may have changed
  later("counts", COUNTS_REFRESH_MS, () => loadModels().catch((error) => showError(error.message)));
  if (page.tab === "groups") later("groups", 1000, () => loadGroups());
  if (page.tab === "graph") later("graph", 1000, () => loadGraph());
}

// --- counts per model ------------------------------------------------------------------------

function visibleModels() {
  return page.models.filter((m) => m.service || m.total > 0 || page.showEmpty || m.name === page.filters.model);
}

async function loadModels() {
  const data = await getJSON("/api/models");
  page.allowRetry = data.allow_retry;
  page.models = data.models;
  page.states = data.states;
  page.clockOffset = data.now - Date.now() / 1000;
  if (data.title) {
    $("#title").textContent = data.title;
    document.title = data.title;
  }
  drawModels();
  return data.seq;
}

function drawModels() {
  const models = visibleModels();
  const select = $("#filter-model");
  const chosen = page.filters.model;
  select.replaceChildren(
    el("option", { value: "", text: "all models" }),
    ...models.map((m) => el("option", { value: m.name, text: m.service ? m.name : `${m.name} (core)` }))
  );
  select.value = chosen;
  const states = $("#filter-state");
  if (states.options.length === 1) {
    for (const state of page.states) states.appendChild(el("option", { value: state, text: STATE_LABELS[state] || state }));
  }
  const head = $("#counts thead tr");
  if (head.children.length === 1) {
    for (const state of page.states) {
      head.appendChild(el("th", { scope: "col", title: STATE_LABELS[state] }, icon(state), el("span", { class: "sr-only", text: STATE_LABELS[state] })));
    }
  }
  $("#counts tbody").replaceChildren(...models.map(countsRow));
  const total = page.models.reduce((sum, m) => sum + m.total, 0);
  const errors = page.models.reduce((sum, m) => sum + (m.counts.error || 0), 0);
  $("#totals").textContent = `${total.toLocaleString("en")} objects, ${errors.toLocaleString("en")} failing`;
}

function countsRow(model) {
  return el(
    "tr",
    { "data-model": model.name, class: model.service ? "service" : "core" },
    el("td", {}, el("button", {
      type: "button", class: "model", title: `${model.name}: list its objects`, text: model.name,
      on: { click: () => setFilters({ model: model.name, state: "" }) },
    })),
    ...page.states.map((state) => {
      const n = model.counts[state];
      return el("td", {
        "data-state": state,
        class: n ? "" : "zero",
        title: `${n.toLocaleString("en")} ${STATE_LABELS[state]} ${model.name}`,
        text: compact(n),
        on: { click: () => setFilters({ model: model.name, state }) },
      });
    })
  );
}

// --- filters, sorting, tabs ----------------------------------------------------------------------

function setFilters(changes) {
  Object.assign(page.filters, changes);
  $("#filter-model").value = page.filters.model;
  $("#filter-state").value = page.filters.state;
  $("#filter-q").value = page.filters.q;
  if (page.filters.model) drawModels();
  showTab("objects");
  return resetList();
}

function drawSort() {
  for (const th of document.querySelectorAll("#objects thead th[data-sort]")) {
    const on = th.getAttribute("data-sort") === page.sort.by;
    if (on) th.setAttribute("aria-sort", page.sort.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function watchControls() {
  const model = $("#filter-model");
  const state = $("#filter-state");
  const search = $("#filter-q");
  model.addEventListener("change", () => setFilters({ model: model.value }));
  state.addEventListener("change", () => setFilters({ state: state.value }));
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => setFilters({ q: search.value }), 200);
  });
  $("#show-empty").addEventListener("change", (event) => {
    page.showEmpty = event.target.checked;
    drawModels();
  });
  for (const th of document.querySelectorAll("#objects thead th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const by = th.getAttribute("data-sort");
      page.sort = { by, order: page.sort.by === by && page.sort.order === "asc" ? "desc" : "asc" };
      drawSort();
      resetList();
    });
  }
  let frame = null;
  $("#list-scroll").addEventListener("scroll", () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = null;
      drawList();
    });
  });
  window.addEventListener("resize", () => drawList());
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  for (const tab of tabs) {
    tab.addEventListener("click", () => showTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(at + step + tabs.length) % tabs.length];
      next.focus();
      showTab(next.id.slice(4));
    });
  }
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#detail").hidden) closeDetail();
    else if (event.key === "/" && document.activeElement.tagName !== "INPUT") {
      event.preventDefault();
      search.focus();
    }
  });
}

function showTab(name) {
  page.tab = name;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
  }
  if (name === "objects") drawList();
  if (name === "groups") loadGroups();
  if (name === "graph") loadGraph();
}

// --- failures grouped by message, held-back objects by root cause -------------------------------

async function loadGroups() {
  let data;
  try {
    data = await getJSON("/api/groups");
  } catch (error) {
    showError(error.message);
    return;
  }
  const failing = data.failing.map((g) => failingGroup(g, data.allow_retry));
  $("#failing").replaceChildren(...(failing.length ? failing : [el("p", { class: "hint", text: "Nothing is failing." })]));
  const held = data.held_back.map((g) => heldGroup(g, data.allow_retry));
  $("#held").replaceChildren(...(held.length ? held : [el("p", { class: "hint", text: "Nothing is held back." })]));
  $("#groups-badge").textContent = data.failing.length ? String(data.failing.length) : "";
}

function idLinks(model, all, total) {
  const ids = all.slice(0, GROUP_LINKS);
  const list = el("ul", {}, ...ids.map((id) => el("li", {}, el("a", {
    class: "object-link", tabindex: "0", text: `${model} ${id}`,
    on: { click: () => select(`${model}:${id}`), keydown: (e) => e.key === "Enter" && select(`${model}:${id}`) },
  }))));
  return total > ids.length ? [list, el("p", { class: "hint", text: `and ${total - ids.length} more` })] : [list];
}

function failingGroup(group, allowRetry) {
  const node = el(
    "details",
    { class: "group failing", "data-model": group.model, "data-count": String(group.count) },
    el("summary", {}, icon("error"), " ", el("span", { class: "count", text: group.count.toLocaleString("en") }),
      el("span", { class: "model", text: group.model }), ": ", el("span", { class: "message", text: group.message })),
    el("button", { type: "button", class: "action show", on: { click: () => setFilters({ model: group.model, state: "error", q: group.message }) } }, "List them"),
    allowRetry ? el("button", { type: "button", class: "action retry-group", on: { click: () => retryGroup({ model: group.model, message: group.message }) } }, `Retry these ${group.count}`) : null,
    ...idLinks(group.model, group.ids, group.count)
  );
  node.querySelector("span.message").setAttribute("data-message", "");
  return node;
}

function heldGroup(group, allowRetry) {
  const state = STATE_LABELS[group.waits_for_state] || group.waits_for_state;
  const where = { model: group.model, waits_for: group.waits_for_model, state: group.waits_for_state };
  return el(
    "details",
    { class: "group held", "data-model": group.model, "data-count": String(group.count) },
    el("summary", {}, icon("held"), " ", el("span", { class: "count", text: group.count.toLocaleString("en") }),
      `${group.model} wait for ${group.waits_for_count} ${state} ${group.waits_for_model}`),
    el("button", { type: "button", class: "action show", on: { click: () => setFilters({ model: group.model, state: "held", q: "" }) } }, `List held ${group.model}`),
    allowRetry
      ? el("button", { type: "button", class: "action retry-group", on: { click: () => retryGroup(where) } },
          `Retry the ${group.waits_for_count} ${group.waits_for_model} they wait for`)
      : null,
    el("h3", { class: "hint", text: `What they wait for (${group.waits_for_model})` }),
    ...idLinks(group.waits_for_model, group.roots, group.waits_for_count),
    el("h3", { class: "hint", text: `Held back (${group.model})` }),
    ...idLinks(group.model, group.ids, group.count)
  );
}

// `where`: a failure group's model and message, or a held-back group's model, waits_for, state.
async function retryGroup(where) {
  const params = new URLSearchParams(where);
  try {
    await getJSON(`/api/groups/retry?${params}`, writeOptions());
    showError("");
  } catch (error) {
    showError(error.message);
  }
  loadGroups();
}

// --- the service graph ------------------------------------------------------------------------

async function loadGraph() {
  let text;
  try {
    const response = await fetch("/api/graph.svg");
    text = await response.text();
    if (!response.ok) throw new Error(JSON.parse(text).error || `graph: HTTP ${response.status}`);
  } catch (error) {
    showError(error.message);
    return;
  }
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return showError("the graph could not be read");
  // Graphviz writes no script; this is a second line of defence, as is the CSP.
  for (const bad of svg.querySelectorAll("script, foreignObject")) bad.remove();
  for (const node of svg.querySelectorAll("*")) {
    for (const attr of Array.from(node.attributes)) if (/^on/i.test(attr.name)) node.removeAttribute(attr.name);
  }
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "the service's models and their neighbours");
  const graph = document.importNode(svg, true);
  for (const node of graph.querySelectorAll("g.node[id^='model-']")) {
    const model = node.id.slice("model-".length);
    const label = Array.from(node.querySelectorAll("text")).map((t) => t.textContent).join(": ");
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.setAttribute("aria-label", `${label}. List its objects`);
    node.addEventListener("click", () => setFilters({ model, state: "" }));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        setFilters({ model, state: "" });
      }
    });
  }
  $("#graph").replaceChildren(graph);
}

function drawLegend() {
  $("#legend").replaceChildren(
    ...["error", "held", "backing_off", "deferred", "pending", "ok", "none"].map((state) =>
      el("li", { "data-state": state }, el("span", { class: `swatch state-${state}`, "aria-hidden": "true" }),
        state === "none" ? "no objects" : STATE_LABELS[state])
    )
  );
}

// --- the detail pane -------------------------------------------------------------------------

function objectLink(summary) {
  const key = keyOf(summary);
  return el(
    "li",
    {},
    icon(summary.state),
    " ",
    el("a", {
      class: "object-link", "data-key": key, tabindex: "0",
      on: { click: () => select(key), keydown: (e) => e.key === "Enter" && select(key) },
    }, `${summary.model} ${summary.id} ${summary.name}`),
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

function neighbours(title, id, list) {
  return [el("h3", { text: title }), list.length ? el("ul", { id }, ...list.map(objectLink)) : el("p", { text: "nothing" })];
}

function renderDetail(detail) {
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
  ];
  if (detail.allow_retry && o.state !== "ok") {
    parts.push(el("button", { id: "retry", type: "button", class: "action", on: { click: () => retryNow(o) } }, "Retry now"));
  }
  parts.push(
    ...(detail.held_by.length ? neighbours("Held back by", "held-by", detail.held_by) : []),
    ...neighbours("Waits for", "waits-for", detail.waits_for),
    ...neighbours("Waited for by", "waited-by", detail.waited_by)
  );
  if (detail.waited_by_total > detail.waited_by.length) {
    parts.push(el("p", { text: `and ${detail.waited_by_total - detail.waited_by.length} more` }));
  }
  parts.push(
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
    el("h3", { text: "Fields" }),
    definitions(detail.fields)
  );
  $("#detail-body").replaceChildren(...parts);
  openDetail();
}

function openDetail() {
  const pane = $("#detail");
  if (pane.hidden) {
    pane.hidden = false;
    pane.focus({ preventScroll: true });
  }
}

function closeDetail() {
  const key = page.selected;
  page.selected = null;
  $("#detail").hidden = true;
  for (const row of document.querySelectorAll("#objects tbody tr.selected")) row.classList.remove("selected");
  const row = key && $(`#objects tbody tr[data-key="${CSS.escape(key)}"]`);
  if (row) row.focus();
}

async function select(key) {
  page.selected = key;
  for (const row of document.querySelectorAll("#objects tbody tr[data-key]")) {
    row.classList.toggle("selected", row.getAttribute("data-key") === key);
  }
  await showDetail(key);
}

async function showDetail(key) {
  const [model, id] = splitKey(key);
  try {
    const detail = await getJSON(`/api/object/${encodeURIComponent(model)}/${encodeURIComponent(id)}`);
    if (page.selected === key) renderDetail(detail);
  } catch (error) {
    if (page.selected !== key) return;
    $("#detail-body").replaceChildren(el("p", { class: "error", text: error.message }));
    openDetail();
  }
}

async function retryNow(summary) {
  try {
    await getJSON(`/api/object/${encodeURIComponent(summary.model)}/${summary.id}/retry`, writeOptions());
    showError("");
  } catch (error) {
    showError(error.message);
  }
  await showDetail(keyOf(summary));
}

// --- live updates ------------------------------------------------------------------------------

function setLive(state) {
  const node = $("#live");
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
    await refreshView();
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

// Backoffs end without any change in the store: ask again for the rows in view when one is due.
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

async function start() {
  watchControls();
  drawSort();
  drawLegend();
  // A UI started on a big store reads it first (a few seconds): ask again until it answers.
  let seq = null;
  while (seq === null) {
    try {
      seq = await loadModels();
    } catch (error) {
      showError(error.message);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  showError("");
  try {
    await resetList();
    follow(seq);
    loadGroups();
  } catch (error) {
    showError(error.message);
  }
  setInterval(tick, 1000);
  document.body.setAttribute("data-ready", "true");
}

document.addEventListener("DOMContentLoaded", start);
