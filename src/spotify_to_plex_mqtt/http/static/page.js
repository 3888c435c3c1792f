// The page of spotify-to-plex-mqtt: reads the JSON routes, follows /events, no framework.
// Every value from the service is put into the page as text (textContent), never as HTML.

const TOKEN_KEY = "spotify-to-plex-mqtt.api-token";
const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  library: { items: [], categories: [], kinds: [], synced: false },
  etags: {},
  category: "", kind: "", query: "", page: 0,
  filtered: [],
  rendered: false,
  socket: null, retries: 0,
};

class AuthError extends Error {}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function request(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { ...options, headers, cache: "no-cache" });
  if (response.status === 401) throw new AuthError("the API token is missing or wrong");
  return response;
}

// The JSON of `path`, or null when it is as last time (same ETag): nothing to redraw.
async function load(path) {
  const response = await request(path);
  if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}`);
  const etag = response.headers.get("ETag");
  if (etag && state.etags[path] === etag) return null;
  const data = await response.json();
  state.etags[path] = etag;
  return data;
}

// -- views --------------------------------------------------------------------------------

function showView() {
  const view = (location.hash || "#library").slice(1);
  const known = ["library", "skipped", "health"].includes(view) ? view : "library";
  for (const name of ["library", "skipped", "health"]) $(`view-${name}`).hidden = name !== known;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === known) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function setLibrary(data) {
  for (const item of data.items) item.search = item.name.toLocaleLowerCase();
  state.library = data;
  const categories = new Set(data.categories.map((c) => c.name));
  if (state.category && !categories.has(state.category)) state.category = "";
  $("library-count").textContent = data.synced ? `(${data.count})` : "";
  const kind = $("kind");
  const chosen = kind.value;
  kind.replaceChildren(el("option", { value: "", text: "All kinds" }),
    ...data.kinds.map((k) => el("option", { value: k.name, text: `${kindName(k.name)} (${k.count})` })));
  kind.value = data.kinds.some((k) => k.name === chosen) ? chosen : "";
  state.kind = kind.value;
  renderCategories();
  filter(false);
}

function kindName(kind) {
  return { "spotify-playlist": "Spotify playlist", "spotify-album": "Spotify album",
    "plex-media": "Plex item" }[kind] || kind;
}

function renderCategories() {
  const { categories, count } = state.library;
  const chip = (name, label, n) => el("button", {
    type: "button", "aria-pressed": String(state.category === name), "data-category": name,
    onclick: () => { state.category = name; renderCategories(); filter(true); },
  }, `${label} `, el("span", { class: "count", text: `${n}` }));
  $("categories").replaceChildren(chip("", "All", count || 0),
    ...categories.map((c) => chip(c.name, c.name, c.count)));
}

function filter(resetPage) {
  const query = state.query.trim().toLocaleLowerCase();
  state.filtered = state.library.items.filter((item) =>
    (!state.category || item.category === state.category)
    && (!state.kind || item.kind === state.kind)
    && (!query || item.search.includes(query)));
  if (resetPage) state.page = 0;
  renderItems();
}

function renderItems() {
  const pages = Math.max(1, Math.ceil(state.filtered.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const shown = state.filtered.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  $("items").replaceChildren(...shown.map(itemNode));
  const total = state.library.items.length;
  $("result-count").textContent = `${state.filtered.length} of ${total} items`;
  $("page-info").textContent = `Page ${state.page + 1} of ${pages}`;
  document.querySelector(".pager").hidden = pages === 1;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
  const empty = $("library-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = state.library.synced
    ? (total ? "No item matches." : "No item is published yet: label playlists or albums in Spotify-to-Plex.")
    : "Waiting for the first sync…";
  if (!state.rendered && state.library.synced) {
    state.rendered = true;
    performance.mark("first-render");
  }
}

function itemNode(item) {
  const copy = el("button", { type: "button", class: "secondary",
    "aria-label": `Copy the media_content_id of ${item.name}`,
    onclick: (event) => copyText(item.media_content_id, event.currentTarget) }, "Copy id");
  const plex = item.plex_web ? el("a", { class: "button secondary", href: item.plex_web,
    target: "_blank", rel: "noopener noreferrer", "aria-label": `Open ${item.name} in Plex Web` },
  "Open in Plex") : null;
  return el("li", { class: "item", "data-id": item.id, "data-category": item.category },
    el("img", { src: item.artwork || "/static/placeholder.svg", alt: "", loading: "lazy",
      width: "64", height: "64" }),
    el("div", {},
      el("div", { class: "name", text: item.name }),
      el("div", { class: "meta" }, `${kindName(item.kind)} · `,
        el("span", { class: "category", text: item.category })),
      el("div", { class: "ids" },
        el("div", {}, el("span", { text: "Entity" }), el("code", { class: "entity-id", text: item.entity_id })),
        el("div", {}, el("span", { text: "media_content_id" }),
          el("code", { class: "content-id", text: item.media_content_id }))),
      el("div", { class: "actions" }, copy, plex)));
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain http on another host is not a secure context: no Clipboard API there.
    const area = el("textarea", { class: "visually-hidden" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy id"; }, 1500);
}

function setSkipped(data) {
  $("skipped-count").textContent = data.synced ? `(${data.count})` : "";
  $("skipped-table").hidden = data.items.length === 0;
  $("skipped-empty").hidden = !data.synced || data.items.length > 0;
  $("skipped-rows").replaceChildren(...data.items.map((s) => el("tr", { "data-id": s.id },
    el("td", { "data-label": "Item" }, el("strong", { text: s.name }), el("br"), el("code", { text: s.id })),
    el("td", { "data-label": "Kind", text: kindName(s.kind) }),
    el("td", { "data-label": "Why", class: "reason", text: s.reason }),
    el("td", { "data-label": "What to do", class: "fix", text: s.fix }))));
  $("files").replaceChildren(...data.files.map((f) => {
    const more = f.malformed_count - f.malformed.length;
    return el("div", { class: "file", "data-file": f.file },
      el("h3", { text: f.file }),
      f.error ? el("p", { class: "error", text: f.error })
        : el("p", { class: "ok", text: "Read well." }),
      f.malformed_count ? el("details", {},
        el("summary", { text: `${f.malformed_count} malformed entr${f.malformed_count === 1 ? "y" : "ies"} skipped` }),
        el("ul", {}, ...f.malformed.map((w) => el("li", { text: w })),
          more > 0 ? el("li", { text: `… and ${more} more` }) : null)) : null);
  }));
}

function when(at) {
  return at ? new Date(at * 1000).toLocaleString() : "never";
}

function setStatus(status) {
  const errors = Object.entries(status.file_errors || {});
  const problems = $("problems");
  const lines = errors.map(([file, error]) => el("p", { "data-file": file }, el("strong", { text: "Input problem: " }), error));
  if (!status.connected) lines.unshift(el("p", { text: "Not connected to the MQTT broker: Home Assistant gets no updates." }));
  problems.replaceChildren(...lines);
  problems.hidden = lines.length === 0;
  $("h-broker").replaceChildren(el("span", { class: status.connected ? "ok" : "error",
    text: status.connected ? "Connected" : "Not connected" }), ` to ${status.broker || "the broker"}`);
  const plex = status.plex || {};
  $("h-plex").replaceChildren(plex.error ? el("span", { class: "error", text: plex.error })
    : el("span", { class: plex.configured ? "ok" : "muted",
      text: plex.configured ? "Configured: artwork and Plex links on" : "Not configured: no artwork" }));
  const running = status.sync && status.sync.running;
  $("h-sync").textContent = running ? `Sync #${running.id} running (${running.reasons.join(", ")})`
    : `Last finished: ${when(status.last_sync && status.last_sync.at)}`;
  $("file-rows").replaceChildren(...Object.entries(status.files || {}).map(([file, f]) =>
    el("tr", { "data-file": file }, el("td", {}, el("code", { text: file })),
      el("td", { class: f.state === "error" ? "error" : f.state === "ok" ? "ok" : "muted", text: f.state }),
      el("td", { text: f.last_error || "" }))));
}

