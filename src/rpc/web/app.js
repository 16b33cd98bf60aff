// piecemeal's web page: the torrents of a running peer, polled from its JSON API once a second.
//
// Plain browser JavaScript, no framework and nothing fetched from elsewhere. The JSON field
// names are those of src/rpc/control.rs. Every string from the API (torrent and file names
// above all) is hostile input: it reaches the page only as textContent or an input's value,
// never as markup.
"use strict";

const TOKEN_KEY = "piecemeal-token";
const TOKEN_HEADER = "X-Piecemeal-Token";
const POLL_MS = 1000;
const NOTICE_MS = 6000;

const STATUS_TEXT = {
  fetching_metadata: "fetching metadata",
  checking: "checking",
  downloading: "downloading",
  seeding: "seeding",
  paused: "paused",
  error: "error",
};

const state = {
  token: null,
  timer: null,
  inFlight: false,
  pollAgain: false,
  rows: new Map(), // torrent id -> { tr, cells }
  names: new Map(), // torrent id -> name, for messages
  detailId: null,
  detailKeys: {}, // last rendered JSON per detail table, so unchanged tables are not rebuilt
  filesDirty: false, // the user ticked boxes not yet applied: polling must not undo them
  limitsFilled: false,
  removeId: null,
  errorFromPoll: false,
  noticeTimer: null,
};

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ---------------------------------------------------------------- units

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function formatBytes(n) {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${value} B`;
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

function formatRate(n) {
  return n > 0 ? `${formatBytes(n)}/s` : "–";
}

function formatEta(secs) {
  if (secs === null || secs === undefined) return "–";
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  const two = (x) => String(x).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

/** Rounded down, so a torrent shows 100% only when it is complete. */
function formatPercent(fraction) {
  if (fraction >= 1) return "100%";
  return `${(Math.floor(Math.max(0, fraction) * 1000) / 10).toFixed(1)}%`;
}

/** A rate as the command line reads it: 500k, 2M, 1.5M (k = 1024), 0 or empty = unlimited. */
function parseRate(text) {
  const t = text.trim();
  if (t === "") return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:\/s)?$/i.exec(t);
  if (!m) throw new Error(`"${t}" is not a rate: write bytes per second like 500k, 2M or 0`);
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(parseFloat(m[1]) * scale);
}

function formatRateInput(n) {
  if (n === 0) return "0";
  if (n % 1024 ** 2 === 0) return `${n / 1024 ** 2}M`;
  if (n % 1024 === 0) return `${n / 1024}k`;
  return String(n);
}

function formatLimits(l) {
  const one = (n) => (n > 0 ? `${formatBytes(n)}/s` : "unlimited");
  return `down ${one(l.download)}, up ${one(l.upload)}`;
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One call; resolves to the reply's JSON, rejects with the API's own `error` message. */
async function api(method, path, body, contentType = "application/json") {
  const headers = { [TOKEN_HEADER]: state.token };
  if (body !== undefined) headers["Content-Type"] = contentType;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError(0, `cannot reach the peer (${e.message}): is it still running?`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page?): the status line says enough.
  }
  if (!resp.ok) {
    const why = data && typeof data.error === "string" ? data.error : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, why);
  }
  return data;
}

const torrentPath = (id, rest = "") => `/api/torrents/${encodeURIComponent(id)}${rest}`;

// ---------------------------------------------------------------- messages

function showError(message, fromPoll = false) {
  $("error-text").textContent = message;
  $("error").hidden = false;
  state.errorFromPoll = fromPoll;
}

function hideError() {
  $("error").hidden = true;
  state.errorFromPoll = false;
}

function notice(message) {
  const n = $("notice");
  n.textContent = message;
  n.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => (n.hidden = true), NOTICE_MS);
}

function handleError(e, fromPoll = false) {
  if (e instanceof ApiError && e.status === 401) {
    forgetToken();
    askForToken(`The peer refused the token (${e.message}). Paste the token it printed.`);
    return;
  }
  if (!(e instanceof ApiError)) console.error(e);
  showError(e.message, fromPoll);
}

// ---------------------------------------------------------------- the token

/** From `#token=...` (then kept, and taken off the address bar), else from earlier. */
function readToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    const token = decodeURIComponent(m[1]);
    storeToken(token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage switched off: the token field asks each time
  }
}

function storeToken(token) {
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Works for this visit without it.
  }
}

function forgetToken() {
  state.token = null;
  clearTimeout(state.timer);
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing kept.
  }
}

function askForToken(why) {
  $("app").hidden = true;
  $("token-form").hidden = false;
  if (why) showError(why);
  $("token-input").focus();
}

