/* KalTalk widget loader (served as /widget.js). Protocol: docs/widget-protocol.md */
(function () {
  'use strict';
  var w = window, d = document, old = w.KalTalk;
  if (old && old.loaded) return;

  var me = d.currentScript;
  if (!me || !me.getAttribute('data-kaltalk-inbox')) {
    me = [].filter.call(d.querySelectorAll('script[data-kaltalk-inbox]'), function (s) {
      return /\/widget\.js(\?|#|$)/.test(s.src);
    })[0];
  }
  if (!me) return;
  var inbox = me.getAttribute('data-kaltalk-inbox'), base = new URL(me.src).origin;
  var key = 'kaltalk:' + inbox;

  // --- storage (localStorage can throw: Safari private mode, disabled storage) ---
  var store = {
    get: function () {
      try { return JSON.parse(localStorage.getItem(key)) || {}; } catch (e) { return {}; }
    },
    set: function (v) {
      try { localStorage.setItem(key, JSON.stringify(v)); } catch (e) {}
    },
    clear: function () {
      try { localStorage.removeItem(key); } catch (e) {}
    }
  };

  // --- events ---
  var subs = {}, isReady = false;
  function on(ev, fn) {
    if (typeof fn != 'function') return;
    (subs[ev] = subs[ev] || []).push(fn);
    if (ev == 'ready' && isReady) call(fn);
  }
  function call(fn, data) {
    try { fn(data); } catch (e) { setTimeout(function () { throw e; }); }
  }
  function emit(ev, data) {
    (subs[ev] || []).slice().forEach(function (fn) { call(fn, data); });
  }

  function context() {
    var tz = '';
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) {}
    return { timezone: tz, language: navigator.language || '', page_url: location.href,
      page_title: d.title, referrer: d.referrer };
  }

  // Readable text colour (#fff or near-black) on the accent colour.
  function ink(hex) {
    var m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
    if (!m) return '#fff';
    var n = parseInt(m[1], 16), l = [n >> 16, n >> 8 & 255, n & 255].map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    l = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    return 1.05 / (l + 0.05) >= 4.5 ? '#fff' : '#111827';
  }

  // --- host element + shadow root ---
  var host = d.createElement('div');
  host.id = 'kaltalk-widget';
  host.style.cssText = 'all:initial!important;position:fixed!important;z-index:2147483000!important;' +
    'bottom:0!important;right:0!important;width:0!important;height:0!important;display:block!important;' +
    'margin:0!important;padding:0!important;border:0!important;transform:none!important';
  var root = host.attachShadow({ mode: 'open' });
  var btn, badge, cfg, ui, loading, want, isOpen = false, unread = 0, ident = null;

  var ICON_CHAT = '<svg class="i1" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3C6.5 3 2 6.9 2 11.6c0 2.5 1.3 4.7 3.3 6.3L4.6 21.4l4.2-2.2c1 .3 2.1.4 3.2.4 5.5 0 10-3.9 10-8.6S17.5 3 12 3z"/></svg>';
  var ICON_X = '<svg class="i2" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 9l6 6 6-6" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>';

  function render() {
    var side = cfg.position == 'left' ? 'left' : 'right', c = cfg.color || '#4338ca';
    var st = d.createElement('style');
    st.textContent =
      '.kt-launch{position:fixed;bottom:20px;' + side + ':20px;z-index:1;width:60px;height:60px;border-radius:50%;' +
      'border:0;padding:0;margin:0;cursor:pointer;background:' + c + ';color:' + ink(c) + ';display:flex;' +
      'align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.18),0 2px 4px rgba(0,0,0,.12);' +
      'transition:transform .2s ease,box-shadow .2s ease;-webkit-tap-highlight-color:transparent}' +
      '.kt-launch:hover{transform:scale(1.06);box-shadow:0 6px 20px rgba(0,0,0,.22)}' +
      '.kt-launch:focus-visible{outline:3px solid #111827;outline-offset:3px;box-shadow:0 0 0 3px #fff}' +
      '.kt-launch svg{width:28px;height:28px;fill:currentColor;position:absolute;transition:transform .25s ease,opacity .2s}' +
      '.kt-launch .i2{opacity:0;transform:rotate(-90deg)}' +
      '.kt-launch.open .i1{opacity:0;transform:rotate(90deg) scale(.6)}.kt-launch.open .i2{opacity:1;transform:none}' +
      '.kt-launch[aria-busy=true]{cursor:progress}.kt-launch[hidden]{display:none}' +
      '.kt-badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;' +
      'border-radius:10px;background:#dc2626;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center;' +
      'box-shadow:0 0 0 2px #fff}.kt-badge[hidden]{display:none}' +
      '@media (prefers-reduced-motion:reduce){.kt-launch,.kt-launch svg{transition:none}}';
    btn = d.createElement('button');
    btn.type = 'button';
    btn.className = 'kt-launch';
    btn.innerHTML = ICON_CHAT + ICON_X + '<span class="kt-badge" aria-hidden="true" hidden></span>';
    badge = btn.lastChild;
    btn.onclick = function () { isOpen ? close() : open(); };
    root.appendChild(st);
    root.appendChild(btn);
    label();
    if (cfg.identity == 'required' && !ident) btn.hidden = true;
    (d.body || d.documentElement).appendChild(host);
  }

  function label() {
    btn.setAttribute('aria-expanded', isOpen);
    btn.setAttribute('aria-label', isOpen ? 'Close chat' :
      'Open chat' + (unread ? ' (' + unread + ' new message' + (unread > 1 ? 's' : '') + ')' : ''));
    btn.classList.toggle('open', isOpen);
    badge.textContent = unread > 9 ? '9+' : unread;
    badge.hidden = !unread;
  }

  var api = {
    base: base, inbox: inbox, store: store, on: on, emit: emit, context: context,
    get config() { return cfg; },
    get identity() { return ident; },
    get ink() { return ink(cfg.color); },
    get isOpen() { return isOpen; },
    close: function () { close(); }
  };

  function open() {
    if (!btn) return void (want = true);
    if (isOpen || (cfg.identity == 'required' && !ident)) return;
    if (ui) {
      isOpen = true;
      unread = 0;
      label();
      ui.show();
      emit('open');
      return;
    }
    if (loading) return;
    loading = true;
    btn.setAttribute('aria-busy', 'true');
    var done = function () {
      loading = false;
      btn.removeAttribute('aria-busy');
      if (!ui && w.__kaltalkChat) {
        ui = w.__kaltalkChat.mount(root, api);
        open();
      }
    };
    if (w.__kaltalkChat) return done();
    var s = d.createElement('script');
    s.src = base + '/widget/chat.js';
    s.async = true;
    s.onload = done;
    s.onerror = function () {
      s.remove();
      done();
      if (w.console) console.warn('KalTalk: could not load the chat');
    };
    (d.head || d.documentElement).appendChild(s);
  }

  function close() {
    want = false;
    if (!isOpen) return;
    isOpen = false;
    var a = root.activeElement;
    ui.hide();
    label();
    if (a && a != btn) btn.focus();
    emit('close');
  }

  // Unread badge for agent messages that arrive while the panel is closed.
  on('message', function () {
    if (!isOpen) { unread++; label(); }
  });

  function cmd(c) {
    var a = [].slice.call(arguments, 1);
    if (c == 'open') open();
    else if (c == 'close') close();
    else if (c == 'on') on(a[0], a[1]);
    else if (c == 'identify' && a[0] && typeof a[0] == 'object') {
      ident = a[0];
      if (btn) btn.hidden = false;
      emit('identify', ident);
    } else if (c == 'reset') {
      // Log out: forget who it was and their chat, so the next person starts afresh.
      ident = null;
      store.clear();
      unread = 0;
      if (btn) {
        label();
        if (cfg.identity == 'required') { close(); btn.hidden = true; }
      }
      emit('reset');
    }
  }
  w.KalTalk = cmd;
  cmd.loaded = true;
  ((old && old.q) || []).forEach(function (a) { cmd.apply(null, a); });

  // --- single-page apps: tell the server when the page changes ---
  var lastUrl = location.href, timer;
  function changed() {
    clearTimeout(timer);
    // Wait a moment so the app can update document.title.
    timer = setTimeout(function () {
      if (location.href == lastUrl) return;
      lastUrl = location.href;
      var t = store.get().visitor_token;
      if (!t) return;
      fetch(base + '/widget/v1/context', {
        method: 'POST', credentials: 'omit', keepalive: true,
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + t },
        body: JSON.stringify(context())
      }).then(function (r) {
        if (r.status == 401) store.clear();
      }, function () {});
    }, 300);
  }
  ['pushState', 'replaceState'].forEach(function (m) {
    var f = history[m];
    history[m] = function () {
      var r = f.apply(this, arguments);
      changed();
      return r;
    };
  });
  w.addEventListener('popstate', changed);
  w.addEventListener('hashchange', changed);

  fetch(base + '/widget/v1/inboxes/' + encodeURIComponent(inbox) + '/config', { credentials: 'omit' })
    .then(function (r) {
      if (!r.ok) throw new Error('config ' + r.status);
      return r.json();
    })
    .then(function (c) {
      cfg = c;
      var go = function () {
        render();
        isReady = true;
        emit('ready');
        if (want) open();
      };
      d.body ? go() : d.addEventListener('DOMContentLoaded', go);
    })
    .catch(function (e) {
      if (w.console) console.warn('KalTalk: widget disabled (' + e.message + ')');
    });
})();
