// mmrag web page: the answer first (markdown tables as tables, clickable citation markers), its
// sources with crops of the cited boxes, "why these results" folded away, then the pages found;
// documents with page-by-page ingest progress; example questions while the box is empty.
// No build step; untrusted text only ever goes through textContent / text nodes.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem("mmrag-token") || "", hits: [], citations: [], polling: null, asked: false, history: [] };
// earlier turns sent with a question (the server uses at most the last 3)
const HISTORY_SENT = 10;

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

/** "1:15", "1:02:05": seconds into a video or audio file. */
function clock(seconds) {
  const t = Math.floor(seconds), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** "strucplot.pdf · page 12 (printed 10)": the physical page, and the printed label when it differs;
 *  "talk.mp4 · 0:12–0:41 (frame 3)": a video's or audio's time span and its page (a frame). */
function pageName(x) {
  if (x.start != null && x.end != null) {
    return `${x.source} · ${clock(x.start)}–${clock(Math.ceil(x.end))} (${x.image_url || x.image_path ? "frame" : "part"} ${x.page})`;
  }
  const printed = x.label && x.label !== String(x.page) ? ` (printed ${x.label})` : "";
  return `${x.source} · page ${x.page}${printed}`;
}

function loadImage(img, url) {
  if (url) imageSrc(url).then((src) => { img.src = src; }).catch((e) => setStatus(e.message));
}

// -- page images with boxes ---------------------------------------------------------------
function pageView(hit, boxes) {
  const wrap = el("div", { class: "page" });
  const img = el("img", { alt: pageName(hit) });
  wrap.append(img);
  loadImage(img, hit.image_url);
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
  $("hits-title").hidden = !state.hits.length;
  state.hits.forEach((hit, i) => {
    const cited = citedBoxes(hit);
    const boxes = cited.length ? cited : [{ bbox: hit.bbox, cited: false }];
    const card = el("figure", { class: "hit", "data-doc": hit.doc_id, "data-page": String(hit.page) },
      el("button", { type: "button", class: "plain", "aria-label": `open ${pageName(hit)}`, onclick: () => openViewer(hit, boxes) }, pageView(hit, boxes)),
      el("figcaption", {}, `${i + 1}. ${pageName(hit)}`, el("span", { class: "muted score" }, `${hit.corpus} · score ${hit.score.toFixed(3)}`)));
    grid.append(card);
  });
}

function renderRoute(route) {
  if (!route) return;
  $("route").hidden = false;
  $("route-reason").textContent = route.reason;
  $("route-summary").textContent = "weights: " + Object.entries(route.weights).map(([c, w]) => `${c} ${w.toFixed(2)}`).join(", ") + ` · router: ${route.router}`;
}

function openViewer(hit, boxes) {
  $("viewer-title").textContent = pageName(hit);
  $("viewer-page").replaceChildren(pageView(hit, boxes));
  if (!$("viewer").open) $("viewer").showModal();
}

function focusCitation(c) {
  document.querySelectorAll(".focus").forEach((n) => n.classList.remove("focus"));
  const source = $(`source-${c.marker}`);
  if (source) { source.classList.add("focus"); source.scrollIntoView({ block: "nearest" }); }
  const card = document.querySelector(`.hit[data-doc="${c.doc_id}"][data-page="${c.page}"]`);
  if (card) card.classList.add("focus");
  const hit = state.hits.find((h) => h.doc_id === c.doc_id && h.page === c.page);
  if (hit) openViewer(hit, [{ bbox: c.bbox, cited: true }]);
}

// -- the answer: paragraphs, markdown tables, citation markers --------------------------------
function withMarkers(text, byMarker) {
  const nodes = [];
  for (const part of text.split(/(\[\d+\])/)) {
    const m = part.match(/^\[(\d+)\]$/);
    const c = m && byMarker.get(Number(m[1]));
    if (c) {
      nodes.push(el("a", { class: "cite", href: `#source-${c.marker}`, title: pageName(c),
        onclick: (e) => { e.preventDefault(); focusCitation(c); } }, part));
    } else if (part) {
      nodes.push(document.createTextNode(part));
    }
  }
  return nodes;
}

const isRow = (line) => /^\s*\|.*\|\s*$/.test(line);
const isRule = (line) => /^\s*\|?(\s*:?-{2,}:?\s*\|)+\s*:?-*:?\s*\|?\s*$/.test(line);
const cells = (line) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((s) => s.trim());

function tableFrom(lines, byMarker) {
  const rows = lines.filter((l) => !isRule(l)).map(cells);
  const headed = lines.length > 1 && isRule(lines[1]);
  const table = el("table");
  if (headed) table.append(el("thead", {}, el("tr", {}, ...rows.shift().map((t) => el("th", { scope: "col" }, ...withMarkers(t, byMarker))))));
  table.append(el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((t) => el("td", {}, ...withMarkers(t, byMarker)))))));
  return el("div", { class: "table-wrap" }, table);
}

