// The dashboard's service worker: what makes it an installable app (Home Screen on
// Android and iOS 16.4+), shows a push as a system notification, and opens its
// conversation when the notification is tapped. It caches nothing: the dashboard is live.
// When the browser renews a push subscription, the new one is registered for the member.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// A push is `{ "title", "body", "url", "tag" }`; the server decides what it says (no
// message text unless the member chose previews).
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  var title = typeof data.title === "string" ? data.title : "KalTalk";
  event.waitUntil(self.registration.showNotification(title, {
    body: typeof data.body === "string" ? data.body : "",
    tag: typeof data.tag === "string" ? data.tag : undefined,
    icon: "/icon-192.png",
    data: { url: typeof data.url === "string" && data.url.charAt(0) === "/" ? data.url : "/notifications" },
  }));
});

// Tapped: an open dashboard window goes there, else a new one opens.
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/notifications";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i += 1) {
      if ("navigate" in windows[i]) return windows[i].navigate(url).then(function (w) { return w && w.focus(); });
    }
    return self.clients.openWindow(url);
  }));
});

// The browser renewed (or dropped) this device's subscription: subscribe again with the
// server's key and register the new one. The key's answer carries the session's CSRF
// token, which a worker cannot read from a page.
self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(fetch("/notifications/vapid-public-key", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("signed out");
      return response.json();
    })
    .then(function (key) {
      var raw = atob((key.public_key + "===".slice((key.public_key.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
      var bytes = new Uint8Array(raw.length);
      for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
      return self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes })
        .then(function (subscription) {
          return fetch("/notifications/push-subscriptions", {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": key.csrf_token },
            body: JSON.stringify(subscription.toJSON()),
          });
        });
    })
    .catch(function () {}));
});
