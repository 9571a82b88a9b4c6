// The composer's extras: an emoji picker from the bundled set (emoji.json, loaded from our
// own origin when first opened), and files attached by the picker, by pasting an image or
// by dropping files on the composer, each shown as a chip with a remove button. The
// conversation pane is swapped by htmx, so everything is delegated from the document and
// the elements are looked up when needed:
//   form.composer, #reply-text, #reply-files (input type=file multiple name=files),
//   #attached-files (ul), #emoji-button, #emoji-picker (empty div; data-src = emoji.json).
(function () {
  "use strict";
  var MAX_FILES = 5;
  var MAX_BYTES = 10 * 1024 * 1024;
  var TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

  function el(id) { return document.getElementById(id); }
  function make(tag, props, text) {
    var node = document.createElement(tag);
    for (var key in props) node.setAttribute(key, props[key]);
    if (text != null) node.textContent = text;
    return node;
  }
  function size(n) {
    return n < 1024 ? n + " B" : n < 1048576 ? Math.round(n / 1024) + " KB" : (n / 1048576).toFixed(1) + " MB";
  }

  // ---------- files ----------

  // The files chosen so far live on the input (a file input's own list is replaced by each
  // new choice, so it is rebuilt from this one through a DataTransfer).
  function chosen(input) { return input.ktFiles || (input.ktFiles = []); }

  function say(message) {
    var list = el("attached-files");
    if (!list) return;
    var note = el("attached-files-error");
    if (!note) {
      note = make("p", { id: "attached-files-error", class: "field-error", role: "alert" });
      list.after(note);
    }
    note.textContent = message;
    note.hidden = !message;
  }

  function addFiles(files) {
    var input = el("reply-files");
    if (!input || !files || !files.length) return;
    var list = chosen(input), refused = [];
    Array.prototype.forEach.call(files, function (file) {
      if (TYPES.indexOf(file.type) < 0) refused.push(file.name + ": attach an image (PNG, JPEG, GIF, WebP) or a PDF.");
      else if (file.size > MAX_BYTES) refused.push(file.name + " is larger than 10 MB.");
      else if (!file.size) refused.push(file.name + " is empty.");
      else if (list.length >= MAX_FILES) refused.push("Attach at most " + MAX_FILES + " files.");
      else list.push(file);
    });
    sync(input);
    say(refused.filter(function (m, i) { return refused.indexOf(m) === i; }).join(" "));
  }

  function removeFile(index) {
    var input = el("reply-files");
    if (!input) return;
    chosen(input).splice(index, 1);
    sync(input);
    say("");
    var buttons = document.querySelectorAll("#attached-files .chip-remove");
    (buttons[Math.min(index, buttons.length - 1)] || el("reply-text") || input).focus();
  }

  function clearFiles() {
    var input = el("reply-files");
    if (!input) return;
    input.ktFiles = [];
    sync(input);
    say("");
  }

  // Puts the chosen files into the input (what the form sends) and draws their chips.
  function sync(input) {
    var transfer = new DataTransfer();
    chosen(input).forEach(function (file) { transfer.items.add(file); });
    input.files = transfer.files;
    var list = el("attached-files");
    if (!list) return;
    list.textContent = "";
    chosen(input).forEach(function (file, index) {
      var chip = make("li", { class: "file-chip" });
      if (/^image\//.test(file.type)) {
        // A data: URL: the page's CSP allows no blob: images.
        var thumb = make("img", { alt: "", class: "file-thumb" });
        var reader = new FileReader();
        reader.onload = function () { thumb.src = reader.result; };
        reader.readAsDataURL(file);
        chip.append(thumb);
      }
      chip.append(make("span", { class: "file-name" }, file.name), " ", make("span", { class: "muted" }, size(file.size)));
      var remove = make("button", { type: "button", class: "chip-remove", "aria-label": "Remove " + file.name, "data-file-index": String(index) }, "\u00d7");
      chip.append(remove);
      list.append(chip);
    });
    list.hidden = !chosen(input).length;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.id !== "reply-files") return;
    var picked = Array.prototype.slice.call(input.files);
    sync(input); // back to the files chosen before, then add the new ones
    addFiles(picked);
  });
  document.addEventListener("click", function (event) {
    var remove = event.target.closest && event.target.closest("#attached-files .chip-remove");
    if (remove) removeFile(Number(remove.getAttribute("data-file-index")));
  });
  // An image pasted into the reply (a screenshot) is attached; pasted text stays text.
  document.addEventListener("paste", function (event) {
    if (event.target.id !== "reply-text" || !event.clipboardData) return;
    var files = event.clipboardData.files;
    if (files && files.length && !event.clipboardData.getData("text/plain")) {
      event.preventDefault();
      addFiles(files);
    }
  });
  function composerOf(event) {
    var form = event.target.closest && event.target.closest("form.composer");
    var types = event.dataTransfer && event.dataTransfer.types;
    return form && types && Array.prototype.indexOf.call(types, "Files") >= 0 ? form : null;
  }
  document.addEventListener("dragover", function (event) {
    var form = composerOf(event);
    if (!form) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    form.classList.add("dropping");
  });
  document.addEventListener("dragleave", function (event) {
    var form = composerOf(event);
    if (form && !form.contains(event.relatedTarget)) form.classList.remove("dropping");
  });
  document.addEventListener("drop", function (event) {
    var form = composerOf(event);
    if (!form) return;
    event.preventDefault();
    form.classList.remove("dropping");
    addFiles(event.dataTransfer.files);
  });
  // Once the reply is sent its files go with it; after an error they stay, like the text.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form.composer")) clearFiles();
  });
  document.addEventListener("reset", function (event) {
    if (event.target.matches("form.composer")) setTimeout(clearFiles);
  });

  // ---------- emoji ----------

  var emoji = null; // [{char, name, group}], once loaded
  var loading = null;

  function load(picker) {
    if (emoji) return Promise.resolve(emoji);
    if (!loading) {
      // The inbox page names the content-hashed URL (cached for a year).
      var inbox = document.getElementById("inbox");
      var src = picker.getAttribute("data-src") || (inbox && inbox.getAttribute("data-emoji-src")) || "/assets/0/emoji.json";
      loading = fetch(src, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (data) {
          emoji = [];
          data.groups.forEach(function (group) {
            group.emoji.forEach(function (e) { emoji.push({ char: e[0], name: e[1], group: group.name }); });
          });
          return emoji;
        })
        .catch(function (error) { loading = null; throw error; });
    }
    return loading;
  }

  function button() { return el("emoji-button"); }
  function picker() { return el("emoji-picker"); }
  function isOpen() { var p = picker(); return !!(p && !p.hidden && p.firstChild); }

  function open() {
    var p = picker(), b = button();
    if (!p || !b) return;
    p.textContent = "";
    p.hidden = false;
    p.setAttribute("role", "dialog");
    p.setAttribute("aria-label", "Insert an emoji");
    b.setAttribute("aria-expanded", "true");
    var search = make("input", {
      type: "search", id: "emoji-search", class: "emoji-search", placeholder: "Search emoji",
      "aria-label": "Search emoji", "aria-controls": "emoji-list", autocomplete: "off", role: "combobox",
      "aria-expanded": "true", "aria-autocomplete": "list"
    });
    var list = make("div", { id: "emoji-list", class: "emoji-list", role: "listbox", "aria-label": "Emoji" });
    var status = make("p", { class: "emoji-status muted", role: "status" }, "Loading\u2026");
    p.append(search, list, status);
    search.focus();
    load(p).then(function () { draw(""); }, function () {
      status.textContent = "The emoji could not be loaded. Try again in a moment.";
    });
  }

  function close(focusButton) {
    var p = picker(), b = button();
    if (p) { p.hidden = true; p.textContent = ""; }
    if (b) {
      b.setAttribute("aria-expanded", "false");
      if (focusButton) b.focus();
    }
  }

  function matches(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return emoji.filter(function (e) {
      return words.every(function (w) { return e.name.indexOf(w) >= 0 || e.group.toLowerCase().indexOf(w) === 0; });
    });
  }

  function draw(query) {
    var list = el("emoji-list"), search = el("emoji-search"), status = document.querySelector("#emoji-picker .emoji-status");
    if (!list || !emoji) return;
    list.textContent = "";
    var found = matches(query), group = null, row = null;
    found.forEach(function (e, index) {
      // Each group is a titled set of rows of options (the grid's arrow keys move by row).
      if (e.group !== group) {
        group = e.group;
        row = make("div", { role: "group", "aria-label": group, class: "emoji-group" });
        if (!query) row.append(make("p", { class: "emoji-group-name", "aria-hidden": "true" }, group));
        list.append(row);
      }
      var option = make("span", { role: "option", id: "emoji-" + index, class: "emoji-option", "aria-selected": "false", title: e.name, "aria-label": e.name, "data-emoji": e.char }, e.char);
      row.append(option);
    });
    status.textContent = found.length ? "" : "No emoji match \u201c" + query + "\u201d.";
    status.hidden = !!found.length;
    select(found.length ? 0 : -1);
    search.setAttribute("aria-expanded", found.length ? "true" : "false");
  }

  function options() { return Array.prototype.slice.call(document.querySelectorAll("#emoji-list [role=option]")); }

  function select(index) {
    var all = options(), search = el("emoji-search");
    all.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (!search) return;
    if (index < 0 || !all[index]) { search.removeAttribute("aria-activedescendant"); return; }
    search.setAttribute("aria-activedescendant", all[index].id);
    all[index].scrollIntoView({ block: "nearest" });
  }

  // The option in the next row up or down nearest the selected one's column (rows differ
  // in length at the end of each group).
  function vertical(all, at, step) {
    var here = all[at].getBoundingClientRect(), rowTop = null, best = at, bestGap = Infinity;
    for (var i = at + step; i >= 0 && i < all.length; i += step) {
      var box = all[i].getBoundingClientRect();
      if (Math.abs(box.top - here.top) < 2) continue;
      if (rowTop === null) rowTop = box.top;
      if (Math.abs(box.top - rowTop) >= 2) break;
      var gap = Math.abs(box.left - here.left);
      if (gap < bestGap) { bestGap = gap; best = i; }
    }
    return best;
  }

  function selected() {
    var all = options();
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute("aria-selected") === "true") return i;
    return -1;
  }

  // Writes the emoji where the cursor is in the reply (replacing a selection), as typing would.
  function insert(char) {
    var text = el("reply-text");
    close(false);
    if (!text) return;
    var start = text.selectionStart == null ? text.value.length : text.selectionStart;
    var end = text.selectionEnd == null ? start : text.selectionEnd;
    text.focus();
    text.setRangeText(char, start, end, "end");
    text.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("#emoji-button")) {
      event.preventDefault();
      if (isOpen()) close(true);
      else open();
      return;
    }
    var option = target.closest("#emoji-list [role=option]");
    if (option) { insert(option.getAttribute("data-emoji")); return; }
    if (isOpen() && !target.closest("#emoji-picker")) close(false);
  });
  document.addEventListener("input", function (event) {
    if (event.target.id === "emoji-search") draw(event.target.value.trim());
  });
  document.addEventListener("keydown", function (event) {
    if (!event.target.closest || !event.target.closest("#emoji-picker")) return;
    var all = options(), at = selected(), next = at;
    switch (event.key) {
      case "Escape": event.preventDefault(); close(true); return;
      case "Enter":
        event.preventDefault();
        if (all[at]) insert(all[at].getAttribute("data-emoji"));
        return;
      case "ArrowRight": next = at + 1; break;
      case "ArrowLeft": next = at - 1; break;
      case "ArrowDown": if (all[at]) next = vertical(all, at, 1); break;
      case "ArrowUp": if (all[at]) next = vertical(all, at, -1); break;
      case "Home": if (!event.ctrlKey) return; next = 0; break;
      case "End": if (!event.ctrlKey) return; next = all.length - 1; break;
      case "Tab": event.preventDefault(); close(true); return; // back to the button, picker closed
      default: return;
    }
    event.preventDefault();
    if (all.length) select(Math.max(0, Math.min(all.length - 1, next)));
  });
})();