function start(token) {
  state.token = token;
  $("token-form").hidden = true;
  $("app").hidden = false;
  refreshNow();
}

// ---------------------------------------------------------------- polling

function refreshNow() {
  clearTimeout(state.timer);
  if (state.inFlight) state.pollAgain = true;
  else poll();
}

async function poll() {
  state.inFlight = true;
  try {
    const [list, session] = await Promise.all([api("GET", "/api/torrents"), api("GET", "/api/session")]);
    renderSession(session);
    renderList(list);
    if (state.detailId) await refreshDetail();
    if (state.errorFromPoll) hideError();
  } catch (e) {
    handleError(e, true);
  } finally {
    state.inFlight = false;
    if (state.token) {
      const again = state.pollAgain;
      state.pollAgain = false;
      state.timer = setTimeout(poll, again ? 0 : POLL_MS);
    }
  }
}

function renderSession(s) {
  setText(
    $("session"),
    `piecemeal ${s.version} · peer on ${s.listen} · ↓ ${formatRate(s.download_rate)} · ` +
      `↑ ${formatRate(s.upload_rate)} · ${s.torrents} torrent${s.torrents === 1 ? "" : "s"} · ` +
      `limits: ${formatLimits(s.limits)}`,
  );
  document.title = `↓ ${formatRate(s.download_rate)} ↑ ${formatRate(s.upload_rate)} – piecemeal`;
  if (!state.limitsFilled) {
    fillLimits($("limits-form"), s.limits);
    state.limitsFilled = true;
  }
}

function fillLimits(form, limits) {
  form.elements.download.value = formatRateInput(limits.download);
  form.elements.upload.value = formatRateInput(limits.upload);
}

// ---------------------------------------------------------------- the list

function makeRow(id) {
  const cells = {
    name: el("button", { type: "button", class: "link", "data-action": "detail", "data-testid": "torrent-name" }),
    status: el("td", { "data-testid": "torrent-status" }),
    fill: el("div", { class: "fill" }),
    percent: el("span", { class: "percent", "data-testid": "torrent-progress" }),
    size: el("td", { class: "num" }),
    down: el("td", { class: "num", "data-testid": "torrent-down" }),
    up: el("td", { class: "num", "data-testid": "torrent-up" }),
    peers: el("td", { class: "num", "data-testid": "torrent-peers" }),
    eta: el("td", { class: "num", "data-testid": "torrent-eta" }),
    ratio: el("td", { class: "num", "data-testid": "torrent-ratio" }),
    pause: actionButton("pause", "Pause"),
    resume: actionButton("resume", "Resume"),
  };
  const tr = el(
    "tr",
    { "data-id": id, "data-testid": "torrent-row" },
    el("td", { class: "name" }, cells.name),
    cells.status,
    el("td", { class: "progress" }, el("div", { class: "bar" }, cells.fill), cells.percent),
    cells.size,
    cells.down,
    cells.up,
    cells.peers,
    cells.eta,
    cells.ratio,
    el(
      "td",
      { class: "actions" },
      cells.pause,
      cells.resume,
      actionButton("verify", "Verify"),
      actionButton("remove", "Remove"),
    ),
  );
  return { tr, cells };
}

function actionButton(action, label) {
  return el("button", { type: "button", "data-action": action, "data-testid": `torrent-${action}`, text: label });
}

function renderList(list) {
  const tbody = $("torrent-rows");
  const seen = new Set();
  list.forEach((t, i) => {
    seen.add(t.id);
    state.names.set(t.id, t.name);
    let row = state.rows.get(t.id);
    if (!row) {
      row = makeRow(t.id);
      state.rows.set(t.id, row);
    }
    // Moving a row only when it is out of place keeps a focused button focused.
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    updateRow(row, t);
  });
  for (const [id, row] of state.rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      state.rows.delete(id);
    }
  }
  $("empty").hidden = list.length > 0;
}

function updateRow({ tr, cells }, t) {
  tr.dataset.status = t.status;
  setText(cells.name, t.name);
  cells.name.title = t.id;
  const status = STATUS_TEXT[t.status] || t.status;
  setText(cells.status, t.status === "error" && t.error ? `error: ${t.error}` : status);
  cells.fill.style.width = `${Math.min(100, Math.max(0, t.progress * 100))}%`;
  setText(cells.percent, formatPercent(t.progress));
  setText(cells.size, t.size > 0 ? formatBytes(t.size) : "–");
  setText(cells.down, formatRate(t.download_rate));
  setText(cells.up, formatRate(t.upload_rate));
  setText(cells.peers, String(t.peers));
  setText(cells.eta, formatEta(t.eta_secs));
  setText(cells.ratio, t.ratio.toFixed(2));
  cells.pause.hidden = t.status === "paused";
  cells.resume.hidden = t.status !== "paused" && t.status !== "error";
}

