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
// The bell and the tab's title follow the unread count: a page with a live socket (the
// inbox) fires "kaltalk:notifications" when one of the member's notifications is made
// or read, and the count is fetched again (the frame itself carries no count).
// While the tab is in the background, a count that grew is also a system notification
// (the browser's Notifications API, when the member allowed it on the notifications page).
var lastUnread = (function () {
  var rendered = document.querySelector("[data-notification-count]");
  return rendered ? Number(rendered.textContent) : null;
})();
// A short two-note chime, made on the spot (no audio file to fetch), when the member
// chose a sound. Browsers allow it once the page has had a click or a key press.
function chime() {
  var Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  try {
    var audio = chime.context || (chime.context = new Context());
    [880, 1320].forEach(function (frequency, i) {
      var tone = audio.createOscillator();
      var volume = audio.createGain();
      var start = audio.currentTime + i * 0.12;
      tone.frequency.value = frequency;
      volume.gain.setValueAtTime(0.0001, start);
      volume.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
      volume.gain.exponentialRampToValueAtTime(0.0001, start + 0.25);
      tone.connect(volume).connect(audio.destination);
      tone.start(start);
      tone.stop(start + 0.3);
    });
  } catch (e) { /* no sound is no harm */ }
}
function tellTheSystem(unread) {
  var grew = lastUnread !== null && unread > lastUnread;
  lastUnread = unread;
  if (grew && document.querySelector("[data-notification-sound]")) chime();
  if (!grew || !document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  var shown = new Notification("KalTalk", {
    body: unread === 1 ? "1 unread notification" : unread + " unread notifications",
    tag: "kaltalk-unread",
    icon: "/icon-192.png",
  });
  shown.onclick = function () { window.focus(); window.location.assign("/notifications"); };
}
document.addEventListener("kaltalk:notifications", function () {
  fetch("/notifications/unread", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (body) {
      if (!body || typeof body.unread !== "number") return;
      tellTheSystem(body.unread);
      document.querySelectorAll("[data-notification-count]").forEach(function (count) {
        count.textContent = String(body.unread);
        count.parentElement.hidden = body.unread === 0;
      });
      var title = document.title.replace(/^\(\d+\) /, "");
      document.title = body.unread > 0 ? "(" + body.unread + ") " + title : title;
    })
    .catch(function () {});
});
// The installable app: the service worker (at the root, so it controls every page).
if ("serviceWorker" in navigator && document.querySelector('link[rel="manifest"]')) {
  navigator.serviceWorker.register("/sw.js").catch(function () {});
}
// A time zone never saved (business hours, quiet hours) starts as this browser's, when
// it is listed.
(function () {
  var select = document.querySelector("select[data-browser-zone]");
  var zone = select && window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) { select.selectedIndex = i; return; }
  }
})();
// "Get pushes on this device": the browser asks the member, subscribes with this
// server's VAPID key, and the subscription is registered for them (the service worker
// registers it again when the browser renews it: sw.js).
function base64UrlBytes(text) {
  var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  var raw = atob(padded);
  var bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
(function () {
  var button = document.querySelector("[data-push-subscribe]");
  var status = document.getElementById("push-status");
  if (!button || !status) return;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    status.textContent = "This browser cannot get pushes. On an iPhone or iPad, add KalTalk to the Home Screen first (Share, then Add to Home Screen) and open it from there.";
    return;
  }
  function say(text) { status.textContent = text; }
  function refresh() {
    navigator.serviceWorker.ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      var denied = Notification.permission === "denied";
      button.hidden = Boolean(subscription) || denied;
      say(subscription ? "This device gets your pushes."
        : denied ? "Notifications are blocked for KalTalk in this browser's settings." : "");
    }).catch(function () {});
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    say("Asking this browser…");
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw new Error("Pushes need your permission: allow notifications for KalTalk, then try again.");
      return fetch("/notifications/vapid-public-key", { credentials: "same-origin", headers: { Accept: "application/json" } });
    }).then(function (response) {
      if (!response.ok) throw new Error("The server's push key could not be read (" + response.status + ").");
      return response.json();
    }).then(function (key) {
      return navigator.serviceWorker.ready.then(function (registration) {
        return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlBytes(key.public_key) });
      });
    }).then(function (subscription) {
      var meta = document.querySelector('meta[name="csrf-token"]');
      return fetch("/notifications/push-subscriptions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": meta ? meta.getAttribute("content") : "" },
        body: JSON.stringify(subscription.toJSON()),
      });
    }).then(function (response) {
      if (!response.ok) throw new Error("The server did not take this device's subscription (" + response.status + ").");
      refresh();
    }).catch(function (error) {
      say(error && error.message ? error.message : "This device could not be subscribed.");
    }).then(function () { button.disabled = false; });
  });
  refresh();
})();
// The notifications page's "Show desktop notifications": the browser asks the member.
(function () {
  var button = document.querySelector("[data-desktop-notifications]");
  var status = document.getElementById("desktop-notifications-status");
  if (!button || !status) return;
  function show() {
    if (!("Notification" in window)) { status.textContent = "This browser cannot show desktop notifications."; return; }
    var permission = Notification.permission;
    button.hidden = permission !== "default";
    status.textContent = permission === "granted" ? "Desktop notifications are on in this browser while a KalTalk tab is open."
      : permission === "denied" ? "Desktop notifications are blocked for KalTalk in this browser's settings." : "";
  }
  button.addEventListener("click", function () {
    Notification.requestPermission().then(show, show);
  });
  show();
})();
