// The setup screens' small behaviours, without inline scripts (the CSP forbids them):
// copy buttons, the colour picker beside its text field, the widget preview, and the
// business hours' time zone preselected from the browser's.
(function () {
  "use strict";
  var d = document;

  // Copy buttons: data-copy names the element whose text is copied.
  d.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var id = button.getAttribute("data-copy"), source = d.getElementById(id);
    var status = d.querySelector('[data-copied-for="' + id + '"]');
    if (!source) return;
    var say = function (text) { if (status) status.textContent = text; };
    var fallback = function () {
      var range = d.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      say(d.execCommand && d.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { say("Copied."); }, fallback);
    } else {
      fallback();
    }
  });

  // The colour picker shows once scripts run; it and the text field follow each other.
  function pickers() {
    [].forEach.call(d.querySelectorAll("input[type=color][data-color-for]"), function (picker) {
      var text = d.getElementById(picker.getAttribute("data-color-for"));
      if (!text) return;
      picker.hidden = false;
      picker.addEventListener("input", function () { text.value = picker.value; });
      text.addEventListener("input", function () {
        if (/^#[0-9a-f]{6}$/i.test(text.value.trim())) picker.value = text.value.trim().toLowerCase();
      });
    });
  }

  // "Send a test message" on the settings page reloads the preview frame with the chat open.
  d.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("[data-preview-open]") : null;
    if (!link) return;
    var frame = d.getElementById(link.getAttribute("data-preview-open"));
    if (!frame) return;
    event.preventDefault();
    frame.src = link.getAttribute("href");
    frame.scrollIntoView({ block: "nearest" });
  });

  // On the preview page itself: open the chat when asked to.
  function preview() {
    if (!d.body || d.body.getAttribute("data-preview-open") === null) return;
    var w = window;
    // Queue the command if the loader has not run yet; it replays the queue.
    w.KalTalk = w.KalTalk || function () { (w.KalTalk.q = w.KalTalk.q || []).push(arguments); };
    w.KalTalk("open");
  }

  if (d.readyState === "loading") {
    d.addEventListener("DOMContentLoaded", function () { pickers(); preview(); });
  } else {
    pickers();
    preview();
  }
})();
