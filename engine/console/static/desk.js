// Centralita agent desk: live without reloads. Events from WS /api/v1/events (console.js owns the
// socket and passes each event on as a "centralita:event" DOM event) make it fetch
// GET /desk/live (server-rendered sections, every outside value escaped by the server) and merge them
// in: offers are replaced, conversations are matched by id so a half-typed reply survives. Forms are
// submitted in the background. Nothing from an event is inserted as HTML (textContent only); the
// fragment is parsed with DOMParser (inert: no scripts run) and comes from this same origin.
"use strict";

(function () {
  if (document.body.dataset.page !== "desk") return;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const live = document.getElementById("desk-live");
  const status = document.getElementById("live-status") || document.createElement("span");

  async function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify(body),
    });
  }

  // ------------------------------------------------------------------ refresh and merge
  let pending = null, running = false, again = false;
  function scheduleRefresh() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, 120);
  }
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      const r = await fetch("/desk/live", { credentials: "same-origin" });
      if (r.redirected || !r.ok) { status.textContent = "desk refresh failed: " + r.status; return; }
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      merge(doc);
    } catch (e) {
      status.textContent = "desk refresh failed: " + e;
    } finally {
      running = false;
      if (again) { again = false; scheduleRefresh(); }
    }
  }
  function swap(id, doc) {
    const fresh = doc.getElementById(id), old = document.getElementById(id);
    if (fresh && old) { const node = document.adoptNode(fresh); old.replaceWith(node); wire(node); }
  }
  function merge(doc) {
    swap("state-section", doc);
    swap("preview-section", doc);
    swap("offers", doc);
    swap("callbacks-section", doc);
    const target = document.getElementById("conversations");
    const incoming = doc.getElementById("conversations");
    if (!target || !incoming) return;
    const fresh = new Map();
    for (const a of incoming.querySelectorAll("article.conversation")) fresh.set(a.dataset.interaction, a);
    for (const a of target.querySelectorAll("article.conversation")) {
      const next = fresh.get(a.dataset.interaction);
      if (!next) { a.remove(); continue; }
      for (const part of [".status", ".transcript", ".pop", ".callback-list"]) {
        const mine = a.querySelector(part), theirs = next.querySelector(part);
        if (mine && theirs) mine.replaceWith(document.adoptNode(theirs));
      }
      fresh.delete(a.dataset.interaction);
    }
    const placeholder = target.querySelector("p.muted");
    for (const a of fresh.values()) {
      const node = document.adoptNode(a);
      target.appendChild(node);
      wire(node);
    }
    fallbackTranscripts();
    if (target.querySelector("article.conversation")) { if (placeholder) placeholder.remove(); }
    else if (!placeholder) { const p = document.createElement("p"); p.className = "muted"; p.textContent = "None right now."; target.appendChild(p); }
  }

  // ------------------------------------------------------------------ forms, canned responses, typing
  function wire(root) {
    for (const form of root.querySelectorAll("form[data-live]")) {
      if (form.dataset.wired) continue;
      form.dataset.wired = "1";
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const button = form.querySelector("button[type=submit]");
        if (button) button.disabled = true;
        const body = new URLSearchParams(new FormData(form));
        const r = await fetch(form.action, { method: "POST", credentials: "same-origin", body,
          headers: { "x-desk-live": "1", "x-csrf-token": csrf } });
        if (button) button.disabled = false;
        if (!r.ok) {
          let message = String(r.status);
          try { message = (await r.json()).error || message; } catch (_) { /* an HTML error page */ }
          form.dataset.error = message;
          form.title = message;
          status.textContent = "failed: " + message;
          return;
        }
        delete form.dataset.error;
        if (form.classList.contains("reply")) {
          const text = form.querySelector("textarea");
          text.value = "";
          stopTyping(form);
        } else if (!form.classList.contains("disposition")) {
          form.reset();
        }
        scheduleRefresh();
      });
    }
    for (const select of root.querySelectorAll("select.canned")) {
      select.addEventListener("change", () => {
        const option = select.selectedOptions[0];
        if (!option || !option.value) return;
        const text = select.closest("form").querySelector("textarea");
        const start = text.selectionStart ?? text.value.length, end = text.selectionEnd ?? text.value.length;
        text.value = text.value.slice(0, start) + option.dataset.text + text.value.slice(end);
        text.focus();
        select.value = "";
        startTyping(select.closest("form"));
      });
    }
    for (const form of root.querySelectorAll("form.reply")) {
      form.querySelector("textarea").addEventListener("input", () => startTyping(form));
    }
  }
  const typingState = new WeakMap();
  function interactionOf(form) { return form.closest("article").dataset.interaction; }
  function startTyping(form) {
    let state = typingState.get(form);
    if (!state) { state = { on: false, timer: null }; typingState.set(form, state); }
    if (!state.on) { state.on = true; post("/api/v1/interactions/" + encodeURIComponent(interactionOf(form)) + "/typing", { on: true }); }
    clearTimeout(state.timer);
    state.timer = setTimeout(() => stopTyping(form), 3000);
  }
  function stopTyping(form) {
    const state = typingState.get(form);
    if (!state || !state.on) return;
    state.on = false;
    clearTimeout(state.timer);
    post("/api/v1/interactions/" + encodeURIComponent(interactionOf(form)) + "/typing", { on: false });
  }
  wire(live);

  // Messages seen on the event stream, kept for this tab: shown only where the server has no
  // transcript for a conversation (an engine whose channel keeps no message store).
  function transcriptKey(id) { return "centralita-transcript:" + id; }
  function remember(id, who, text) {
    if (!id) return;
    let lines = [];
    try { lines = JSON.parse(sessionStorage.getItem(transcriptKey(id)) || "[]"); } catch (_) { lines = []; }
    lines.push([who, String(text).slice(0, 4000)]);
    sessionStorage.setItem(transcriptKey(id), JSON.stringify(lines.slice(-100)));
    fallbackTranscripts();
  }
  function fallbackTranscripts() {
    for (const article of document.querySelectorAll("article.conversation")) {
      const list = article.querySelector(".transcript");
      if (!list || (list.childElementCount && !list.dataset.fallback)) continue;
      let lines = [];
      try { lines = JSON.parse(sessionStorage.getItem(transcriptKey(article.dataset.interaction)) || "[]"); } catch (_) { lines = []; }
      if (!lines.length) continue;
      list.dataset.fallback = "1";
      list.replaceChildren(...lines.map(([who, text]) => {
        const li = document.createElement("li");
        const name = document.createElement("strong");
        name.textContent = who + ": ";
        li.append(name, document.createTextNode(text));
        return li;
      }));
    }
  }
  fallbackTranscripts();

  function showTyping(id, on) {
    for (const a of document.querySelectorAll("article.conversation")) {
      if (a.dataset.interaction !== id) continue;
      const p = a.querySelector(".typing");
      if (p) p.textContent = on ? "The customer is typing…" : "";
    }
  }

  // ------------------------------------------------------------------ events (from console.js)
  document.addEventListener("centralita:live", scheduleRefresh);
  // Only events about me or what my desk shows cause a refresh: an agent sees every event of the
  // engine, and refetching the desk for other agents' calls would cost the server for nothing.
  const me = document.body.dataset.user;
  function shown(id) {
    return !!id && Array.from(document.querySelectorAll("[data-interaction]")).some((n) => n.dataset.interaction === id);
  }
  document.addEventListener("centralita:event", (ev) => {
    const e = ev.detail || {};
    if (e.event === "ChatTyping") { if (e.Party === "visitor") showTyping(e.interaction, !!e.Typing); return; }
    if (e.event === "MessageReceived") {
      showTyping(e.interaction, false);
      if (e.Message && shown(e.interaction)) remember(e.interaction, e.CallerIDNum || "customer", e.Message);
    }
    if (e.Agent === me || shown(e.interaction) || e.event === "CallbackScheduled") scheduleRefresh();
  });
  scheduleRefresh();
})();
