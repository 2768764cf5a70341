"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// The API key lives in this tab only (sessionStorage: gone when the tab closes; never
// localStorage, which every page of this origin could read for ever).
$("api-key").value = sessionStorage.getItem("llmrec-api-key") || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("llmrec-api-key", $("api-key").value);
  init();
});

async function api(path, body, method) {
  const headers = {"Content-Type": "application/json"};
  if ($("api-key").value) headers["X-API-Key"] = $("api-key").value;
  const init = {headers, method: method || (body === undefined ? "GET" : "POST")};
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const data = await res.json();
  if (!res.ok) {
    const err = new Error(data.error + (data.fields ? " (" + data.fields.map((f) => f.field + ": " + f.message).join("; ") + ")" : ""));
    err.status = res.status;
    throw err;
  }
  return data;
}
function currentUser() { return $("user-input").value.trim() || $("user-select").value; }
function itemLink(it) { return `<a class="item" data-item="${esc(it.item_id)}">${esc(it.title)}</a>`; }

// A newer request makes an older one's answer stale: each view draws only its latest answer
// (switching users quickly must not leave the previous user's rows on the page).
let userSeq = 0, recSeq = 0;

async function loadUser() {
  const uid = currentUser();
  const seq = ++userSeq;
  const body = $("history").querySelector("tbody");
  body.innerHTML = "";
  try {
    const u = await api(`/users/${encodeURIComponent(uid)}?limit=30`);
    if (seq !== userSeq) return;
    $("user-summary").textContent = `user ${u.user_id}: ${u.interactions} interactions (latest 30 shown, newest first)`;
    body.innerHTML = u.history.map((h) => `<tr><td>${esc(h.item_id)}</td><td>${itemLink(h)}</td><td>${h.rating ?? ""}</td></tr>`).join("");
  } catch (e) {
    if (seq !== userSeq) return;
    $("user-summary").textContent = `user ${uid}: not in the data (cold start: popular items)`;
  }
  await recommend();
}

async function recommend() {
  $("rec-error").textContent = "";
  const req = {user_id: currentUser(), n: Number($("n").value), exclude_seen: $("exclude-seen").checked,
               diversity: Number($("diversity").value)};
  if ($("genre").value) req.filters = {genres: [$("genre").value]};
  const body = $("recs").querySelector("tbody");
  const seq = ++recSeq;
  try {
    const r = await api("/recommend", req);
    if (seq !== recSeq) return;
    $("rec-summary").textContent = `ranked by ${r.ranker}; explanations from ${r.explanations}` + (r.cold_start ? `; cold start (${r.cold_start})` : "");
    body.innerHTML = r.items.map((it) => `<tr class="rec"><td>${it.rank}</td><td>${itemLink(it)}<div class="muted">${esc(it.genres.join(", "))}</div></td>` +
      `<td><span class="badge ${esc(it.channel)}">${esc(it.channel)}</span></td><td>${it.score === null ? "" : it.score.toFixed(3)}</td>` +
      `<td class="expl">${esc(it.explanation)}</td></tr>`).join("");
  } catch (e) {
    if (seq !== recSeq) return;
    body.innerHTML = ""; $("rec-error").textContent = e.message;
  }
  document.body.dataset.recsFor = req.user_id;    // what the table shows (tests wait on it)
}

async function similar(itemId) {
  if (itemId) $("item-input").value = itemId;
  $("similar-error").textContent = "";
  const body = $("similar-table").querySelector("tbody");
  try {
    const s = await api(`/items/${encodeURIComponent($("item-input").value.trim())}/similar?n=10`);
    $("similar-title").textContent = `like “${s.item.title}” (${s.vectors})`;
    body.innerHTML = s.similar.map((it) => `<tr class="sim"><td>${esc(it.item_id)}</td><td>${itemLink(it)}</td><td>${esc(it.genres.join(", "))}</td><td>${it.score.toFixed(3)}</td></tr>`).join("");
  } catch (e) { body.innerHTML = ""; $("similar-title").textContent = ""; $("similar-error").textContent = e.message; }
}