function setActivity(data) {
  const plexError = $("h-plex-error");
  plexError.textContent = data.plex.last_error || "";
  plexError.hidden = !data.plex.last_error;
  const ha = data.homeassistant;
  $("h-ha").textContent = ha.births
    ? `${ha.births} birth message${ha.births === 1 ? "" : "s"} seen, the last ${when(ha.last[0])}`
    : "No birth message seen since the start";
  const n = (v) => (v === null || v === undefined ? "–" : String(v));
  $("history-rows").replaceChildren(...data.syncs.map((s) => el("tr", { "data-sync": String(s.id) },
    el("td", { text: when(s.at) }), el("td", { class: "trigger", text: s.trigger.join(", ") }),
    el("td", { class: s.outcome === "failed" || s.error ? "error" : "ok", text: s.error ? `${s.outcome}: ${s.error}` : s.outcome }),
    el("td", { text: n(s.entities) }), el("td", { text: n(s.published) }), el("td", { text: n(s.removed) }),
    el("td", { text: n(s.unchanged) }), el("td", { text: n(s.skipped) }),
    el("td", { text: s.duration === null ? "–" : `${s.duration.toFixed(2)} s` }))));
}

// -- data and live updates -------------------------------------------------------------------

const loaders = {
  status: async () => { const d = await load("/status"); if (d) setStatus(d); },
  library: async () => { const d = await load("/library"); if (d) setLibrary(d); },
  skipped: async () => { const d = await load("/skipped"); if (d) setSkipped(d); },
  activity: async () => { const d = await load("/activity"); if (d) setActivity(d); },
};