function answerBlocks(text, byMarker) {
  const blocks = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length;) {
    if (isRow(lines[i])) {
      const start = i;
      while (i < lines.length && isRow(lines[i])) i++;
      blocks.push(tableFrom(lines.slice(start, i), byMarker));
      continue;
    }
    const para = [];
    while (i < lines.length && !isRow(lines[i]) && lines[i].trim()) para.push(lines[i++]);
    if (para.length) blocks.push(el("p", {}, ...withMarkers(para.join("\n"), byMarker)));
    else i++;
  }
  return blocks;
}

// a cited table's markdown read as rows of cells ("Code, Meaning; E01, grid fault"), not as
// pipes and rules; other lines as they are
function quoteText(text) {
  return text.split("\n").filter((line) => !isRule(line))
    .map((line) => (isRow(line) ? cells(line).filter(Boolean).join(", ") + ";" : line)).join("\n");
}

function sourceItem(c) {
  const crop = el("img", { class: "crop", alt: c.crop_url ? `figure on ${pageName(c)}` : `cited passage on ${pageName(c)}` });
  if (c.crop_url || c.image_url) loadImage(crop, c.crop_url || c.highlight_url || c.image_url);
  const text = c.text ? quoteText(c.text) : "";
  const quote = text ? el("blockquote", {}, text.length > 280 ? text.slice(0, 280) + "…" : text) : "";
  return el("li", { id: `source-${c.marker}`, value: String(c.marker) },
    el("button", { type: "button", class: "link", onclick: () => focusCitation(c) }, pageName(c)),
    // an audio file's transcript has no image to show (nor to highlight)
    el("div", { class: "source-body" }, c.crop_url || c.image_url ? crop : "", quote));
}

function renderAnswer(data) {
  const answered = data.answered !== false;
  state.citations = answered ? (data.citations || []) : [];
  if (data.hits) state.hits = data.hits;
  const byMarker = new Map(state.citations.map((c) => [c.marker, c]));
  const out = $("answer");
  out.className = answered ? "" : "abstain";
  out.replaceChildren(...answerBlocks(data.answer, byMarker));
  if (data.unsupported && data.unsupported.length) {
    // a generated answer's sentences whose claims were not in the evidence they cited (markers removed)
    out.append(el("div", { class: "unsupported" }, el("strong", {}, "Not found in the evidence they cited:"),
      el("ul", {}, ...data.unsupported.map((s) => el("li", {}, s)))));
  }
  if (answered) {
    $("sources-title").textContent = "Sources";
    $("citations").replaceChildren(...state.citations.map(sourceItem));
    $("sources-panel").hidden = !state.citations.length;
  } else {
    // no answer in the documents: the closest pages, plainly, not as citations
    $("sources-title").textContent = "Closest pages";
    $("citations").replaceChildren(...state.hits.slice(0, 3).map((h) => el("li", { class: "closest" },
      el("button", { type: "button", class: "link", onclick: () => openViewer(h, [{ bbox: h.bbox, cited: false }]) }, pageName(h)))));
    $("sources-panel").hidden = !state.hits.length;
  }
  renderRoute(data.route);
  renderHits();
}

// -- asking (server-sent events over fetch) ---------------------------------------------------
async function ask(question) {
  state.asked = true;
  $("empty").hidden = true;
  $("result").hidden = false;
  $("ask-button").disabled = true;
  $("answer").textContent = "";
  $("answer").className = "streaming";
  $("citations").replaceChildren();
  $("sources-panel").hidden = true;
  $("rewritten").hidden = true;
  state.citations = [];
  setStatus("searching…");
  renderConversation();
  try {
    const history = state.history.slice(-HISTORY_SENT);
    const response = await api("/api/ask/stream", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ question, history }),
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
    state.hits = payload.hits; renderRoute(payload.route); renderHits(); renderRewritten(payload.rewritten); setStatus("answering…");
  } else if (event === "token") {
    $("answer").append(payload.text);
  } else if (event === "answer") {
    renderAnswer(payload);
    renderRewritten(payload.rewritten);
    rememberTurn(payload);
    const t = payload.timings_ms || {};
    const what = payload.answered === false ? "no answer found in the documents" : `${payload.citations.length} source${payload.citations.length === 1 ? "" : "s"}`;
    setStatus(`${what} · ${payload.generator} · ${Math.round(t.total || 0)} ms retrieval`);
  } else if (event === "error") {
    setStatus("error: " + payload.error);
  }
}