async function onListClick(ev) {
  const button = ev.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest("tr").dataset.id;
  const action = button.dataset.action;
  if (action === "detail") return openDetail(id);
  if (action === "remove") return askRemove(id);
  button.disabled = true;
  try {
    await api("POST", torrentPath(id, `/${action}`));
    hideError();
  } catch (e) {
    handleError(e);
  } finally {
    button.disabled = false;
    refreshNow();
  }
}

// ---------------------------------------------------------------- adding

async function onAdd(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const files = [...$("add-file").files];
  const magnet = $("add-magnet").value.trim();
  const paused = $("add-paused").checked;
  if (files.length === 0 && !magnet) {
    showError("Choose a .torrent file or paste a magnet link first.");
    return;
  }
  const added = [];
  $("add-submit").disabled = true;
  try {
    for (const file of files) {
      const bytes = await file.arrayBuffer();
      const query = paused ? "?paused=true" : "";
      try {
        added.push(await api("POST", `/api/torrents${query}`, bytes, "application/x-bittorrent"));
      } catch (e) {
        throw new ApiError(e.status, `${file.name}: ${e.message}`);
      }
    }
    if (magnet) added.push(await api("POST", "/api/torrents", JSON.stringify({ magnet, paused })));
    form.reset();
    hideError();
  } catch (e) {
    handleError(e);
  } finally {
    $("add-submit").disabled = false;
    if (added.length) notice(`Added ${added.map((t) => t.name).join(", ")}.`);
    refreshNow();
  }
}

// ---------------------------------------------------------------- removing

function askRemove(id) {
  state.removeId = id;
  $("remove-name").textContent = state.names.get(id) || id;
  $("remove-delete-data").checked = false;
  $("remove-dialog").showModal();
}

async function onRemoveConfirm() {
  const id = state.removeId;
  const deleteData = $("remove-delete-data").checked;
  $("remove-dialog").close();
  try {
    await api("DELETE", torrentPath(id, deleteData ? "?delete_data=true" : ""));
    if (state.detailId === id) closeDetail();
    notice(`Removed ${state.names.get(id) || id}${deleteData ? " and its files" : ""}.`);
    hideError();
  } catch (e) {
    handleError(e);
  }
  refreshNow();
}

// ---------------------------------------------------------------- one torrent

function openDetail(id) {
  state.detailId = id;
  state.detailKeys = {};
  state.filesDirty = false;
  $("detail").hidden = false;
  refreshNow();
  $("detail").scrollIntoView({ block: "start" });
}

function closeDetail() {
  state.detailId = null;
  $("detail").hidden = true;
}

async function refreshDetail() {
  const id = state.detailId;
  let d;
  try {
    d = await api("GET", torrentPath(id));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return closeDetail(); // removed meanwhile
    throw e;
  }
  if (state.detailId === id) renderDetail(d);
}

/** Rebuilds one table's body only when its data changed since the last poll. */
function renderTable(key, tbody, items, makeRowFor, emptyText) {
  const json = JSON.stringify(items);
  if (state.detailKeys[key] === json) return;
  state.detailKeys[key] = json;
  const columns = tbody.closest("table").tHead.rows[0].cells.length;
  tbody.replaceChildren(
    ...(items.length ? items.map(makeRowFor) : [el("tr", {}, el("td", { colspan: columns, class: "none", text: emptyText }))]),
  );
}

function renderDetail(d) {
  setText($("detail-title"), d.name);
  setText($("detail-id"), d.id);
  if ($("detail-magnet").value !== d.magnet) $("detail-magnet").value = d.magnet;
  drawPieces($("pieces"), d.pieces, d.piece_count);
  if (!state.filesDirty) {
    renderTable("files", $("files"), d.files, fileRow, "metadata not known yet");
  }
  renderTable("peers", $("peers"), d.peer_list, peerRow, "no peers connected");
  renderTable("trackers", $("trackers"), d.trackers, trackerRow, "no trackers");
  if (!state.detailKeys.limits) {
    fillLimits($("torrent-limits-form"), d.limits);
    state.detailKeys.limits = true;
  }
}

function fileRow(f) {
  const box = el("input", { type: "checkbox", "data-index": String(f.index), "data-testid": "file-wanted" });
  box.checked = f.wanted;
  return el(
    "tr",
    {},
    el("td", {}, box),
    el("td", { class: "num", text: String(f.index) }),
    el("td", { class: "path", text: f.path }),
    el("td", { class: "num", text: formatBytes(f.length) }),
    el("td", { class: "num", text: formatPercent(f.length ? f.done / f.length : 1) }),
  );
}

