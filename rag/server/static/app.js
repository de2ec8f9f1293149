// mmrag web page: ask with a streamed answer, clickable citations, page thumbnails with the
// cited boxes highlighted, the route and why, documents with ingest progress. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem("mmrag-token") || "", hits: [], citations: [], polling: null };

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("token-button").hidden = false;
    throw new Error("this server needs an API token: click 'API token'");
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

const imageCache = new Map();
async function imageSrc(url) {
  if (!imageCache.has(url)) {
    imageCache.set(url, api(url).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
  }
  return imageCache.get(url);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function setStatus(text) { $("status").textContent = text; }

// -- page images with boxes ---------------------------------------------------------------
function pageView(hit, boxes) {
  const wrap = el("div", { class: "page" });
  const img = el("img", { alt: `${hit.source} page ${hit.page}` });
  wrap.append(img);
  if (hit.image_url) imageSrc(hit.image_url).then((src) => { img.src = src; }).catch((e) => setStatus(e.message));
  const w = hit.page_width, h = hit.page_height;
  if (w && h) {
    for (const { bbox, cited } of boxes) {
      if (!bbox) continue;
      const [x0, y0, x1, y1] = bbox;
      const box = el("div", { class: cited ? "box cited" : "box" });
      Object.assign(box.style, {
        left: (100 * x0 / w) + "%", top: (100 * y0 / h) + "%",
        width: (100 * (x1 - x0) / w) + "%", height: (100 * (y1 - y0) / h) + "%",
      });
      wrap.append(box);
    }
  }
  return wrap;
}

function citedBoxes(hit) {
  return state.citations.filter((c) => c.doc_id === hit.doc_id && c.page === hit.page)
    .map((c) => ({ bbox: c.bbox, cited: true }));
}

function renderHits() {
  const grid = $("hits");
  grid.replaceChildren();
  state.hits.forEach((hit, i) => {
    const cited = citedBoxes(hit);
    const boxes = cited.length ? cited : [{ bbox: hit.bbox, cited: false }];
    const label = hit.label && hit.label !== String(hit.page) ? ` (printed ${hit.label})` : "";
    const card = el("figure", { class: "hit", "data-doc": hit.doc_id, "data-page": String(hit.page), onclick: () => openViewer(hit, boxes) },
      pageView(hit, boxes),
      el("figcaption", {}, `${i + 1}. ${hit.source} p.${hit.page}${label} · ${hit.corpus} · ${hit.score.toFixed(3)}`));
    grid.append(card);
  });
}

function renderRoute(route) {
  if (!route) return;
  $("route").hidden = false;
  $("route-summary").textContent = Object.entries(route.weights).map(([c, w]) => `${c} ${w.toFixed(2)}`).join(", ") + ` (${route.router})`;
  $("route-reason").textContent = route.reason;
}

function openViewer(hit, boxes) {
  $("viewer-title").textContent = `${hit.source}, page ${hit.page}`;
  $("viewer-page").replaceChildren(pageView(hit, boxes));
  if (!$("viewer").open) $("viewer").showModal();
}

function focusCitation(c) {
  document.querySelectorAll(".hit.focus").forEach((n) => n.classList.remove("focus"));
  const card = document.querySelector(`.hit[data-doc="${c.doc_id}"][data-page="${c.page}"]`);
  if (card) { card.classList.add("focus"); card.scrollIntoView({ block: "nearest" }); }
  const hit = state.hits.find((h) => h.doc_id === c.doc_id && h.page === c.page);
  if (hit) openViewer(hit, [{ bbox: c.bbox, cited: true }]);
}

function renderAnswer(data) {
  state.citations = data.citations || [];
  const byMarker = new Map(state.citations.map((c) => [c.marker, c]));
  const out = $("answer");
  out.replaceChildren();
  for (const part of data.answer.split(/(\[\d+\])/)) {
    const m = part.match(/^\[(\d+)\]$/);
    const c = m && byMarker.get(Number(m[1]));
    out.append(c ? el("a", { class: "cite", href: "#", title: `${c.source} p.${c.page}`, onclick: (e) => { e.preventDefault(); focusCitation(c); } }, part) : part);
  }
  $("citations").replaceChildren(...state.citations.map((c) =>
    el("li", { value: String(c.marker), onclick: () => focusCitation(c) }, `${c.source}, page ${c.page}` + (c.bbox ? `, box [${c.bbox.map(Math.round).join(", ")}]` : ", whole page"))));
  if (data.hits) state.hits = data.hits;
  renderRoute(data.route);
  renderHits();
}

// -- asking (server-sent events over fetch) ---------------------------------------------------
async function ask(question) {
  $("ask-button").disabled = true;
  $("answer").textContent = "";
  $("citations").replaceChildren();
  state.citations = [];
  setStatus("searching…");
  try {
    const response = await api("/api/ask/stream", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ question }),
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        handleEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (e) {
    setStatus("error: " + e.message);
  } finally {
    $("ask-button").disabled = false;
  }
}

function handleEvent(block) {
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  const payload = data ? JSON.parse(data) : {};
  if (event === "search") {
    state.hits = payload.hits; renderRoute(payload.route); renderHits(); setStatus("answering…");
  } else if (event === "token") {
    $("answer").append(payload.text);
  } else if (event === "answer") {
    renderAnswer(payload);
    const t = payload.timings_ms || {};
    setStatus(`${payload.citations.length} citations · ${payload.generator} · ${Math.round(t.total || 0)} ms retrieval`);
  } else if (event === "error") {
    setStatus("error: " + payload.error);
  }
}

// -- documents and ingest progress ----------------------------------------------------------------
async function loadDocuments() {
  const docs = (await (await api("/api/documents")).json()).documents;
  $("documents").replaceChildren(...docs.map((d) => el("li", {},
    el("span", { title: d.doc_id }, `${d.name} · ${d.pages} p.`),
    el("button", { type: "button", title: "delete", onclick: () => removeDocument(d) }, "×"))));
  if (!docs.length) $("documents").append(el("li", { class: "muted" }, "no documents yet: upload PDFs or images"));
  try {
    const info = await (await api("/api/info")).json();
    $("kb-info").textContent = `${info.documents} documents · ${info.pages} pages · ${info.store} store`;
  } catch (e) { $("kb-info").textContent = e.message; }
}

async function removeDocument(d) {
  if (!confirm(`Delete ${d.name} from the knowledge base?`)) return;
  try { await api("/api/documents/" + encodeURIComponent(d.doc_id), { method: "DELETE" }); } catch (e) { setStatus(e.message); }
  loadDocuments();
}

async function loadJobs() {
  const jobs = (await (await api("/api/jobs")).json()).jobs.slice(-5);
  $("jobs").replaceChildren(...jobs.map((j) => el("li", { class: "job", "data-state": j.state },
    `${j.id}: ${j.state} ${j.done}/${j.total}`,
    el("progress", { max: String(j.total), value: String(j.done) }),
    ...j.files.map((f) => el("div", { class: "muted" }, `${f.name}: ${f.state}${f.error ? " — " + f.error : ""}`)))));
  const running = jobs.some((j) => j.state === "queued" || j.state === "running");
  if (!running && state.polling) { clearInterval(state.polling); state.polling = null; loadDocuments(); }
  if (running && !state.polling) state.polling = setInterval(() => loadJobs().catch((e) => setStatus(e.message)), 1000);
}

async function upload(files) {
  const body = new FormData();
  for (const f of files) body.append("files", f, f.name);
  try { await api("/api/documents", { method: "POST", body }); await loadJobs(); } catch (e) { setStatus("upload: " + e.message); }
}

// -- wiring -------------------------------------------------------------------------------------------
$("ask-form").addEventListener("submit", (e) => { e.preventDefault(); const q = $("question").value.trim(); if (q) ask(q); });
$("upload-form").addEventListener("submit", (e) => { e.preventDefault(); const f = $("upload-files").files; if (f.length) upload(f); });
$("token-button").addEventListener("click", () => {
  const t = prompt("API token (kept in this browser's local storage)", state.token);
  if (t !== null) { state.token = t.trim(); localStorage.setItem("mmrag-token", state.token); init(); }
});

function init() {
  loadDocuments().catch((e) => setStatus(e.message));
  loadJobs().catch(() => {});
}
init();
