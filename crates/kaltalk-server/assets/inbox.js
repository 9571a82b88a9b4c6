// The live inbox: a WebSocket feed of the organization's events refreshes the list and the
// open conversation (htmx swaps server-rendered partials), plus typing and shortcuts.
(function () {
  "use strict";
  var root = document.getElementById("inbox");
  if (!root || !window.htmx) return;
  var conversation = root.dataset.conversation || null;
  var lastEvent = null;
  var socket = null;
  var backoff = 1000;
  var listTimer = null;
  var typingTimer = null;
  var typingSentAt = 0;

  function currentConversation() {
    var thread = document.querySelector("#conversation .thread");
    conversation = thread ? thread.dataset.conversation : null;
  }

  function scrollMessages() {
    var box = document.getElementById("messages");
    if (box) box.scrollTop = box.scrollHeight;
  }

  function markSelected() {
    document.querySelectorAll("[data-conversation-link]").forEach(function (link) {
      if (link.dataset.conversationLink === conversation) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
  }

  function refreshList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(function () {
      var url = "/inbox/list?" + root.dataset.query + (conversation ? "&c=" + conversation : "");
      htmx.ajax("GET", url, { target: "#conversation-list", swap: "innerHTML" });
    }, 250);
  }

  function refreshMessages() {
    if (conversation) {
      htmx.ajax("GET", "/inbox/conversations/" + conversation + "/messages", { target: "#messages", swap: "innerHTML" });
    }
  }

  function showTyping(on) {
    var line = document.getElementById("typing");
    if (!line) return;
    line.hidden = !on;
    clearTimeout(showTyping.timer);
    if (on) showTyping.timer = setTimeout(function () { line.hidden = true; }, 6000);
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/inbox/ws" + (lastEvent ? "?after=" + encodeURIComponent(lastEvent) : ""));
    socket.onopen = function () { backoff = 1000; root.dataset.live = "on"; };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.event_id) lastEvent = data.event_id;
      if (data.type === "typing") {
        if (data.conversation_id === conversation) showTyping(data.typing);
        return;
      }
      if (data.conversation_id && data.conversation_id === conversation) {
        if (data.type === "message.created") { showTyping(false); refreshMessages(); }
        if (data.type === "message.updated") refreshMessages();
        if (data.type === "conversation.seen" && data.payload && data.payload.by === "contact") refreshMessages();
      }
      if (data.conversation_id) refreshList();
    };
    socket.onclose = function () {
      root.dataset.live = "off";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "conversation") {
      currentConversation();
      markSelected();
    }
    scrollMessages();
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form.composer")) {
      form.querySelector("textarea").value = "";
      send({ type: "typing", conversation_id: conversation, typing: false });
    }
  });
  document.addEventListener("input", function (event) {
    if (!conversation || event.target.id !== "reply-text") return;
    var now = Date.now();
    if (now - typingSentAt > 2000) {
      typingSentAt = now;
      send({ type: "typing", conversation_id: conversation, typing: true });
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () {
      typingSentAt = 0;
      send({ type: "typing", conversation_id: conversation, typing: false });
    }, 3000);
  });
  document.addEventListener("keydown", function (event) {
    var inField = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.target.id === "reply-text" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    if (inField || event.ctrlKey || event.metaKey || event.altKey) return;
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-conversation-link]"));
    var index = links.findIndex(function (l) { return l.dataset.conversationLink === conversation; });
    var textarea = document.getElementById("reply-text");
    if (event.key === "j" && links.length) { links[Math.min(index + 1, links.length - 1)].click(); }
    else if (event.key === "k" && links.length) { links[Math.max(index - 1, 0)].click(); }
    else if ((event.key === "r" || event.key === "n") && textarea) {
      var radio = document.querySelector('input[name="kind"][value="' + (event.key === "r" ? "text" : "note") + '"]');
      if (radio) radio.checked = true;
      textarea.focus();
    } else if (event.key === "e") {
      var button = document.querySelector('[data-shortcut="e"]');
      if (button) button.click();
    } else return;
    event.preventDefault();
  });

  // Canned responses: "/" then a shortcut shows matches; Enter or Tab inserts one.
  var canned = [];
  try { canned = JSON.parse(document.getElementById("canned-responses").textContent) || []; } catch (e) { canned = []; }
  var picked = 0;

  function suggestions() { return document.getElementById("canned-suggestions"); }

  function matches(value) {
    var m = /^\/([\w-]*)$/.exec(value);
    if (!m) return [];
    return canned.filter(function (c) { return c.shortcut.indexOf(m[1].toLowerCase()) === 0; }).slice(0, 8);
  }

  function render(list) {
    var box = suggestions();
    if (!box) return;
    box.innerHTML = "";
    list.forEach(function (c, i) {
      var item = document.createElement("li");
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", i === picked ? "true" : "false");
      item.textContent = "/" + c.shortcut + " — " + c.text;
      item.addEventListener("mousedown", function (event) { event.preventDefault(); insert(c); });
      box.appendChild(item);
    });
    box.hidden = list.length === 0;
  }

  function insert(c) {
    var textarea = document.getElementById("reply-text");
    if (!textarea) return;
    textarea.value = c.text;
    render([]);
    textarea.focus();
  }

  document.addEventListener("input", function (event) {
    if (event.target.id !== "reply-text") return;
    picked = 0;
    render(matches(event.target.value));
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "reply-text") return;
    var list = matches(event.target.value);
    var box = suggestions();
    if (!list.length || !box || box.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      picked = (picked + (event.key === "ArrowDown" ? 1 : list.length - 1)) % list.length;
      render(list);
    } else if (event.key === "Enter" || event.key === "Tab") {
      insert(list[picked]);
    } else if (event.key === "Escape") {
      render([]);
    } else return;
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);

  scrollMessages();
  connect();
})();
