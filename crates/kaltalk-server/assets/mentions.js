// @mentions in a private note: typing "@" and the start of a teammate's name (or email)
// in the composer, while "Private note" is chosen, offers the matching members of the
// organization in a listbox above the composer (ArrowUp/Down move, Enter or Tab picks,
// Escape closes; a click or a tap picks too). Picking writes "@Name " and adds the
// person's id to the hidden `mentions` field, a hint the server checks: who is mentioned
// is decided by the server from the text. A reply to the customer never offers anyone.
// The conversation pane is swapped by htmx, so the elements are looked up when needed:
//   #teammates (JSON: [{id, name, email}]), form.composer, #reply-text, #mention-list
//   (ul role=listbox), #mention-status (role=status), input[name=mentions] (hidden).
(function () {
  "use strict";
  var MAX_SHOWN = 8;
  var teammates = [];
  try { teammates = JSON.parse(document.getElementById("teammates").textContent) || []; } catch (e) { teammates = []; }

  var state = null; // while open: {start (index of "@"), caret, found: [teammate], at}
  var dismissed = -1; // the "@" whose list was closed with Escape: not reopened for it

  function el(id) { return document.getElementById(id); }

  function noteMode(textarea) {
    var form = textarea.form;
    var note = form && form.querySelector('input[name="kind"][value="note"]');
    return !!(note && note.checked);
  }

  // The "@query" that ends at the caret: "@" at the start or after a non-word character,
  // then at most 40 characters without "@" or a line break, starting with a letter.
  function typed(textarea) {
    if (textarea.selectionStart !== textarea.selectionEnd) return null;
    var caret = textarea.selectionStart;
    var before = textarea.value.slice(0, caret);
    var m = /(^|[^\w@])@([^\s@][^@\n]{0,39})$/.exec(before);
    if (!m) return null;
    return { start: caret - m[2].length - 1, caret: caret, query: m[2].toLowerCase() };
  }

  function matching(query) {
    return teammates.filter(function (t) {
      var name = t.name.toLowerCase();
      return name.indexOf(query) === 0 ||
        name.split(/\s+/).some(function (word) { return word.indexOf(query) === 0; }) ||
        t.email.toLowerCase().indexOf(query) === 0;
    }).slice(0, MAX_SHOWN);
  }

  function close() {
    var list = el("mention-list"), textarea = el("reply-text");
    state = null;
    if (list) { list.hidden = true; list.textContent = ""; list.classList.remove("inside"); }
    if (textarea) textarea.removeAttribute("aria-activedescendant");
    var status = el("mention-status");
    if (status) status.textContent = "";
  }

  function open(textarea, at) {
    var list = el("mention-list");
    if (!list) return;
    var found = matching(at.query);
    if (!found.length) { close(); return; }
    var was = state;
    state = { start: at.start, caret: at.caret, found: found, at: 0 };
    if (was && was.start === at.start && was.found[was.at]) {
      // Typing on keeps the chosen person chosen while they still match.
      var keep = found.indexOf(was.found[was.at]);
      if (keep >= 0) state.at = keep;
    }
    list.textContent = "";
    found.forEach(function (t, i) {
      var option = document.createElement("li");
      option.id = "mention-option-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("data-index", String(i));
      var name = document.createElement("span");
      name.className = "mention-name";
      name.textContent = t.name;
      var email = document.createElement("span");
      email.className = "mention-email";
      email.textContent = t.email;
      option.append(name, " ", email);
      list.append(option);
    });
    list.hidden = false;
    list.classList.remove("inside");
    // Above the composer while there is room; otherwise inside it, under the text.
    if (list.getBoundingClientRect().top < 0) list.classList.add("inside");
    select(state.at);
    var status = el("mention-status");
    if (status) status.textContent = found.length === 1 ? "1 teammate" : found.length + " teammates";
  }

  function select(index) {
    var list = el("mention-list"), textarea = el("reply-text");
    if (!state || !list || !textarea) return;
    state.at = index;
    Array.prototype.forEach.call(list.children, function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    var chosen = list.children[index];
    textarea.setAttribute("aria-activedescendant", chosen.id);
    chosen.scrollIntoView({ block: "nearest" });
  }

  function pick(index) {
    var textarea = el("reply-text"), t = state && state.found[index];
    if (!textarea || !t) return;
    var start = state.start, caret = state.caret;
    close();
    textarea.focus();
    textarea.setRangeText("@" + t.name + " ", start, caret, "end");
    var hint = textarea.form && textarea.form.querySelector('input[name="mentions"]');
    if (hint) {
      var ids = hint.value.split(" ").filter(Boolean);
      if (ids.indexOf(t.id) < 0) ids.push(t.id);
      hint.value = ids.join(" ");
    }
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function update(textarea) {
    var at = noteMode(textarea) ? typed(textarea) : null;
    if (!at) dismissed = -1;
    if (!at || at.start === dismissed) { close(); return; }
    open(textarea, at);
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "reply-text") update(event.target);
  });
  // Moving the caret elsewhere (a click, Home) follows what is now before it.
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    var option = target.closest("#mention-list [role=option]");
    if (option) { pick(Number(option.getAttribute("data-index"))); return; }
    if (target.id === "reply-text") { update(target); return; }
    if (state) close();
  });
  // Keeps the text focused when an option is pressed (mouse or touch).
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("#mention-list")) event.preventDefault();
  });
  document.addEventListener("change", function (event) {
    if (event.target.name === "kind" && event.target.form && event.target.form.matches("form.composer")) {
      var textarea = el("reply-text");
      if (textarea) update(textarea);
    }
  });
  // Before the page's own keys (Ctrl+Enter, canned responses): the open list has them.
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "reply-text" || !state) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var n = state.found.length;
    switch (event.key) {
      case "ArrowDown": select((state.at + 1) % n); break;
      case "ArrowUp": select((state.at + n - 1) % n); break;
      case "Enter":
      case "Tab":
        if (event.shiftKey) return;
        pick(state.at);
        break;
      case "Escape":
        dismissed = state.start;
        close();
        break;
      default: return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
  document.addEventListener("keyup", function (event) {
    if (event.target.id !== "reply-text") return;
    if (/^(ArrowLeft|ArrowRight|Home|End|PageUp|PageDown)$/.test(event.key)) update(event.target);
  });
  // A sent note takes its mentions with it; a new conversation pane starts without any.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!event.detail.successful || !form.matches || !form.matches("form.composer")) return;
    var hint = form.querySelector('input[name="mentions"]');
    if (hint) hint.value = "";
    close();
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (state && !el("mention-list")) state = null;
  });
})();
