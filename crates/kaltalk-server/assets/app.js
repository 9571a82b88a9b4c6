// Small behaviours the dashboard needs without inline scripts (the CSP forbids them).
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target instanceof HTMLSelectElement && target.dataset.autosubmit !== undefined && target.form) {
    target.form.requestSubmit();
  }
});
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-confirm]") : null;
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
// The session's CSRF token goes with htmx requests to our own origin. It sits in a meta
// tag rather than in an inherited hx-headers attribute, and is never sent elsewhere.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!meta) return;
  var url;
  try { url = new URL(event.detail.path, document.baseURI); } catch (e) { return; }
  if (url.origin === window.location.origin) {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});
// The phone's menu: the sidebar slides in as a drawer; Escape or a click outside closes it.
(function () {
  var app = document.getElementById("app");
  var toggle = document.querySelector("[data-menu-toggle]");
  if (!app || !toggle) return;
  function set(open) {
    if (open) app.setAttribute("data-menu", "open"); else app.removeAttribute("data-menu");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  toggle.addEventListener("click", function () { set(app.getAttribute("data-menu") !== "open"); });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") set(false); });
  document.addEventListener("click", function (event) {
    if (app.getAttribute("data-menu") === "open" && !event.target.closest("#sidebar, [data-menu-toggle]")) set(false);
  });
})();
