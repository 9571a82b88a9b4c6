// The dashboard's service worker: what makes it an installable app (Home Screen on
// Android and iOS 16.4+), shows a push as a system notification, and opens its
// conversation when the notification is tapped. It caches nothing: the dashboard is live.
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
