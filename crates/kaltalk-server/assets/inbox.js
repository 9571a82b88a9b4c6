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
    // The server tells nobody of what is on their screen.
    send({ type: "viewing", conversation_id: conversation });
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

  // Bulk selection: the bar shows while any conversation is ticked, and ticks survive the
  // list's live refreshes.
  var picked = {};
  function syncBulk() {
    var n = 0;
    document.querySelectorAll("[data-bulk-pick]").forEach(function (box) {
      if (picked[box.value]) box.checked = true;
      if (box.checked) n++;
    });
    var bar = document.getElementById("bulk");
    if (bar) bar.hidden = n === 0;
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = n + " selected";
  }
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-bulk-pick]")) return;
    if (box.checked) picked[box.value] = true; else delete picked[box.value];
    syncBulk();
  });

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

  // The header (status, who handles it, assignee) follows the conversation's events.
  var headerTimer = null;
  function refreshHeader() {
    clearTimeout(headerTimer);
    headerTimer = setTimeout(function () {
      if (!conversation || !document.getElementById("thread-head")) return;
      // A header form being used (a label half typed, a snooze date) is not swapped away.
      var active = document.activeElement;
      if (active && active.closest && active.closest("#thread-head") && /^(INPUT|SELECT)$/.test(active.tagName)) return;
      htmx.ajax("GET", "/inbox/conversations/" + conversation + "/header?" + root.dataset.query, { target: "#thread-head", swap: "outerHTML" });
    }, 150);
  }

  // One pane at a time on a phone: the list, or the open conversation.
  function showPane(pane) { root.dataset.pane = pane; }

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
    socket.onopen = function () {
      backoff = 1000;
      root.dataset.live = "on";
      send({ type: "viewing", conversation_id: conversation });
    };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.event_id) lastEvent = data.event_id;
      if (data.type === "notification.created" || data.type === "notification.read") {
        document.dispatchEvent(new CustomEvent("kaltalk:notifications"));
        return;
      }
      if (data.type === "typing") {
        if (data.conversation_id === conversation) showTyping(data.typing);
        return;
      }
      if (data.conversation_id && data.conversation_id === conversation) {
        if (data.type === "message.created") { showTyping(false); refreshMessages(); }
        if (data.type === "message.updated") refreshMessages();
        if (data.type === "conversation.seen" && data.payload && data.payload.by === "contact") refreshMessages();
        if (data.type === "conversation.updated" || data.type === "conversation.escalated") { refreshHeader(); refreshMessages(); }
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
    var target = event.detail.target;
    if (target && target.id === "conversation") {
      currentConversation();
      markSelected();
      showPane(conversation ? "conversation" : "list");
      root.removeAttribute("data-contact");
    }
    if (target && target.id === "conversation-list") syncBulk();
    if (target && (target.id === "conversation" || (target.id === "messages" && stickToBottom))) scrollMessages();
  });
  // A refresh keeps the agent where they are reading, unless they were at the newest
  // message or have just sent one.
  var stickToBottom = true;
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var box = event.detail.target;
    if (!box || box.id !== "messages") return;
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    var sent = elt && elt.matches && elt.matches("form.composer");
    stickToBottom = sent || box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  });

  document.addEventListener("click", function (event) {
    var el = event.target instanceof Element ? event.target : null;
    if (!el) return;
    var back = el.closest("[data-back]");
    if (back) {
      event.preventDefault();
      showPane("list");
      history.pushState(null, "", back.getAttribute("href"));
      return;
    }
    if (el.closest("[data-contact-toggle]")) {
      var open = root.dataset.contact !== "open";
      if (open) root.dataset.contact = "open"; else root.removeAttribute("data-contact");
      document.querySelectorAll("[data-contact-toggle]").forEach(function (b) { b.setAttribute("aria-expanded", open ? "true" : "false"); });
      var panel = document.getElementById("contact-panel");
      if (open && panel) { panel.setAttribute("tabindex", "-1"); panel.focus(); }
      return;
    }
    var thumb = el.closest("[data-viewer]");
    if (thumb && window.HTMLDialogElement) {
      event.preventDefault();
      openViewer(thumb.getAttribute("href"), thumb.querySelector("img") ? thumb.querySelector("img").alt : "");
    }
  });

  // Images open in a viewer over the page (Escape or the button closes it).
  function openViewer(src, alt) {
    var dialog = document.getElementById("image-viewer");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "image-viewer";
      dialog.className = "viewer";
      dialog.setAttribute("aria-label", "Image");
      var form = document.createElement("form");
      form.method = "dialog";
      var close = document.createElement("button");
      close.type = "submit";
      close.className = "secondary";
      close.textContent = "Close";
      form.appendChild(close);
      var img = document.createElement("img");
      dialog.appendChild(form);
      dialog.appendChild(img);
      dialog.addEventListener("click", function (e) { if (e.target === dialog) dialog.close(); });
      document.body.appendChild(dialog);
    }
    var image = dialog.querySelector("img");
    image.src = src;
    image.alt = alt;
    dialog.showModal();
  }

  // Snooze presets are the agent's own clock: "tonight" is 18:00 where they are.
  function snoozeUntil(preset, dateValue) {
    var d = new Date();
    if (preset === "1h") return new Date(d.getTime() + 3600 * 1000);
    if (preset === "tonight") { d.setHours(18, 0, 0, 0); if (d <= new Date()) d.setDate(d.getDate() + 1); return d; }
    if (preset === "tomorrow") { d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); return d; }
    if (preset === "next-week") { d.setDate(d.getDate() + ((8 - d.getDay()) % 7 || 7)); d.setHours(9, 0, 0, 0); return d; }
    if (preset === "date" && dateValue) return new Date(dateValue);
    return null;
  }
  document.addEventListener("change", function (event) {
    var el = event.target;
    var form = el.closest && el.closest("[data-snooze-form]");
    if (!form) return;
    var preset = form.querySelector("[data-snooze-preset]").value;
    var at = form.querySelector('input[name="snooze_at"]');
    if (el.matches("[data-snooze-preset]") && preset === "date") { at.hidden = false; at.focus(); return; }
    var until = snoozeUntil(preset, at.value);
    if (!until) return;
    form.querySelector('input[name="snooze_until"]').value = until.toISOString();
    form.requestSubmit();
  });
  window.addEventListener("popstate", function () {
    showPane(/[?&]c=/.test(location.search) && conversation ? "conversation" : "list");
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
  var cannedPick = 0;

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
      item.setAttribute("aria-selected", i === cannedPick ? "true" : "false");
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
    cannedPick = 0;
    render(matches(event.target.value));
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "reply-text") return;
    var list = matches(event.target.value);
    var box = suggestions();
    if (!list.length || !box || box.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      cannedPick = (cannedPick + (event.key === "ArrowDown" ? 1 : list.length - 1)) % list.length;
      render(list);
    } else if (event.key === "Enter" || event.key === "Tab") {
      insert(list[cannedPick]);
    } else if (event.key === "Escape") {
      render([]);
    } else return;
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);

  scrollMessages();
  connect();
})();