// The chat panel: a server-side session (POST /chat, POST /chat/{id}, DELETE /chat/{id}).
let chatId = null, chatSeq = 0;

function chatMessage(who, html) {
  const div = document.createElement("div");
  div.className = `msg ${who}`;
  div.innerHTML = html;
  $("chat-log").appendChild(div);
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
}

function chatAnswer(r) {
  const said = Object.entries(r.understood).map(([a, v]) => `${esc(a)}: ${esc(v.join(", ") || "any")}`).join("; ");
  const cards = r.items.map((it) => `<div class="card" data-item="${esc(it.item_id)}"><div class="title">${itemLink(it)}</div>` +
    `<div class="muted">${esc(it.year ?? "")} · ${esc(it.genres.join(", "))}</div></div>`).join("");
  chatMessage("agent", (said ? `<div class="understood">understood: ${said}</div>` : "") + esc(r.text) +
    (cards ? `<div class="cards">${cards}</div>` : ""));
  const wishes = Object.entries(r.wishes).map(([a, v]) => `${esc(a)} ${esc(v.join(", "))}`).join(" · ");
  $("chat-wishes").innerHTML = wishes ? `looking for: ${wishes}` : "";
  $("chat-input").disabled = $("chat-send").disabled = r.done;
  document.body.dataset.chatTurn = String(r.turn);     // tests wait on it
}

async function chatStart() {
  const seq = ++chatSeq;
  const old = chatId;
  chatId = null;
  $("chat-log").innerHTML = ""; $("chat-error").textContent = ""; $("chat-wishes").textContent = "";
  delete document.body.dataset.chatTurn;
  if (old) api(`/chat/${encodeURIComponent(old)}`, undefined, "DELETE").catch(() => {});
  try {
    const r = await api("/chat", $("chat-as-user").checked ? {user_id: currentUser()} : {});
    if (seq !== chatSeq) return;
    chatId = r.session_id;
    chatAnswer(r);
  } catch (e) {
    if (seq !== chatSeq) return;
    if (e.status === 404 && e.message.startsWith("no such path")) $("chat-section").hidden = true;   // chat_strategy = "off"
    else $("chat-error").textContent = e.message;
  }
}

async function chatSend() {
  const text = $("chat-input").value.trim();
  if (!text) return;
  if (!chatId) await chatStart();
  if (!chatId) return;
  const seq = chatSeq;
  $("chat-input").value = ""; $("chat-error").textContent = "";
  chatMessage("user", esc(text));
  try {
    const r = await api(`/chat/${encodeURIComponent(chatId)}`, {message: text});
    if (seq === chatSeq) chatAnswer(r);
  } catch (e) {
    if (seq !== chatSeq) return;
    $("chat-error").textContent = e.message + (e.status === 404 ? " (press New conversation)" : "");
  }
}

$("chat-new").addEventListener("click", chatStart);
$("chat-as-user").addEventListener("change", chatStart);
$("chat-send").addEventListener("click", chatSend);
$("chat-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") chatSend(); });

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a.item");
  if (a) { similar(a.dataset.item); $("similar-section").scrollIntoView(); }
});
$("user-select").addEventListener("change", () => { $("user-input").value = ""; loadUser(); chatStart(); });
$("user-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { loadUser(); chatStart(); } });
$("recommend").addEventListener("click", recommend);
$("similar").addEventListener("click", () => similar());
$("item-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") similar(); });

async function init() {
  try {
    const h = await api("/info");
    $("info").textContent = `${h.model} on ${h.dataset} · ${h.items} items · ANN: ${h.item_vectors} · ranker: ${h.ranker}`;
    const [users, genres] = await Promise.all([api("/users?limit=200"), api("/genres")]);
    $("user-select").innerHTML = users.users.map((u) => `<option value="${esc(u.user_id)}">${esc(u.user_id)} (${u.interactions})</option>`).join("");
    $("genre").innerHTML = '<option value="">any</option>' + genres.genres.map((g) => `<option>${esc(g)}</option>`).join("");
    await Promise.all([loadUser(), chatStart()]);
    document.body.dataset.ready = "1";
  } catch (e) { $("info").textContent = "error: " + e.message; }
}
init();
