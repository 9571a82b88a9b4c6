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
