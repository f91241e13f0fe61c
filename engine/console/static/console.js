// Centralita console: live updates from WS /api/v1/events. No framework, no build step.
// Everything from the server is inserted with textContent: caller ids, names and
// message text are attacker-controlled (so no HTML-parsing DOM APIs anywhere in this file).
"use strict";

(function () {
  const page = document.body.dataset.page;
  if (page === "logs") { tailLogs(); return; }
  if (page !== "dashboard" && page !== "desk" && page !== "wallboard" && page !== "devices") return;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const eventsList = document.getElementById("events");
  const status = document.createElement("span");
  status.id = "live-status";
  document.querySelector("header").appendChild(status);

  function cell(row, value) {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : String(value);
    row.appendChild(td);
    return td;
  }

  function fill(tableId, rows) {
    const table = document.getElementById(tableId);
    if (!table) return;
    const body = table.tBodies[0];
    const fresh = document.createElement("tbody");
    for (const values of rows) {
      const tr = document.createElement("tr");
      for (const v of values) {
        if (v instanceof Node) { const td = document.createElement("td"); td.appendChild(v); tr.appendChild(td); }
        else cell(tr, v);
      }
      fresh.appendChild(tr);
    }
    table.replaceChild(fresh, body);
  }

  function memberSummary(members) {
    if (!members || typeof members !== "object") return "";
    if (Array.isArray(members)) return members.length + " members";
    const counts = {};
    for (const s of Object.values(members)) {
      const key = typeof s === "object" && s ? (s.status || s.state || "?") : String(s);
      counts[key] = (counts[key] || 0) + 1;
    }
    return Object.keys(counts).sort().map((k) => k + " " + counts[k]).join(" · ");
  }

  async function getJSON(path) {
    const r = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  function actionButton(id, action, label) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", async () => {
      b.disabled = true;
      const r = await fetch("/api/v1/interactions/" + encodeURIComponent(id) + "/" + action, {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}",
      });
      if (r.ok) location.reload(); else { b.disabled = false; b.title = "failed: " + r.status; }
    });
    return b;
  }

  const interactionRow = (i) => [i.id, i.kind, i.state, i.from, i.to, i.queue, i.agent];

  // The text of one column per row, by the row's first cell (the server computes SL today).
  function column(tableId, index) {
    const out = {};
    const table = document.getElementById(tableId);
    if (!table) return out;
    for (const tr of table.tBodies[0].rows) {
      if (tr.cells.length > index) out[tr.cells[0].textContent] = tr.cells[index].textContent;
    }
    return out;
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " min";
  }

  // Time in state: kept while an agent's activity is unchanged, restarted from now when it changes.
  function agentRows(agents) {
    const table = document.getElementById("agents");
    const before = {};
    if (table) {
      for (const tr of table.tBodies[0].rows) {
        const span = tr.querySelector("span.since");
        before[tr.cells[0].textContent] = {
          activity: tr.cells.length > 3 ? tr.cells[3].textContent || tr.cells[2].textContent : "",
          since: span ? Number(span.dataset.since) : null,
        };
      }
    }
    const now = Date.now() / 1000;
    return agents.map((a) => {
      const activity = a.status || a.state || "";
      const old = before[String(a.id)];
      let since = null;
      if (old && old.activity === activity) since = old.since;
      else if (old) since = now;
      let inState = "";
      if (since) {
        inState = document.createElement("span");
        inState.className = "since";
        inState.dataset.since = String(Math.round(since));
        inState.textContent = duration(now - since);
      }
      return [a.id, a.name, a.state, a.status || "", a.reason, inState];
    });
  }

  setInterval(() => {
    const now = Date.now() / 1000;
    for (const span of document.querySelectorAll("span.since")) span.textContent = duration(now - Number(span.dataset.since));
  }, 1000);

  function clock(t) {
    return new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
  }

  // The alarms section, redrawn from /api/v1/alarms (raised and cleared by engine events).
  function drawAlarms(data) {
    const section = document.getElementById("alarms");
    if (!section) return;
    const alarms = data.alarms || [];
    const title = document.createElement("h2");
    title.textContent = alarms.length ? "Alarms (" + alarms.length + ")" : "Alarms";
    const parts = [title];
    if (!alarms.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.id = "alarms-none";
      p.textContent = "No active alarms.";
      parts.push(p);
    } else {
      const table = document.createElement("table");
      table.id = "alarm-list";
      const head = table.createTHead().insertRow();
      for (const h of ["severity", "source", "what", "since (UTC)", ""]) {
        const th = document.createElement("th");
        th.textContent = h;
        head.appendChild(th);
      }
      const body = table.createTBody();
      for (const a of alarms) {
        const tr = body.insertRow();
        const severity = document.createElement("span");
        severity.className = "severity " + String(a.severity).replace(/[^a-z]/g, "");
        severity.textContent = a.severity;
        tr.insertCell().appendChild(severity);
        cell(tr, a.source);
        cell(tr, a.message + (a.count > 1 ? " (×" + a.count + ")" : ""));
        cell(tr, clock(a.since));
        if (a.clearable) {
          const form = document.createElement("form");
          form.method = "post";
          form.action = "/alarms/clear";
          form.className = "inline";
          for (const [name, value] of [["csrf_token", csrf], ["key", a.key]]) {
            const input = document.createElement("input");
            input.type = "hidden";
            input.name = name;
            input.value = value;
            form.appendChild(input);
          }
          const button = document.createElement("button");
          button.type = "submit";
          button.textContent = "Clear";
          form.appendChild(button);
          tr.insertCell().appendChild(form);
        } else cell(tr, "clears itself");
      }
      parts.push(table);
    }
    if (data.dropped) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = data.dropped + " older alarms were dropped.";
      parts.push(p);
    }
    section.replaceChildren(...parts);
  }

  async function refreshDashboard() {
    const [queues, interactions, agents, alarms] = await Promise.all([
      getJSON("/api/v1/queues"), getJSON("/api/v1/interactions"), getJSON("/api/v1/agents"), getJSON("/api/v1/alarms")]);
    drawAlarms(alarms);
    const level = column("queues", 4);
    fill("queues", queues.map((q) => [q.name, q.waiting, q.longest_wait === undefined ? "" : Math.round(q.longest_wait) + " s",
      memberSummary(q.members), level[String(q.name)] || "", q.answered, q.abandoned]));
    fill("interactions", interactions.map(interactionRow));
    fill("agents", agentRows(agents));
  }

  async function refreshWallboard() {
    const queues = await getJSON("/api/v1/queues");
    for (const q of queues) {
      const tile = Array.from(document.querySelectorAll("#wallboard .tile")).find((t) => t.dataset.queue === String(q.name));
      if (!tile) { location.reload(); return; }
      const values = {
        "waiting": q.waiting, "longest wait": q.longest_wait === undefined ? "" : Math.round(q.longest_wait) + " s",
        "agents": memberSummary(q.members), "answered": q.answered, "abandoned": q.abandoned,
      };
      for (const figure of tile.querySelectorAll(".figure")) {
        if (!(figure.dataset.figure in values)) continue;  // SL today: drawn by the server
        const v = values[figure.dataset.figure];
        figure.querySelector(".value").textContent = v === undefined || v === null ? "" : String(v);
      }
    }
    fill("agents", agentRows(await getJSON("/api/v1/agents")));
  }

  // the desk refreshes itself (desk.js) from the events this file passes on as DOM events
  const refresh = { dashboard: refreshDashboard, wallboard: refreshWallboard }[page];
  let pending = null;
  function scheduleRefresh() {
    if (pending || !refresh) return;
    pending = setTimeout(() => { pending = null; refresh().catch((e) => { status.textContent = String(e); }); }, 150);
  }

  function describe(e) {
    const parts = [];
    for (const key of ["Queue", "Agent", "CallerIDNum", "CallerIDName", "Position", "Cause", "Digit"]) {
      if (e[key] !== undefined) parts.push(key + "=" + e[key]);
    }
    return (e.timestamp || "").slice(11, 19) + " " + e.event + (e.interaction ? " [" + e.interaction + "]" : "") + " " + parts.join(" ");
  }

  // Devices page: headset level meters, from DeviceLevel events (about 5 a second per open headset).
  function showLevel(e) {
    for (const [direction, key] of [["input", "InputDbfs"], ["output", "OutputDbfs"]]) {
      const dbfs = Number(e[key]);
      if (!Number.isFinite(dbfs)) continue;
      // Matched by dataset, never by building a selector from the (attacker-influenced) device name.
      for (const el of document.querySelectorAll(".level, .level-text")) {
        if (el.dataset.device !== String(e.Device) || el.dataset.direction !== direction) continue;
        if (el.tagName === "METER") el.value = Math.max(-60, Math.min(0, dbfs));
        else el.textContent = dbfs <= -60 ? "silent" : dbfs.toFixed(1) + " dBFS";
      }
    }
  }

  let delay = 500;
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/events");
    ws.addEventListener("open", () => {
      delay = 500;
      status.textContent = "live";
      scheduleRefresh();
      document.dispatchEvent(new CustomEvent("centralita:live"));
    });
    ws.addEventListener("message", (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      // Too frequent for the event log and for refreshes; only the devices page shows it.
      if (e.event === "DeviceLevel") { if (page === "devices") showLevel(e); return; }
      if (page === "devices") return;
      document.dispatchEvent(new CustomEvent("centralita:event", { detail: e }));  // for desk.js
      if (e.event === "ChatTyping") return;  // too chatty for the event log
      if (eventsList) {
        const li = document.createElement("li");
        li.textContent = describe(e);
        eventsList.insertBefore(li, eventsList.firstChild);
        while (eventsList.childElementCount > 50) eventsList.removeChild(eventsList.lastChild);
      }
      scheduleRefresh();
    });
    ws.addEventListener("close", (c) => {
      status.textContent = "live updates lost (" + (c.reason || c.code) + "); reconnecting";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }
  connect();

  // Logs page: poll for records newer than the last one shown, with the page's filters.
  function tailLogs() {
    const table = document.getElementById("logs");
    if (!table) return;
    const params = new URLSearchParams(location.search);
    let last = 0;
    for (const row of table.tBodies[0].rows) last = Math.max(last, Number(row.cells[0].textContent));
    async function poll() {
      params.set("after", String(last));
      try {
        const records = await getJSON("/api/v1/logs?" + params.toString());
        for (const r of records) {
          const tr = document.createElement("tr");
          const when = new Date(r.time * 1000).toISOString().replace("T", " ").slice(0, 19);
          for (const v of [r.seq, when, r.level, r.logger, r.message]) cell(tr, v);
          table.tBodies[0].appendChild(tr);
          last = Math.max(last, r.seq);
        }
        while (table.tBodies[0].rows.length > 1000) table.tBodies[0].deleteRow(0);
      } catch (e) { /* keep polling: the engine may be restarting */ }
      setTimeout(poll, 2000);
    }
    setTimeout(poll, 2000);
  }
})();