let pending = new Set();
let timer = null;

function refresh(...names) {
  for (const name of names) pending.add(name);
  if (timer === null) timer = setTimeout(flush, 50);
}

async function flush() {
  const names = [...pending];
  pending = new Set();
  timer = null;
  try {
    await Promise.all(names.map((name) => loaders[name]()));
  } catch (error) {
    if (error instanceof AuthError) return askToken("The API token is no longer accepted.");
    $("notice").textContent = `Could not refresh: ${error.message}`;
  }
}

function onEvent(event) {
  switch (event.event) {
    case "sync_finished": case "sync_failed":
      refresh("library", "skipped", "activity", "status"); break;
    case "file_error": case "file_recovered":
      refresh("skipped", "status"); break;
    case "homeassistant_online":
      refresh("activity"); break;
    default:
      refresh("status");
  }
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function setLive(live, text) {
  const pill = $("live");
  pill.textContent = text;
  pill.className = `pill ${live ? "live" : "down"}`;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // A browser's WebSocket cannot send an Authorization header: the token rides as a
  // subprotocol, which the service checks like the header.
  const protocols = ["spotify-to-plex-mqtt"];
  if (state.token) protocols.push(`bearer.${base64url(state.token)}`);
  const socket = new WebSocket(`${scheme}//${location.host}/events`, protocols);
  state.socket = socket;
  socket.onopen = () => {
    state.retries = 0;
    setLive(true, "Live");
    refresh("library", "skipped", "activity", "status"); // what happened while away
  };
  socket.onmessage = (message) => onEvent(JSON.parse(message.data));
  socket.onclose = () => {
    if (state.socket !== socket) return;
    setLive(false, "Reconnecting…");
    const delay = Math.min(5000, 250 * 2 ** state.retries++);
    setTimeout(connect, delay);
  };
}

async function syncNow() {
  const button = $("sync-now");
  button.disabled = true;
  try {
    const response = await request("/sync", { method: "POST" });
    const body = await response.json();
    $("notice").textContent = response.ok ? `Sync #${body.id} requested.` : `Sync refused: ${body.error}`;
  } catch (error) {
    if (error instanceof AuthError) askToken("The API token is no longer accepted.");
    else $("notice").textContent = `Sync refused: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function askToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  if (state.socket) { const s = state.socket; state.socket = null; s.close(); }
  for (const name of ["library", "skipped", "health"]) $(`view-${name}`).hidden = true;
  document.body.className = "login-needed";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function start() {
  try {
    // The library first: with API_TOKEN it needs the token, and nothing else is drawn
    // before it answered (/status itself is open, as in the API).
    await loaders.library();
    await Promise.all([loaders.skipped(), loaders.activity(), loaders.status()]);
  } catch (error) {
    if (error instanceof AuthError) return askToken(state.token ? "That token is not right." : "");
    $("notice").textContent = `Could not load: ${error.message}`;
  }
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  $("login").hidden = true;
  document.body.className = "ready";
  showView();
  connect();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value;
  $("token").value = "";
  state.etags = {};
  start();
});
$("search").addEventListener("input", (event) => { state.query = event.target.value; filter(true); });
$("kind").addEventListener("change", (event) => { state.kind = event.target.value; filter(true); });
$("prev").addEventListener("click", () => { state.page -= 1; renderItems(); });
$("next").addEventListener("click", () => { state.page += 1; renderItems(); });
$("sync-now").addEventListener("click", syncNow);
window.addEventListener("hashchange", showView);
start();