function peerRow(p) {
  return el(
    "tr",
    {},
    el("td", { text: p.addr }),
    el("td", { text: p.client || "?" }),
    el("td", { class: "num", text: formatPercent(p.progress) }),
    el("td", { class: "num", text: formatRate(p.download_rate) }),
    el("td", { class: "num", text: formatRate(p.upload_rate) }),
    el("td", { class: "num", text: formatBytes(p.downloaded) }),
    el("td", { class: "num", text: formatBytes(p.uploaded) }),
  );
}

function trackerRow(t) {
  return el(
    "tr",
    {},
    el("td", { class: "path", text: t.url }),
    el("td", { class: "num", text: t.peers === null ? "–" : String(t.peers) }),
    el("td", { class: "tracker-error", text: t.error || "" }),
  );
}

/**
 * The verified pieces as a strip: each pixel column covers one piece or several, and is as
 * dark as the share of them that is done.
 */
function drawPieces(canvas, hex, count) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.floor(canvas.clientWidth * dpr));
  const height = Math.max(1, Math.floor(canvas.clientHeight * dpr));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  const styles = getComputedStyle(canvas);
  ctx.globalAlpha = 1;
  ctx.fillStyle = styles.getPropertyValue("--missing").trim() || "#e3e6ea";
  ctx.fillRect(0, 0, width, height);
  // prefix[i] = verified pieces before piece i
  const prefix = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) {
    const byte = parseInt(hex.substr((i >> 3) * 2, 2), 16) || 0;
    prefix[i + 1] = prefix[i] + ((byte >> (7 - (i & 7))) & 1);
  }
  ctx.fillStyle = styles.getPropertyValue("--done").trim() || "#2b7a4b";
  for (let x = 0; x < width && count > 0; x++) {
    const from = Math.floor((x * count) / width);
    const to = Math.max(from + 1, Math.floor(((x + 1) * count) / width));
    const share = (prefix[to] - prefix[from]) / (to - from);
    if (share > 0) {
      ctx.globalAlpha = share;
      ctx.fillRect(x, 0, 1, height);
    }
  }
  setText($("pieces-count"), count ? `${prefix[count]} of ${count} verified` : "(metadata not known yet)");
}

async function onFilesApply(ev) {
  ev.preventDefault();
  const id = state.detailId;
  const boxes = [...$("files").querySelectorAll("input[type=checkbox]")];
  const wanted = boxes.filter((b) => b.checked).map((b) => Number(b.dataset.index));
  try {
    await api("PUT", torrentPath(id, "/files"), JSON.stringify({ wanted }));
    state.filesDirty = false;
    state.detailKeys.files = null;
    notice(`Fetching ${wanted.length} of ${boxes.length} files of ${state.names.get(id) || id}.`);
    hideError();
  } catch (e) {
    handleError(e);
  }
  refreshNow();
}

// ---------------------------------------------------------------- limits

async function onLimits(ev, path, what) {
  ev.preventDefault();
  const form = ev.currentTarget;
  let limits;
  try {
    limits = { download: parseRate(form.elements.download.value), upload: parseRate(form.elements.upload.value) };
  } catch (e) {
    showError(e.message);
    return;
  }
  try {
    await api("PUT", path(), JSON.stringify(limits));
    fillLimits(form, limits);
    notice(`${what}: ${formatLimits(limits)}.`);
    hideError();
  } catch (e) {
    handleError(e);
  }
  refreshNow();
}

// ---------------------------------------------------------------- start

function main() {
  $("error-close").addEventListener("click", hideError);
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    storeToken(token);
    hideError();
    start(token);
  });
  $("add-form").addEventListener("submit", onAdd);
  $("torrent-rows").addEventListener("click", onListClick);
  $("remove-confirm").addEventListener("click", onRemoveConfirm);
  $("remove-cancel").addEventListener("click", () => $("remove-dialog").close());
  $("detail-close").addEventListener("click", closeDetail);
  $("files").addEventListener("change", () => (state.filesDirty = true));
  $("files-form").addEventListener("submit", onFilesApply);
  $("limits-form").addEventListener("submit", (ev) => onLimits(ev, () => "/api/limits", "Limits for all torrents"));
  $("torrent-limits-form").addEventListener("submit", (ev) =>
    onLimits(ev, () => torrentPath(state.detailId, "/limits"), "Limits for this torrent"),
  );
  const token = readToken();
  if (token) start(token);
  else askForToken();
}

main();