// -- the conversation: earlier turns, sent with each question so a follow-up can refer back ------
function renderRewritten(rewritten) {
  $("rewritten").textContent = rewritten ? "searched for: " + rewritten : "";
  $("rewritten").hidden = !rewritten;
}

function rememberTurn(answer) {
  state.history.push({ question: answer.question, answer: answer.answer || "" });
}

/** The turns before the question being asked (shown when it is sent). */
function renderConversation() {
  const earlier = state.history;
  $("conversation").replaceChildren(...earlier.map((t) => el("li", {},
    el("span", { class: "turn-question" }, t.question), " ",
    el("span", { class: "turn-answer muted" }, t.answer.length > 160 ? t.answer.slice(0, 160) + "…" : t.answer))));
  $("conversation-panel").hidden = !earlier.length;
}

function newConversation() {
  state.history = [];
  renderConversation();
  renderRewritten(null);
  $("question").focus();
}

// -- empty state: what to do, or example questions about the documents -------------------------
async function renderEmpty(docs) {
  if (state.asked) return;
  $("empty-no-docs").hidden = docs.length > 0;
  $("empty-examples").hidden = true;
  if (!docs.length) return;
  const examples = (await (await api("/api/examples")).json()).examples;
  $("examples").replaceChildren(...examples.map((q) => el("li", {},
    el("button", { type: "button", class: "example", onclick: () => { $("question").value = q; $("question").focus(); } }, q))));
  $("empty-examples").hidden = !examples.length;
}

// -- documents and ingest progress ----------------------------------------------------------------
async function loadDocuments() {
  const docs = (await (await api("/api/documents")).json()).documents;
  $("documents").replaceChildren(...docs.map((d) => el("li", {},
    el("span", { title: d.doc_id }, `${d.name} · ${d.pages} p.`),
    el("button", { type: "button", class: "delete", "aria-label": `delete ${d.name}`, onclick: () => removeDocument(d) }, "×"))));
  if (!docs.length) $("documents").append(el("li", { class: "muted" }, "no documents yet: upload PDFs or images"));
  renderEmpty(docs).catch((e) => setStatus(e.message));
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

function fileLine(f) {
  const line = el("div", { class: "file", "data-state": f.state });
  if (f.state === "ingesting" && f.pages_total) {
    line.append(`${f.name}: page ${f.pages_done} of ${f.pages_total}`,
      el("progress", { max: String(f.pages_total), value: String(f.pages_done), "aria-label": `${f.name} pages read` }));
  } else {
    const why = f.error || f.reason;
    line.append(`${f.name}: ${f.state}${f.pages && f.state !== "failed" ? ` (${f.pages} pages)` : ""}${why ? " — " + why : ""}`);
    if (f.notes && f.notes.length) {  // what was refused or skipped inside the file
      line.append(el("ul", { class: "notes" }, ...f.notes.map((n) => el("li", {}, n))));
    }
  }
  return line;
}

async function loadJobs() {
  const jobs = (await (await api("/api/jobs")).json()).jobs.slice(-5);
  $("jobs").replaceChildren(...jobs.map((j) => el("li", { class: "job", "data-state": j.state },
    `${j.id}: ${j.state} ${j.done}/${j.total}`, ...j.files.map(fileLine))));
  const running = jobs.some((j) => j.state === "queued" || j.state === "running");
  if (!running && state.polling) { clearInterval(state.polling); state.polling = null; loadDocuments(); }
  if (running && !state.polling) state.polling = setInterval(() => loadJobs().catch((e) => setStatus(e.message)), 700);
}

async function upload(files) {
  const body = new FormData();
  for (const f of files) body.append("files", f, f.name);
  try { await api("/api/documents", { method: "POST", body }); await loadJobs(); } catch (e) { setStatus("upload: " + e.message); }
}

// -- wiring -------------------------------------------------------------------------------------------
$("new-conversation").addEventListener("click", newConversation);
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
