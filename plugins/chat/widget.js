/* Centralita web chat widget. Paste the snippet from /chat/snippet into a page.
 * Everything a visitor or agent writes is shown with textContent: never parsed as HTML. */
(function () {
  "use strict";
  if (window.__centralitaChat) { return; }
  var script = document.currentScript;
  var base = new URL(script ? script.src : "/chat/widget.js", window.location.href);
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/chat/ws";
  var TOKEN_KEY = "centralita-chat-token";
  var ws = null, backoff = 500, typingTimer = null, typingSent = false, pending = [];
  // the newest agent message on screen, and the newest one we told the server the visitor has seen
  var lastShownOutbound = "", lastSeenSent = "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }
  var box = el("div", {id: "centralita-chat", style: "position:fixed;bottom:16px;right:16px;width:300px;" +
    "font:14px sans-serif;background:#fff;border:1px solid #888;border-radius:8px;z-index:2147483647"});
  var header = el("div", {style: "padding:8px;background:#234;color:#fff;border-radius:8px 8px 0 0"}, "Chat with us");
  var status = el("div", {id: "centralita-chat-status", style: "padding:4px 8px;color:#555;font-size:12px"}, "Connecting…");
  var log = el("div", {id: "centralita-chat-log", style: "height:220px;overflow-y:auto;padding:8px"});
  var typing = el("div", {id: "centralita-chat-typing", style: "padding:0 8px;color:#888;font-size:12px;min-height:16px"});
  var form = el("form", {style: "display:flex;border-top:1px solid #ccc"});
  var input = el("input", {id: "centralita-chat-input", type: "text", maxlength: "2000",
    placeholder: "Write a message…", style: "flex:1;border:0;padding:8px"});
  var send = el("button", {id: "centralita-chat-send", type: "submit"}, "Send");
  form.appendChild(input); form.appendChild(send);
  var tools = el("div", {style: "padding:4px 8px;font-size:12px;border-top:1px solid #eee"});
  var file = el("input", {id: "centralita-chat-file", type: "file", style: "max-width:150px"});
  var mailLink = el("a", {id: "centralita-chat-transcript", href: "#", style: "margin-left:8px"}, "Email me this chat");
  tools.appendChild(file); tools.appendChild(mailLink);
  [header, status, log, typing, form, tools].forEach(function (n) { box.appendChild(n); });

  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    var token = localStorage.getItem(TOKEN_KEY);
    if (!chosen || !token) { return; }
    fetch(base.origin + "/chat/upload", {method: "POST", body: chosen, headers: {
      "X-Chat-Token": token, "X-Filename": chosen.name, "Content-Type": chosen.type || "application/octet-stream"}})
      .then(function (r) { return r.json(); })
      .then(function (answer) { if (answer.error) { status.textContent = "File not sent: " + answer.error; } })
      .catch(function () { status.textContent = "File not sent"; });
    file.value = "";
  });
  mailLink.addEventListener("click", function (event) {
    event.preventDefault();
    var address = window.prompt("Send the transcript to which email address?");
    if (address) { transmit({type: "transcript", email: address.trim()}); }
  });

  function show(direction, text, id) {
    if (id && log.querySelector('[data-id="' + id + '"]')) { return; }
    var line = el("div", {"class": "cc-msg cc-" + direction, "data-id": id || "",
      style: "margin:4px 0;text-align:" + (direction === "inbound" ? "right" : "left")});
    line.appendChild(el("span", {style: "display:inline-block;padding:4px 8px;border-radius:6px;background:" +
      (direction === "inbound" ? "#def" : "#eee")}, text));
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
    if (direction === "outbound" && id) { lastShownOutbound = id; }
  }
  // "read" means a person could see it: only while the page is visible (a background tab waits).
  function reportSeen() {
    if (!lastShownOutbound || lastShownOutbound === lastSeenSent) { return; }
    if (document.visibilityState !== "visible" || !ws || ws.readyState !== 1) { return; }
    lastSeenSent = lastShownOutbound;
    ws.send(JSON.stringify({type: "seen", id: lastShownOutbound}));
  }
  document.addEventListener("visibilitychange", reportSeen);
  function minutes(seconds) { return Math.max(1, Math.round(seconds / 60)); }
  function transmit(obj) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(obj)); } else { pending.push(obj); }
  }
  function connect() {
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      backoff = 500;
      // a site that knows its visitor (logged in) may say who they are: <script ... data-name data-email>
      ws.send(JSON.stringify({type: "hello", token: localStorage.getItem(TOKEN_KEY),
                              name: (script && script.dataset.name) || "", email: (script && script.dataset.email) || ""}));
    };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "welcome") {
        localStorage.setItem(TOKEN_KEY, msg.token);
        status.textContent = "Connected";
        (msg.history || []).forEach(function (m) { show(m.direction, m.text, m.id); });
        var queued = pending; pending = [];
        queued.forEach(transmit);
        lastSeenSent = "";  // a new connection: say again what is on screen (the server ignores repeats)
        reportSeen();
      } else if (msg.type === "message") {
        show(msg.direction, msg.text, msg.id);
        reportSeen();
      } else if (msg.type === "queue") {
        status.textContent = msg.position > 0
          ? "You are number " + msg.position + " in the queue. Estimated wait: " + minutes(msg.wait) + " min"
          : "An agent is with you";
      } else if (msg.type === "typing") {
        typing.textContent = msg.on ? "The agent is typing…" : "";
      } else if (msg.type === "transcript") {
        status.textContent = "The transcript is on its way by email";
      } else if (msg.type === "error") {
        status.textContent = "Error: " + msg.reason;
      }
    };
    ws.onclose = function () {
      status.textContent = "Reconnecting…";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    transmit({type: "message", text: text});
    input.value = "";
    typingSent = false;
  });
  input.addEventListener("input", function () {
    if (!typingSent) { transmit({type: "typing", on: true}); typingSent = true; }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { transmit({type: "typing", on: false}); typingSent = false; }, 2000);
  });
  function start() { document.body.appendChild(box); connect(); }
  window.__centralitaChat = {box: box};
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
