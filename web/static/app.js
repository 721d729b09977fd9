// The demo page: starts the browser peer (Go compiled to WebAssembly, see web/peer) and draws
// what it sees. The peer talks to the page only through globalThis.rtcmeshHooks (events it
// calls: onReady, onMessage, onDirectMessage, onLinkEvent, onError) and globalThis.rtcmesh
// (id, identity, and broadcast, send, snapshot, benchmarkCrypto and close, which return
// Promises). One box sends both: to everyone (a broadcast) or, when a peer is chosen (the To
// list, a click on the picture, or a line "@ID text"), to that peer alone (a direct message).
"use strict";

(() => {
  // How often the overlay picture and counters are refreshed from rtcmesh.snapshot(), in ms.
  const REFRESH_MS = 500;
  // The messages list keeps this many entries; older ones are dropped so a busy mesh cannot
  // grow the page without bound.
  const MAX_MESSAGES = 200;
  // Characters of a node ID shown as its label; the full ID is in the tooltip.
  const SHORT_ID = 6;
  // A node ID's length (identity.IDLength): "@" followed by this many characters is a whole ID,
  // fewer are the start of a known peer's.
  const ID_LENGTH = 52;
  // The peers this tab heard from (broadcasts, direct messages) that the To list offers beside
  // the neighbours and the passive view; the oldest are forgotten beyond this many.
  const MAX_HEARD = 200;
  // Geometry of the picture, in SVG user units (the viewBox is 720 x 600 around 0,0).
  const ACTIVE_RADIUS = 170, PASSIVE_RADIUS = 262;
  const SELF_R = 36, ACTIVE_R = 27, PASSIVE_R = 17;
  const PATHS = ["host", "srflx", "prflx", "relay"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const short = (id) => (id || "").slice(0, SHORT_ID);

  const state = {
    id: "",
    messages: 0,
    // Messages that came by catch-up (sent before this tab joined, or while it was away).
    history: 0,
    // Where each drawn peer goes, by ID (see moveAll).
    target: new Map(),
    // Direct messages listed (received and sent).
    direct: 0,
    // The peer the box sends to; "" is everyone (a broadcast).
    to: "",
    // The latest snapshot's views: neighbour IDs, passive IDs, and the passive peers a direct
    // message would reach now.
    neighbours: [],
    passive: [],
    routable: new Set(),
    // Peers heard from, oldest first (a Map keeps insertion order).
    heard: new Map(),
    // What the To list shows, to rebuild it only when that changes (a rebuilt <select>
    // closes under the user's pointer).
    toKey: "",
  };

  function showError(text) {
    const e = $("error");
    e.textContent = text;
    e.hidden = false;
  }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  // --- The overlay picture -------------------------------------------------------------

  const graph = $("overlay");
  const layers = {};
  for (const name of ["rings", "links", "labels", "nodes"]) layers[name] = svg("g", { class: name }, graph);
  svg("circle", { class: "ring", r: ACTIVE_RADIUS }, layers.rings);
  svg("circle", { class: "ring", r: PASSIVE_RADIUS }, layers.rings);
  const emptyNote = svg("text", { class: "empty-graph", x: 0, y: SELF_R + 62 }, layers.rings);

  const selfNode = svg("g", { class: "node self" }, layers.nodes);
  const selfTitle = svg("title", {}, selfNode);
  svg("circle", { r: SELF_R }, selfNode);
  const selfLabel = svg("text", { y: 0 }, selfNode);
  selfLabel.textContent = "you";
  const selfIdLabel = svg("text", { y: SELF_R + 16, class: "self-id" }, layers.labels);
  selfIdLabel.setAttribute("text-anchor", "middle");
  selfIdLabel.setAttribute("style", "font:12px ui-monospace,monospace;fill:#3b5bdb;font-weight:700");

  // Drawn elements by peer ID: {g, circle, text, title, line, label}.
  const drawn = new Map();

  // layout places the picture's peers: this peer at the centre, nActive neighbours on the
  // inner ring, nPassive passive peers on the outer one. It is pure (the same sizes give the
  // same places) and, whatever the sizes, no disc overlaps another or the centre (with its ID
  // label) and every disc stays inside the viewBox: a crowded ring gets smaller discs, and a
  // passive peer's label (under its disc) is shown only where there is room for it. Returns
  // {self: {x, y, r}, active: [{x, y, r}], passive: [{x, y, r, label}]}.
  function layout(nActive, nPassive) {
    // A passive peer's label (its short ID, 12 px) is a box under its disc.
    const GAP = 4, MIN_R = 2, MIN_LABELLED_R = 10;
    const labelBox = (p, r) => [p.x - 24, p.y + r + 6, p.x + 24, p.y + r + 20];
    const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
    const discOnBox = (p, r, b) => Math.hypot(p.x - clamp(p.x, b[0], b[2]), p.y - clamp(p.y, b[1], b[3])) < r + 1;
    const boxesMeet = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    const ring = (n, radius, offset) => Array.from({ length: n }, (_, i) => {
      const a = -Math.PI / 2 + offset + (2 * Math.PI * i) / n;
      return { x: radius * Math.cos(a), y: radius * Math.sin(a) };
    });
    // Neighbouring discs are a chord apart: a crowded ring gets smaller discs.
    const fit = (n, radius, r) => Math.max(MIN_R, Math.min(r, n > 1 ? (2 * radius * Math.sin(Math.PI / n) - GAP) / 2 : r));
    // labelsFit reports whether, with discs of radius r, no label meets a disc or another label.
    const labelsFit = (pts, r) => pts.every((p, i) => pts.every((q, j) => i === j ||
      (!discOnBox(q, r, labelBox(p, r)) && !boxesMeet(labelBox(p, r), labelBox(q, r)))));
    const active = ring(nActive, ACTIVE_RADIUS, 0).map((p, _, all) => ({ ...p, r: fit(all.length, ACTIVE_RADIUS, ACTIVE_R) }));
    // The passive ring is turned half a step so its peers sit between the neighbours' links.
    // Their discs shrink (down to MIN_LABELLED_R) to keep their labels; if that is not enough,
    // the labels go (the full ID is in every disc's tooltip).
    const pts = ring(nPassive, PASSIVE_RADIUS, Math.PI / Math.max(nPassive, 1));
    let r = fit(nPassive, PASSIVE_RADIUS, PASSIVE_R), label = false;
    for (let lr = Math.min(r, PASSIVE_R); lr >= MIN_LABELLED_R && nPassive <= 64; lr -= 1) {
      if (labelsFit(pts, lr)) { r = lr; label = true; break; }
    }
    const passive = pts.map((p) => ({ ...p, r, label }));
    return { self: { x: 0, y: 0, r: SELF_R }, active, passive };
  }
  // The tests check the layout in every browser.
  globalThis.rtcmeshLayout = layout;

  function pathClass(p) {
    return PATHS.includes(p) ? p : "unknown";
  }

  function render(snap) {
    const seen = new Set();
    const active = [...snap.neighbors].sort((a, b) => (a.id < b.id ? -1 : 1));
    const passive = [...snap.passive].filter((id) => !active.some((n) => n.id === id)).sort();
    const places = layout(active.length, passive.length);
    active.forEach((nb, i) => {
      seen.add(nb.id);
      const at = places.active[i];
      const d = ensure(nb.id, at);
      d.circle.setAttribute("r", at.r);
      const kind = pathClass(nb.path);
      d.g.setAttribute("class", `node active${nb.id === state.to ? " chosen" : ""}`);
      d.line.setAttribute("class", `lk ${nb.eager ? "eager" : "lazy"} ${kind}`);
      d.line.style.display = "";
      d.label.setAttribute("class", `lk-label ${kind}`);
      d.label.style.display = "";
      const rtt = nb.rttMs > 0 ? ` ${Math.round(nb.rttMs)} ms` : "";
      d.label.textContent = `${nb.path || "?"}${rtt}`;
      d.title.textContent = `${nb.id}\n${nb.eager ? "eager" : "lazy"} link, path ${nb.path || "unknown"}` +
        (nb.rttMs > 0 ? `, RTT ${nb.rttMs.toFixed(1)} ms` : "") +
        (nb.sinceMs > 0 ? `, up ${Math.round(nb.sinceMs / 1000)} s` : "") +
        "\nclick to send it a direct message";
      d.text.setAttribute("y", 0);
      d.text.style.display = at.r === ACTIVE_R ? "" : "none";
      state.target.set(nb.id, [at.x, at.y]);
    });
    passive.forEach((id, i) => {
      seen.add(id);
      const at = places.passive[i];
      const d = ensure(id, at);
      d.circle.setAttribute("r", at.r);
      d.g.setAttribute("class", `node passive${id === state.to ? " chosen" : ""}`);
      d.line.style.display = "none";
      d.label.style.display = "none";
      d.title.textContent = `${id}\npassive view (known, not linked)\n` +
        (state.routable.has(id) ? "click to send it a direct message" : "no route known to it now: a direct message would fail");
      d.text.setAttribute("y", at.r + 13);
      d.text.style.display = at.label ? "" : "none";
      state.target.set(id, [at.x, at.y]);
    });
    for (const [id, d] of drawn) {
      if (seen.has(id)) continue;
      d.g.remove(); d.line.remove(); d.label.remove();
      drawn.delete(id); state.target.delete(id);
    }
    emptyNote.textContent = active.length === 0 ? "waiting for neighbours…" : "";
    $("view-sizes").textContent = `${active.length} neighbour${active.length === 1 ? "" : "s"} · ${passive.length} in the passive view`;
    moveAll();
  }

  // ensure returns the drawn elements of peer id, drawing a new peer at its place at (not
  // growing out of the centre, where it would cover this peer).
  function ensure(id, at) {
    let d = drawn.get(id);
    if (d) return d;
    const line = svg("line", { x1: 0, y1: 0, x2: 0, y2: 0, "data-peer": id }, layers.links);
    const label = svg("text", {}, layers.labels);
    const g = svg("g", { "data-peer": id }, layers.nodes);
    const title = svg("title", {}, g);
    const circle = svg("circle", { r: ACTIVE_R }, g);
    const text = svg("text", {}, g);
    text.textContent = short(id);
    d = { g, circle, text, title, line, label };
    drawn.set(id, d);
    place(d, at.x, at.y);
    return d;
  }

  // place moves a drawn peer, its link and the link's label to x, y.
  function place(d, x, y) {
    d.g.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    d.line.setAttribute("x2", x.toFixed(1));
    d.line.setAttribute("y2", y.toFixed(1));
    d.label.setAttribute("x", (x * 0.56).toFixed(1));
    d.label.setAttribute("y", (y * 0.56).toFixed(1));
  }

  // moveAll puts every drawn peer at its target at once. Peers are not eased from one place to
  // the next: a peer that changes rings would cross the others on its way, and a background
  // tab (or a screenshot) can stop an animation halfway, over another peer.
  function moveAll() {
    for (const [id, d] of drawn) {
      const [x, y] = state.target.get(id) || [0, 0];
      place(d, x, y);
    }
  }

  function flashSelf() {
    selfNode.classList.remove("flash");
    // Reading layout restarts the CSS animation when messages arrive back to back.
    void selfNode.getBoundingClientRect();
    selfNode.classList.add("flash");
  }

  // --- Counters and status ---------------------------------------------------------------

  // refresh reads a snapshot (a Promise: the peer answers from its own goroutine) and redraws.
  // Only one snapshot is in flight at a time, so a busy peer is never asked faster than it
  // answers.
  let refreshing = false, refreshAgain = false;
  async function refresh() {
    const api = globalThis.rtcmesh;
    if (!api || typeof api.snapshot !== "function") return;
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    try {
      const snap = await api.snapshot();
      const sig = $("signal-status");
      sig.textContent = snap.signaling ? "signaling: connected" : "signaling: disconnected";
      sig.className = `pill ${snap.signaling ? "pill-on" : "pill-off"}`;
      const st = snap.stats || {};
      for (const k of ["sent", "delivered", "duplicates", "ihave", "graft", "prune"]) {
        $(`c-${k}`).textContent = String(st[k] ?? 0);
      }
      // Messages caught up on are delivered too; the core counts them apart.
      $("c-delivered").textContent = String((st.delivered ?? 0) + (st.history ?? 0));
      state.neighbours = snap.neighbors.map((n) => n.id);
      state.passive = [...snap.passive];
      state.routable = new Set(snap.routable || []);
      updateTo();
      render(snap);
    } catch (e) {
      showError(`snapshot failed: ${e.message || e}`);
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; refresh(); }
    }
  }

  // --- Messages ------------------------------------------------------------------------

  // addMessage lists a delivered message. The list is newest first. A live message goes on
  // top, as it arrives; one that came by catch-up (m.history: sent before this tab joined, or
  // while it was away) is marked as history and placed by its origin's send time, so what the
  // mesh said earlier reads in the order it was said, below what is said now.
  function addMessage(m) {
    const li = document.createElement("li");
    if (m.own) li.classList.add("own");
    if (m.history) li.classList.add("history");
    li.dataset.origin = m.origin;
    li.dataset.hops = String(m.hops);
    li.dataset.sentAt = String(m.sentAtMs || 0);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    const meta = document.createElement("div");
    meta.className = "meta";
    if (m.history) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "history";
      badge.title = "Sent before this tab joined the mesh (or while it was away), and fetched from a neighbour since";
      meta.append(badge);
    }
    const from = document.createElement("span");
    from.append("from ");
    from.append(peerCode(m.origin, m.own ? "this tab" : "click to send it a direct message"));
    if (!m.own) hear(m.origin);
    if (m.own) {
      const you = document.createElement("span");
      you.className = "you";
      you.textContent = " (you)";
      from.append(you);
    }
    const hops = document.createElement("span");
    hops.textContent = `${m.hops} hop${m.hops === 1 ? "" : "s"}`;
    const lat = document.createElement("span");
    lat.className = "latency";
    const at = document.createElement("span");
    if (m.history) {
      // A message caught up on is as late as the time the tab was away: its send time says more.
      const sent = new Date(m.sentAtMs);
      at.className = "sent-at";
      at.textContent = `sent ${sent.toLocaleTimeString()}`;
      at.title = `sent ${sent.toISOString()} by its origin's clock; received ${new Date(m.receivedAtMs || Date.now()).toLocaleTimeString()}`;
      lat.textContent = m.latencyMs >= 0 ? `${(m.latencyMs / 1000).toFixed(1)} s later` : "";
    } else {
      lat.textContent = m.latencyMs >= 0 ? `${Math.round(m.latencyMs)} ms` : "latency unknown";
      at.textContent = new Date(m.receivedAtMs || Date.now()).toLocaleTimeString();
    }
    meta.append(from, hops, lat, at);
    li.append(text, meta);
    const list = $("messages");
    if (m.history) {
      // Before the first message sent earlier than this one; at the end if there is none.
      const later = [...list.children].find((el) => Number(el.dataset.sentAt) < (m.sentAtMs || 0));
      list.insertBefore(li, later || null);
    } else {
      list.prepend(li);
    }
    state.messages++;
    if (m.history) state.history++;
    listed(list);
    // History comes in bursts of up to thousands: no flash (each costs a layout).
    if (!m.history) flashSelf();
  }

  // listed bounds the list and updates its count after a message was added.
  function listed(list) {
    while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
    const parts = [String(state.messages)];
    if (state.direct > 0) parts.push(`${state.direct} direct`);
    if (state.history > 0) parts.push(`${state.history} from history`);
    $("msg-count").textContent = `(${parts.join(", ")})`;
    $("no-messages").hidden = true;
  }

  // peerCode is a peer's short ID, its full ID in the tooltip; a click on it (see the
  // messages list's listener) chooses the peer for a direct message.
  function peerCode(id, note) {
    const code = document.createElement("code");
    code.className = "peer";
    code.textContent = short(id);
    code.title = note ? `${id}\n${note}` : id;
    if (id !== state.id) code.dataset.peer = id;
    return code;
  }

  // addDirect lists a direct message: m.out for one this tab sent to m.to, otherwise one it
  // received from m.from, the sender's ID as its signature proved it. Direct messages are
  // never history (nothing stores them for a peer that was away): they go on top.
  function addDirect(m) {
    const li = document.createElement("li");
    li.classList.add("direct");
    if (m.out) li.classList.add("own");
    li.dataset.direct = m.out ? "out" : "in";
    li.dataset.peer = m.out ? m.to : m.from;
    // The origin of the shared fields, as for a broadcast: who wrote it.
    li.dataset.origin = m.out ? state.id : m.from;
    li.dataset.sentAt = String(m.sentAtMs || 0);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    const meta = document.createElement("div");
    meta.className = "meta";
    const badge = document.createElement("span");
    badge.className = "badge direct-badge";
    badge.textContent = "direct";
    badge.title = m.out ? "A direct message this tab sent to one peer alone" :
      "A direct message to this tab alone, signed by its sender";
    const who = document.createElement("span");
    who.className = "who";
    const lat = document.createElement("span");
    lat.className = "latency";
    if (m.out) {
      who.append("you → ", peerCode(m.to, "click to write to it again"));
      lat.textContent = "sent";
      lat.title = "Left this tab; delivery is not acknowledged";
    } else {
      const proven = document.createElement("span");
      proven.className = "proven";
      proven.textContent = "✓ signed";
      proven.title = `The sender proved it holds the key of ID ${m.from}`;
      who.append("from ", peerCode(m.from, "proven by its signature; click to reply"), " ", proven, " → you");
      lat.textContent = m.latencyMs >= 0 ? `${Math.round(m.latencyMs)} ms` : "latency unknown";
      hear(m.from);
    }
    const at = document.createElement("span");
    at.textContent = new Date(m.receivedAtMs || m.sentAtMs || Date.now()).toLocaleTimeString();
    meta.append(badge, who, lat, at);
    if (!m.out) {
      const reply = document.createElement("button");
      reply.type = "button";
      reply.className = "link-button reply";
      reply.textContent = "reply";
      reply.dataset.peer = m.from;
      meta.append(reply);
    }
    li.append(text, meta);
    const list = $("messages");
    list.prepend(li);
    state.messages++;
    state.direct++;
    listed(list);
    if (!m.out) flashSelf();
  }

  // --- Direct messages: choosing the peer ------------------------------------------------

  // hear remembers a peer this tab heard from, for the To list.
  function hear(id) {
    if (!id || id === state.id) return;
    state.heard.delete(id);
    state.heard.set(id, true);
    while (state.heard.size > MAX_HEARD) state.heard.delete(state.heard.keys().next().value);
    // The To list follows at the next refresh: history comes in bursts of thousands.
  }

  // updateTo rebuilds the To list when the peers it offers changed: everyone, then the
  // neighbours, the passive view (marked when no route to it is known now), the peers heard
  // from, and the chosen peer wherever it is.
  function updateTo() {
    const nbs = [...state.neighbours].sort();
    const inViews = new Set([...nbs, ...state.passive]);
    const passive = [...state.passive].filter((id) => !nbs.includes(id)).sort();
    const heard = [...state.heard.keys()].filter((id) => !inViews.has(id)).reverse();
    if (state.to && !inViews.has(state.to) && !heard.includes(state.to)) heard.unshift(state.to);
    const groups = [
      ["neighbours (linked)", nbs.map((id) => [id, short(id)])],
      ["passive view", passive.map((id) => [id, state.routable.has(id) ? short(id) : `${short(id)} · no route now`])],
      ["heard from", heard.map((id) => [id, short(id)])],
    ];
    const key = JSON.stringify([groups, state.to]);
    if (key === state.toKey) return;
    state.toKey = key;
    const sel = $("send-to");
    const keep = sel.options[0];
    sel.replaceChildren(keep);
    for (const [label, items] of groups) {
      if (items.length === 0) continue;
      const g = document.createElement("optgroup");
      g.label = label;
      for (const [id, text] of items) {
        const o = document.createElement("option");
        o.value = id;
        o.textContent = text;
        o.title = id;
        g.append(o);
      }
      sel.append(g);
    }
    sel.value = state.to;
  }

  // choose makes the box send to peer id ("" is everyone) and shows it: the To list, the
  // placeholder and button, the chosen peer ringed in the picture.
  function choose(id, focus) {
    state.to = id && id !== state.id ? id : "";
    updateTo();
    $("send-to").value = state.to;
    $("send-to-clear").hidden = !state.to;
    $("send-text").placeholder = state.to ? `Direct message to ${short(state.to)} only…` : "Say something to every peer…";
    $("send-button").textContent = state.to ? `Send to ${short(state.to)}` : "Send";
    $("send-form").classList.toggle("direct", !!state.to);
    for (const [pid, d] of drawn) d.g.classList.toggle("chosen", pid === state.to);
    if (focus) $("send-text").focus();
  }

  // knownIDs lists every peer this tab knows of: its views and the peers heard from.
  function knownIDs() {
    return [...new Set([...state.neighbours, ...state.passive, ...state.heard.keys()])];
  }

  // resolveAt reads a line "@ID text": ID is a whole node ID or the start of exactly one known
  // peer's. It returns {to, text}, or throws an Error saying what is wrong.
  function resolveAt(line) {
    const m = /^@(\S*)(?:\s+([\s\S]*))?$/.exec(line);
    const token = (m[1] || "").toLowerCase();
    const text = m[2] || "";
    if (!token) throw new Error("write the peer's ID right after @, then the message");
    if (!text.trim()) throw new Error(`write the message after @${token}`);
    if (token.length >= ID_LENGTH) return { to: token, text };
    const matches = knownIDs().filter((id) => id.startsWith(token));
    if (matches.length === 0) {
      throw new Error(`no known peer's ID starts with “${token}”: pick a peer under To, or type its whole ID`);
    }
    if (matches.length > 1) {
      throw new Error(`“${token}” is the start of ${matches.length} known peers' IDs (${matches.map(short).join(", ")}): type more of it`);
    }
    return { to: matches[0], text };
  }

  // --- Starting the peer -----------------------------------------------------------------

  function onReady(id) {
    state.id = id;
    const pid = $("peer-id");
    pid.textContent = `${short(id)}…`;
    pid.title = id;
    selfTitle.textContent = `${id}\nthis peer`;
    selfIdLabel.textContent = short(id);
    $("send-text").disabled = false;
    $("send-button").disabled = false;
    $("send-to").disabled = false;
    $("send-text").focus();
    refresh();
  }

  $("send-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("send-text");
    const err = $("send-error");
    const text = input.value;
    if (!text.trim()) return;
    let to = state.to, body = text;
    if (text.startsWith("@")) {
      try {
        ({ to, text: body } = resolveAt(text));
      } catch (e) {
        err.textContent = `Direct message not sent: ${e.message}`;
        err.hidden = false;
        return;
      }
    }
    try {
      if (to) {
        const r = await globalThis.rtcmesh.send(to, body);
        addDirect({ out: true, to, text: body, sentAtMs: r.sentAtMs });
      } else {
        await globalThis.rtcmesh.broadcast(body);
      }
      if (input.value === text) input.value = "";
      err.hidden = true;
    } catch (e) {
      err.textContent = to ? `Direct message to ${short(to)} failed: ${e.message || e}` : `Broadcast failed: ${e.message || e}`;
      err.dataset.code = (e && e.code) || "";
      err.hidden = false;
    }
  });

  $("send-to").addEventListener("change", (ev) => choose(ev.target.value, true));
  $("send-to-clear").addEventListener("click", () => choose("", true));
  // A click on a peer in the picture, or on a peer's ID in the messages, chooses it.
  graph.addEventListener("click", (ev) => {
    const g = ev.target.closest && ev.target.closest("g[data-peer]");
    if (g) choose(g.dataset.peer, true);
  });
  $("messages").addEventListener("click", (ev) => {
    const el = ev.target.closest && ev.target.closest("[data-peer]");
    if (el && el.tagName !== "LI") choose(el.dataset.peer, true);
  });

  async function start() {
    let network = "";
    try {
      const resp = await fetch("/config.json", { cache: "no-cache" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      network = (await resp.json()).network || "";
    } catch (e) {
      showError(`Could not read /config.json: ${e.message || e}`);
      return;
    }
    const params = new URLSearchParams(location.search);
    const override = params.get("network");
    if (override) network = override;
    // ?ephemeral=1: an identity that lives as long as the page instead of the tab's stored
    // one, so a reload joins as a new peer.
    const ephemeralIdentity = ["1", "true", "yes"].includes(params.get("ephemeral") || "");
    $("net-name").textContent = `network: ${network}`;
    globalThis.rtcmeshConfig = {
      signalURL: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`,
      network,
      ephemeralIdentity,
    };
    globalThis.rtcmeshHooks = {
      onReady,
      onMessage: addMessage,
      onDirectMessage: (m) => addDirect({ ...m, out: false }),
      onLinkEvent: () => refresh(),
      onError: (text) => showError(text),
    };
    if (typeof Go !== "function") {
      showError("wasm_exec.js did not load: the page cannot run the browser peer.");
      return;
    }
    if (typeof RTCPeerConnection !== "function") {
      showError("This browser has no WebRTC (RTCPeerConnection): it cannot join the mesh.");
      return;
    }
    const go = new Go();
    try {
      const { instance } = await WebAssembly.instantiateStreaming(fetch("/peer.wasm"), go.importObject);
      setInterval(refresh, REFRESH_MS);
      await go.run(instance);
      showError("The browser peer stopped.");
    } catch (e) {
      showError(`Could not start the browser peer: ${e.message || e}`);
    }
  }

  addEventListener("pagehide", () => {
    const api = globalThis.rtcmesh;
    if (api && typeof api.close === "function") {
      Promise.resolve().then(() => api.close()).catch(() => { /* the page is going away either way */ });
    }
  });

  start();
})();
