/* KalTalk chat UI (served as /widget/chat.js), loaded by /widget.js on first open.
   Protocol: docs/widget-protocol.md */
(function () {
  'use strict';
  var d = document;

  var CSS = function (c, ink, ring, side) {
    return '' +
      '*{box-sizing:border-box}' +
      '.kt-panel{position:fixed;bottom:92px;' + side + ':20px;z-index:2;width:380px;height:min(660px,calc(100vh - 116px));' +
      'min-height:320px;display:flex;flex-direction:column;overflow:hidden;background:#fff;color:#1f2937;border-radius:18px;' +
      'box-shadow:0 16px 48px rgba(17,24,39,.2),0 2px 8px rgba(17,24,39,.08);' +
      'font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;' +
      '-webkit-font-smoothing:antialiased;animation:kt-in .22s ease-out;transform-origin:bottom ' + side + '}' +
      '.kt-panel[hidden]{display:none}' +
      '@keyframes kt-in{from{opacity:0;transform:translateY(12px) scale(.98)}}' +
      'button,input,textarea{font:inherit;color:inherit;margin:0}' +
      'button{cursor:pointer}' +
      ':focus-visible{outline:2px solid ' + ring + ';outline-offset:2px}' +
      '.kt-sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}' +
      '.kt-head{display:flex;align-items:center;gap:12px;padding:16px 12px 16px 18px;background:' + c + ';color:' + ink + '}' +
      '.kt-head :focus-visible{outline-color:currentColor}' +
      '.kt-av{flex:none;width:40px;height:40px;border-radius:50%;display:flex;align-items:center;justify-content:center;' +
      'font-weight:600;font-size:17px;background:rgba(255,255,255,.22);box-shadow:inset 0 0 0 1px rgba(255,255,255,.3)}' +
      '.kt-ht{flex:1;min-width:0}' +
      '.kt-ht h2{margin:0;font-size:16px;font-weight:600;line-height:1.25;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}' +
      '.kt-ht p{margin:1px 0 0;font-size:13px;line-height:1.35;display:flex;align-items:flex-start;gap:6px}' +
      '.kt-dot{flex:none;width:8px;height:8px;margin-top:5px;border-radius:50%;background:#9ca3af;box-shadow:0 0 0 2px rgba(255,255,255,.6)}' +
      '.kt-dot.on{background:#22c55e}' +
      '.kt-cite{margin:6px 0 0;padding:6px 0 0 14px;border-top:1px solid rgba(127,127,127,.25);font-size:12px}' +
      '.kt-cite a{color:inherit}' +
      '.kt-tp{flex:none;border:1px solid currentColor;border-radius:999px;background:transparent;color:inherit;font:inherit;font-size:12px;padding:4px 10px;cursor:pointer;margin-right:2px}' +
      '.kt-tp:hover{background:rgba(127,127,127,.16)}' +
      '.kt-ib{flex:none;width:40px;height:40px;border:0;border-radius:50%;background:transparent;display:flex;' +
      'align-items:center;justify-content:center;padding:0;transition:background .15s}' +
      '.kt-ib:hover{background:rgba(127,127,127,.16)}' +
      '.kt-ib svg{width:22px;height:22px}' +
      '.kt-main{flex:1;overflow-y:auto;padding:16px 16px 8px;overscroll-behavior:contain}' +
      '.kt-note{display:flex;gap:10px;align-items:flex-start;margin:0 0 6px;padding:10px 12px;border-radius:12px;' +
      'background:#f8fafc;border:1px solid #e5e7eb;color:#374151;font-size:13.5px}' +
      '.kt-note svg{flex:none;width:18px;height:18px;margin-top:1px;color:#6b7280}.kt-note[hidden]{display:none}' +
      '.kt-log{display:flex;flex-direction:column}' +
      '.kt-log:focus-visible{outline-offset:4px;border-radius:8px}' +
      '.kt-row{display:flex;flex-direction:column;max-width:82%;margin-top:14px;align-self:flex-start;align-items:flex-start}' +
      '.kt-row.me{align-self:flex-end;align-items:flex-end}' +
      '.kt-row.cont{margin-top:3px}' +
      '.kt-nm{font-size:12px;color:#4b5563;margin:0 0 4px 12px;font-weight:500}' +
      '.kt-b{padding:9px 14px;border-radius:18px;background:#f1f3f6;white-space:pre-wrap;overflow-wrap:anywhere;' +
      'border-bottom-left-radius:6px;display:flex;flex-direction:column;gap:6px}' +
      '.kt-row.cont .kt-b{border-top-left-radius:6px}' +
      '.me .kt-b{background:' + c + ';color:' + ink + ';border-radius:18px 18px 6px 18px}' +
      '.me.cont .kt-b{border-top-right-radius:6px}' +
      '.kt-b a{color:inherit;text-decoration:underline;text-underline-offset:2px}' +
      '.kt-t>*{margin:0}.kt-t>*+*{margin-top:6px}.kt-t ul,.kt-t ol{padding-left:20px}' +
      '.kt-t code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;background:rgba(127,127,127,.16);padding:1px 4px;border-radius:4px}' +
      '.kt-b.media{padding:0;background:none;border-radius:14px}' +
      '.pending .kt-b{opacity:.72}' +
      '.kt-img{display:block;border-radius:14px;overflow:hidden;line-height:0;background:#e5e7eb}' +
      '.kt-img img{display:block;max-width:100%;max-height:260px;object-fit:cover}' +
      '.kt-b .kt-file{display:flex;align-items:center;gap:10px;padding:8px 12px 8px 8px;border-radius:12px;' +
      'background:rgba(0,0,0,.06);text-decoration:none;white-space:normal}' +
      '.me .kt-file{background:rgba(255,255,255,.18)}.media .kt-file{background:#f1f3f6;color:#1f2937}' +
      '.kt-file svg{flex:none;width:32px;height:32px;padding:6px;border-radius:8px;background:rgba(255,255,255,.7);color:#374151}' +
      '.kt-file span{display:flex;flex-direction:column;min-width:0;font-size:14px;font-weight:500}' +
      '.kt-file small{font-size:12px;font-weight:400;opacity:.85}' +
      '.kt-file:hover span{text-decoration:underline}' +
      '.kt-sys{align-self:center;margin:14px 0 0;font-size:12.5px;color:#4b5563;text-align:center}' +
      '.kt-seen{font-size:12px;color:#4b5563;margin:4px 6px 0}' +
      '.kt-typ{min-height:24px;padding:2px 18px 0;font-size:12.5px;color:#4b5563;display:flex;align-items:center;gap:8px}' +
      '.kt-typ i{display:inline-flex;gap:3px}.kt-typ i b{width:5px;height:5px;border-radius:50%;background:#9ca3af;' +
      'animation:kt-b 1.2s infinite ease-in-out}.kt-typ i b:nth-child(2){animation-delay:.15s}.kt-typ i b:nth-child(3){animation-delay:.3s}' +
      '@keyframes kt-b{0%,60%,100%{transform:none;opacity:.5}30%{transform:translateY(-3px);opacity:1}}' +
      '.kt-pre{margin:14px 0 4px;padding:16px;border:1px solid #e5e7eb;border-radius:14px;background:#f9fafb}' +
      '.kt-pre p{margin:0 0 12px;font-size:14px;color:#374151}' +
      '.kt-f{margin-top:10px}' +
      '.kt-f label{display:block;font-size:13px;font-weight:600;color:#374151;margin-bottom:4px}' +
      '.kt-f input{width:100%;padding:9px 12px;border:1px solid #9ca3af;border-radius:10px;background:#fff;font-size:15px}' +
      '.kt-f input:focus-visible{outline-offset:0;border-color:' + ring + '}' +
      '.kt-f input[aria-invalid=true]{border-color:#b91c1c}' +
      '.kt-fe{margin:4px 0 0;font-size:12.5px;color:#b91c1c}.kt-fe:empty{display:none}' +
      '.kt-err{margin:0 12px 6px;padding:8px 12px;border-radius:10px;background:#fef2f2;color:#991b1b;font-size:13.5px}' +
      '.kt-err:empty{display:none}' +
      '.kt-comp{display:flex;align-items:flex-end;gap:4px;margin:0 12px 12px;padding:5px 5px 5px 4px;border:1px solid #d1d5db;' +
      'border-radius:24px;background:#fff;transition:border-color .15s,box-shadow .15s}' +
      '.kt-comp:focus-within{border-color:' + ring + ';box-shadow:0 0 0 3px ' + c + '2e}' +
      '.kt-comp .kt-ib{color:#4b5563}' +
      '.kt-ta{flex:1;min-width:0;border:0;resize:none;background:transparent;padding:9px 4px;line-height:22px;' +
      'max-height:132px;font-size:15px;outline:0}' +
      '.kt-ta::placeholder{color:#6b7280}' +
      '.kt-ta:focus-visible{outline:0}' +
      '.kt-comp .kt-send{background:' + c + ';color:' + ink + '}' +
      '.kt-comp .kt-send:hover{background:' + c + ';filter:brightness(1.1)}' +
      '.kt-send svg{width:20px;height:20px}' +
      '@media (max-width:480px){.kt-panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;min-height:0;' +
      'border-radius:0;box-shadow:none}.kt-ta,.kt-f input{font-size:16px}}' +
      '@media (prefers-reduced-motion:reduce){.kt-panel,.kt-typ i b{animation:none}}';
  };

  var svg = function (p, extra) {
    return '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
      'stroke-linejoin="round" aria-hidden="true"' + (extra || '') + '>' + p + '</svg>';
  };
  var I_CLOSE = svg('<path d="M18 6 6 18M6 6l12 12"/>');
  var I_CLIP = svg('<path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/>');
  var I_SEND = svg('<path d="M12 19V5M5 12l7-7 7 7"/>', ' stroke-width="2.4"');
  var I_FILE = svg('<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/><path d="M14 3v5h5"/>');
  var I_CLOCK = svg('<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>');

  // h('tag', {attr: value, onclick: fn, text: '...'}, ...children)
  function h(tag, props) {
    var el = d.createElement(tag);
    for (var k in props) {
      var v = props[k];
      if (/^on/.test(k)) el.addEventListener(k.slice(2), v);
      else if (k == 'text') el.textContent = v;
      else if (k == 'html') el.innerHTML = v;
      else if (v != null && v !== false) el.setAttribute(k, v === true ? '' : v);
    }
    for (var i = 2; i < arguments.length; i++) if (arguments[i] != null) el.append(arguments[i]);
    return el;
  }

  // ---------- light formatting: begin ----------
  // The rules of kaltalk-core's src/format.rs (bold, italic, code, links, lists, line
  // breaks), built as DOM nodes: text is only ever text, links only http(s) or mailto.
  // crates/kaltalk-core/tests/format_vectors.json holds the cases both must agree on.
  var WS = /\p{White_Space}/u, AN = /[\p{Alphabetic}\p{N}]/u;
  function isWs(c) { return c != null && WS.test(c); }
  function isAn(c) { return c != null && AN.test(c); }
  // Whether c (an array of characters) has p at i, ASCII letters in any case.
  function at(c, i, p) {
    for (var k = 0; k < p.length; k++) {
      var x = c[i + k];
      if (x == null || (/[A-Z]/.test(x) ? x.toLowerCase() : x) != p[k]) return false;
    }
    return true;
  }
  function ends(x) { return WS.test(x) || '<>"`'.indexOf(x) >= 0; }
  function run(c, i) { var j = i; while (c[j] == c[i]) j++; return j - i; }
  function count(c, i, e, x) { return c.slice(i, e).filter(function (y) { return y == x; }).length; }
  // The end of a bare link at i (0: none), trailing punctuation left out.
  function bare(c, i) {
    var s = at(c, i, 'https://') ? 8 : at(c, i, 'http://') ? 7 : 0, e = i;
    if (!s) return 0;
    while (e < c.length && !ends(c[e])) e++;
    for (var o = count(c, i, e, '('), p = count(c, i, e, ')'); e > i + s; e--) {
      var l = c[e - 1];
      if (l == ')') { if (o >= p) break; p--; }
      else if (l == '(') o--;
      else if (".,:;!?'[]*_".indexOf(l) < 0) break;
    }
    return e > i + s ? e : 0;
  }
  // [label](url) at i: [end of label, end of url], or null. `a` holds, for each position,
  // where the next ], ) and character no link holds are (so many [ scan the line once).
  function link(c, a, i) {
    var le = a.b[i + 1], us = le + 2, ue = a.p[us], s;
    if (le == c.length || le == i + 1 || c[le + 1] != '(' || ue == c.length || a.x[us] < ue) return null;
    s = ['https://', 'http://', 'mailto:'].filter(function (p) { return at(c, us, p); })[0];
    return s && ue - us > s.length ? [le, ue] : null;
  }
  function ahead(c) {
    var n = c.length, a = { b: [], p: [], x: [] }, k;
    a.b[n] = a.p[n] = a.x[n] = n;
    for (k = n - 1; k >= 0; k--) {
      a.b[k] = c[k] == ']' ? k : a.b[k + 1];
      a.p[k] = c[k] == ')' ? k : a.p[k + 1];
      a.x[k] = ends(c[k]) || /[\0-\x1f\x7f-\x9f]/.test(c[k]) ? k : a.x[k + 1];
    }
    return a;
  }
  function dep(n) {
    var m = Math.max.apply(null, [0].concat((n.c || []).map(dep)));
    return n.t == 'strong' || n.t == 'em' ? m + 1 : m;
  }
  function inl(c, links) {
    var ps = [], text = '', i = 0, ah = links && ahead(c), x, n, e, r, b, a, op, cl;
    function flush() { if (text) ps.push({ n: { t: 'text', v: text } }); text = ''; }
    while (i < c.length) {
      x = c[i];
      if (x == '`') {
        n = run(c, i);
        for (e = i + n; e < c.length && !(c[e] == '`' && run(c, e) == n); e += c[e] == '`' ? run(c, e) : 1);
        if (e < c.length) { flush(); ps.push({ n: { t: 'code', v: c.slice(i + n, e).join('') } }); i = e + n; }
        else { text += c.slice(i, i + n).join(''); i += n; }
      } else if (links && (e = bare(c, i))) {
        flush();
        x = c.slice(i, e).join('');
        ps.push({ n: { t: 'a', url: x, c: [{ t: 'text', v: x }] } });
        i = e;
      } else if (links && x == '[' && (r = link(c, ah, i))) {
        flush();
        ps.push({ n: { t: 'a', url: c.slice(r[0] + 2, r[1]).join(''), c: inl(c.slice(i + 1, r[0]), false) } });
        i = r[1] + 1;
      } else if (x == '*' || x == '_') {
        // As in CommonMark: an opener is followed by a non-space, a closer follows one;
        // `_` also needs a word boundary, so snake_case stays as written.
        n = run(c, i); b = c[i - 1]; a = c[i + n];
        op = a != null && !isWs(a) && (x == '*' || !isAn(b));
        cl = b != null && !isWs(b) && (x == '*' || !isAn(a));
        if ((x == '*' ? n <= 2 : n == 1) && (op || cl)) { flush(); ps.push({ ch: x, len: n, open: op, close: cl }); }
        else text += c.slice(i, i + n).join('');
        i += n;
      } else { text += x; i++; }
    }
    flush();
    // Each closing run takes the nearest open run of its kind; leftovers are text.
    var out = [];
    ps.forEach(function (p) {
      if (!p.ch) return out.push(p);
      for (var k = out.length - 1; p.close && k >= 0 && !(out[k].ch == p.ch && out[k].len == p.len && out[k].open); k--);
      if (p.close && k >= 0) {
        var inner = out.splice(k + 1);
        if (inner.reduce(function (m, q) { return Math.max(m, q.ch ? 0 : dep(q.n)); }, 0) < 4) {
          out.pop();
          return out.push({ n: { t: p.len == 2 ? 'strong' : 'em', c: fin(inner) } });
        }
        out.push.apply(out, inner);
      }
      out.push({ ch: p.ch, len: p.len, open: p.open });
    });
    return fin(out);
  }
  function fin(ps) {
    var line = [];
    ps.forEach(function (p) {
      var n = p.ch ? { t: 'text', v: p.ch.repeat(p.len) } : p.n, l = line[line.length - 1];
      if (n.t == 'text' && l && l.t == 'text') l.v += n.v;
      else line.push(n);
    });
    return line;
  }
  function blocks(s) {
    var out = [], para = [];
    function fl() { if (para.length) out.push({ p: para }); para = []; }
    s.replace(/\r\n?/g, '\n').split('\n').forEach(function (l) {
      l = l.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '');
      var m = /^-[ \t]+([^ \t][^]*)$/.exec(l), o = /^(\d{1,9})\.[ \t]+([^ \t][^]*)$/.exec(l), last;
      if (!l) return fl();
      if (!m && !o) return para.push(inl(Array.from(l), true));
      fl();
      last = out[out.length - 1];
      var it = inl(Array.from(m ? m[1] : o[2]), true);
      if (last && last.items && !last.ol == !!m) last.items.push(it);
      else out.push({ ol: !m, start: o && +o[1], items: [it] });
    });
    fl();
    return out;
  }
  function nodes(line) {
    return line.map(function (n) {
      if (n.t == 'text') return n.v;
      if (n.t == 'code') return h('code', { text: n.v });
      var props = n.t == 'a' ? { href: n.url, rel: 'noopener noreferrer nofollow', target: '_blank' } : null;
      return h.apply(null, [n.t, props].concat(nodes(n.c)));
    });
  }
  // Message text as formatted DOM nodes.
  function fmt(s) {
    var f = d.createDocumentFragment();
    blocks(s).forEach(function (b) {
      var el;
      if (b.p) {
        el = h('p');
        b.p.forEach(function (l, i) { if (i) el.append(h('br')); el.append.apply(el, nodes(l)); });
      } else {
        el = h(b.ol ? 'ol' : 'ul', b.ol && b.start != 1 ? { start: b.start } : null);
        b.items.forEach(function (it) { el.append(h.apply(null, ['li', null].concat(nodes(it)))); });
      }
      f.append(el);
    });
    return f;
  }
  // ---------- light formatting: end ----------

  function size(n) {
    return n < 1024 ? n + ' B' : n < 1048576 ? Math.round(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
  }

  var uid = function () {
    return 'c-' + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  };

  function mount(root, api) {
    var cfg = api.config || {}, base = api.base, store = api.store, c = cfg.color || '#4338ca', ink = api.ink;
    var ring = ink == '#fff' ? c : '#111827';
    var msgPath = '/widget/v1/inboxes/' + encodeURIComponent(api.inbox);
    var saved = store.get(), token = saved.visitor_token || null, lastEv = saved.last_event_id || null;
    var byId = {}, pend = {}, drafts = {}, lastAgent = null, seenSent = null, seenEl = null;
    var ws = null, tries = 0, wsTimer, typTimer, tSent = 0, tIdle, retry = null, chain = Promise.resolve();
    var pre = null, preFields = [], preNeed = null, conv = null, wantPerson = false, personEl = null, pollTimer;

    // ---------- DOM ----------
    var closeBtn = h('button', { type: 'button', class: 'kt-ib', 'aria-label': 'Close chat', html: I_CLOSE, onclick: api.close });
    var log = h('div', { class: 'kt-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
    var typ = h('div', { class: 'kt-typ', role: 'status' });
    var err = h('p', { class: 'kt-err', role: 'alert' });
    var status = cfg.agents_online !== false;
    // Shown while nobody of the team is online; presence() keeps it current.
    var away = cfg.offline_message ? h('p', { class: 'kt-note', html: I_CLOCK, hidden: status }, cfg.offline_message) : null;
    var main = h('div', { class: 'kt-main' }, away, log);
    var ta = h('textarea', {
      id: 'kt-msg', class: 'kt-ta', rows: '1', placeholder: 'Write a message…', autocomplete: 'off',
      oninput: function () { grow(); err.textContent = ''; typing(!!ta.value.trim()); },
      onkeydown: function (e) {
        if (e.key == 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
      },
      onpaste: function (e) {
        var f = e.clipboardData && e.clipboardData.files[0];
        if (f && !e.clipboardData.getData('text')) { e.preventDefault(); upload(f); }
      }
    });
    var file = h('input', {
      type: 'file', accept: 'image/*,application/pdf', hidden: true, tabindex: '-1', 'aria-label': 'Attach a file',
      onchange: function () { if (file.files[0]) upload(file.files[0]); file.value = ''; }
    });
    var dot = h('span', { class: 'kt-dot' }), stText = d.createTextNode(''), backTimer;
    var panel = h('div', { class: 'kt-panel', role: 'dialog', 'aria-labelledby': 'kt-title', hidden: true },
      h('div', { class: 'kt-head' },
        h('div', { class: 'kt-av', 'aria-hidden': 'true', text: (cfg.name || 'C').trim().charAt(0).toUpperCase() }),
        h('div', { class: 'kt-ht' },
          h('h2', { id: 'kt-title', text: cfg.name || 'Chat' }),
          h('p', null, dot, stText)),
        h('button', { type: 'button', class: 'kt-tp', text: 'Talk to a person', onclick: askPerson }),
        closeBtn),
      main, typ, err,
      h('form', { class: 'kt-comp', onsubmit: function (e) { e.preventDefault(); send(); } },
        h('label', { for: 'kt-msg', class: 'kt-sr', text: 'Message' }),
        h('button', { type: 'button', class: 'kt-ib', 'aria-label': 'Attach a file', html: I_CLIP, onclick: function () { file.click(); } }),
        ta, file,
        h('button', { type: 'submit', class: 'kt-ib kt-send', 'aria-label': 'Send', html: I_SEND })));
    root.append(h('style', { text: CSS(c, ink, ring, cfg.position == 'left' ? 'left' : 'right') }), panel);
    presence(status, cfg.back_at, cfg.closes_at);

    if (cfg.greeting) log.append(row({ sender: 'bot', sender_name: cfg.name, text: cfg.greeting }));

    root.addEventListener('keydown', function (e) {
      if (e.key == 'Escape' && api.isOpen) { e.stopPropagation(); api.close(); }
    });
    d.addEventListener('visibilitychange', seen);
    window.addEventListener('online', function () { if (token && !ws) { clearTimeout(wsTimer); load(); } });

    function grow() {
      ta.style.height = 'auto';
      ta.style.height = Math.min(ta.scrollHeight, 132) + 'px';
    }
    // Stay pinned to the newest message unless the visitor scrolled up.
    var pinned = true;
    function toBottom() {
      pinned = true;
      main.scrollTop = main.scrollHeight;
    }
    var lastTop = 0;
    main.addEventListener('scroll', function () {
      var t = main.scrollTop, end = main.scrollHeight - t - main.clientHeight < 40;
      // Only the visitor scrolling up unpins (growing content must not).
      if (end || t < lastTop) pinned = end;
      lastTop = t;
    });
    if (window.ResizeObserver) new ResizeObserver(function () { if (pinned) toBottom(); }).observe(log);

    // ---------- pre-chat form ----------
    // A new visitor is asked what the inbox wants; a returning one what the server says
    // their contact still lacks (`preNeed`, the form may be newer than their chat).
    function renderPre() {
      var need = [], id = api.identity || {}, p = token ? preNeed || {} : cfg.prechat || {}, kept = {};
      if (p.name && !id.name) need.push(['name', 'Name', 'text', 'name']);
      if (p.email && !id.email) need.push(['email', 'Email', 'email', 'email']);
      preFields.forEach(function (i) { kept[i.k] = i.value; });
      if (pre) pre.remove();
      pre = null;
      preFields = [];
      if (!need.length) return;
      pre = h('div', { class: 'kt-pre', role: 'group', 'aria-labelledby': 'kt-pre-t' },
        h('p', { id: 'kt-pre-t', text: 'Before we start, please tell us ' + (need.length > 1 ? 'a little about you.' : 'your ' + need[0][1].toLowerCase() + '.') }));
      need.forEach(function (f) {
        var e = h('p', { class: 'kt-fe', id: 'kt-e-' + f[0] });
        var i = h('input', {
          id: 'kt-p-' + f[0], type: f[2], autocomplete: f[3], required: true, 'aria-describedby': e.id,
          oninput: function () { e.textContent = ''; i.removeAttribute('aria-invalid'); }
        });
        i.k = f[0];
        i.e = e;
        i.value = kept[f[0]] || '';
        preFields.push(i);
        pre.append(h('div', { class: 'kt-f' }, h('label', { for: i.id, text: f[1] }), i, e));
      });
      main.append(pre);
      if (pinned) toBottom();
    }

    // The server refused pre-chat fields (what it asks changed since the widget looked):
    // show the form for them, each message under its field. True when it did.
    function preErrors(e) {
      var bad = (e.errors || []).filter(function (f) { return f.field == 'name' || f.field == 'email'; });
      if (!bad.length) return false;
      preNeed = preNeed || {};
      bad.forEach(function (f) { preNeed[f.field] = true; });
      if (!token) cfg.prechat = Object.assign({}, cfg.prechat, preNeed);
      renderPre();
      bad.forEach(function (f) {
        var i = preFields.filter(function (x) { return x.k == f.field; })[0];
        if (i) { i.e.textContent = f.message; i.setAttribute('aria-invalid', 'true'); }
      });
      if (preFields[0]) preFields[0].focus();
      return true;
    }

    // Validates the pre-chat form; returns the prechat object, or false if invalid.
    function preData() {
      if (!pre) return null;
      var out = {}, bad = null;
      preFields.forEach(function (i) {
        var v = i.value.trim(), m = '';
        if (!v) m = i.k == 'name' ? 'Please enter your name.' : 'Please enter your email address.';
        else if (i.k == 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) m = 'Please enter a valid email address, like name@example.com.';
        i.e.textContent = m;
        if (m) { i.setAttribute('aria-invalid', 'true'); bad = bad || i; } else i.removeAttribute('aria-invalid');
        out[i.k] = v;
      });
      if (bad) { bad.focus(); return false; }
      return out;
    }

    // ---------- messages ----------
    function row(m) {
      if (m.sender == 'system') return h('div', { class: 'kt-sys', text: m.text });
      var me = m.sender == 'contact', atts = m.attachments || [], who = me ? 'me' : 'them:' + (m.sender_name || '');
      var b = h('div', { class: 'kt-b' + (m.text ? '' : ' media') });
      if (m.created_at) b.title = new Date(m.created_at).toLocaleString();
      if (m.text) b.append(h('div', { class: 'kt-t' }, fmt(m.text)));
      atts.forEach(function (a) {
        var url = /^(https?|blob):/.test(a.url) ? a.url : base + a.url;
        var link = { href: url, target: '_blank', rel: 'noopener noreferrer' };
        if (/^image\//.test(a.content_type)) {
          link.class = 'kt-img';
          b.append(h('a', link, h('img', { src: url, alt: a.filename || 'Image' })));
        } else {
          link.class = 'kt-file';
          link.html = I_FILE;
          b.append(h('a', link, h('span', null, a.filename || 'File', a.size ? h('small', { text: size(a.size) }) : null)));
        }
      });
      // A bot answer shows where it came from.
      var cites = (m.metadata && m.metadata.citations) || [];
      if (cites.length) {
        var list = h('ul', { class: 'kt-cite', 'aria-label': 'Sources' });
        cites.forEach(function (c) {
          list.append(h('li', null, c.url && /^https?:/.test(c.url)
            ? h('a', { href: c.url, target: '_blank', rel: 'noopener noreferrer', text: c.title || c.url })
            : h('span', { text: c.title || 'Source' })));
        });
        b.append(list);
      }
      var r = h('div', { class: 'kt-row ' + (me ? 'me' : 'them') },
        h('div', { class: me ? 'kt-sr' : 'kt-nm', text: me ? 'You:' : (m.sender_name || m.sender == 'bot' && !(m.metadata && m.metadata.automatic) && cfg.bot_name || cfg.name || 'Support') }), b);
      r.who = who;
      return r;
    }

    // Groups consecutive bubbles from the same sender (the name is then only read by screen readers).
    function group(r) {
      var p = r.previousElementSibling;
      if (r.who && p && p.who == r.who) {
        r.classList.add('cont');
        r.firstChild.className = 'kt-sr';
      }
    }

    // Shows a server message once; replaces the optimistic bubble with the same client_id.
    function add(m) {
      if (!m || !m.id || byId[m.id]) return false;
      var dId = m.metadata && m.metadata.draft_id;
      var r = row(m), old = m.client_id && pend[m.client_id] || dId && drafts[dId];
      if (old) {
        old.replaceWith(r);
        delete pend[m.client_id];
        delete drafts[dId];
      } else log.append(r);
      group(r);
      byId[m.id] = r;
      if (m.sender == 'agent' || m.sender == 'bot') lastAgent = m.id;
      if (pinned || m.sender == 'contact') toBottom();
      return true;
    }

    // The bot's answer while the model writes it. Hidden from screen readers: the final
    // message replaces it and the live log announces that once, not every word.
    function draft(m) {
      var d = drafts[m.draft_id];
      if (m.end) {
        if (d) d.remove();
        delete drafts[m.draft_id];
        return;
      }
      if (!d) {
        showTyping(null);
        d = drafts[m.draft_id] = row({ sender: 'bot', text: ' ' });
        d.setAttribute('aria-hidden', 'true');
        d.t = d.querySelector('.kt-b div');
        d.t.textContent = '';
        log.append(d);
        group(d);
      }
      // A socket opened mid-answer first hears the whole draft so far.
      if (m.replace) d.t.textContent = m.delta || '';
      else d.t.textContent += m.delta || '';
      if (pinned) toBottom();
    }

    function optimistic(m) {
      var r = row(m);
      r.classList.add('pending');
      log.append(r);
      group(r);
      pend[m.client_id] = r;
      toBottom();
      return r;
    }

    // Always there: the visitor can leave the bot for the team at any time. Before their
    // first message there is nothing to hand over yet: the first message goes straight
    // to the team instead (`handoff` on it).
    async function askPerson() {
      err.textContent = '';
      if (!conv) {
        wantPerson = true;
        if (!personEl) log.append(personEl = h('div', { class: 'kt-sys', text: 'A person from the team will answer. Write your question below.' }));
        toBottom();
        ta.focus();
        return;
      }
      try { await req('POST', '/widget/v1/handoff'); } catch (e) { err.textContent = e.message; }
    }

    // ---------- HTTP ----------
    async function req(method, path, body) {
      var o = { method: method, credentials: 'omit', headers: {} }, r, j;
      if (token) o.headers.Authorization = 'Bearer ' + token;
      if (body instanceof FormData) o.body = body;
      else if (body) {
        o.headers['Content-Type'] = 'application/json';
        o.body = JSON.stringify(body);
      }
      try {
        r = await fetch(base + path, o);
      } catch (e) {
        throw new Error('We couldn’t reach the server. Check your connection and try again.');
      }
      if (r.status == 204) return null;
      // Reset Content: the session was another user's and has ended.
      if (r.status == 205) return void wipe();
      try { j = await r.json(); } catch (e) { j = {}; }
      if (r.ok) return j;
      if (r.status == 401 && j.code == 'invalid_visitor_token' || token && j.code == 'identity_required') drop();
      var x = new Error(j.detail || (r.status == 413 ? 'That file is too large (10 MB at most).'
        : 'Something went wrong (' + r.status + '). Please try again.'));
      x.code = j.code;
      x.errors = j.errors;
      throw x;
    }

    function save() {
      if (token) store.set({ visitor_token: token, last_event_id: lastEv });
    }

    // The server forgot this visitor: start over on the next message.
    function drop() {
      token = lastEv = preNeed = conv = null;
      store.clear();
      if (ws) { var s = ws; ws = null; s.close(); }
      clearTimeout(wsTimer);
      renderPre();
    }

    // Another person now (logout, or someone else signed in): nothing of the chat stays.
    function wipe() {
      drop();
      log.textContent = err.textContent = '';
      byId = {};
      pend = {};
      drafts = {};
      lastAgent = seenSent = seenEl = stateEl = personEl = null;
      wantPerson = false;
      showTyping(null);
      if (cfg.greeting) log.append(row({ sender: 'bot', sender_name: cfg.name, text: cfg.greeting }));
    }
    api.on('reset', wipe);

    function session(res, sentPre) {
      if (res.conversation_id) conv = res.conversation_id;
      wantPerson = false;
      // The server holds what the form asked now: it goes.
      if (sentPre) { preNeed = null; renderPre(); }
      if (res.visitor_token && res.visitor_token != token) {
        // The server ended the old session (it was another user's): its chat goes.
        if (token) wipe();
        token = res.visitor_token;
        lastEv = null;
        renderPre();
      }
      save();
      add(res.message);
      connect();
    }

    // Sends run one after another so the first one creates the session the others use.
    function queue(fn) {
      return chain = chain.then(fn, fn);
    }

    function send() {
      var text = ta.value.trim();
      if (!text) return ta.focus();
      var p = preData();
      if (p === false) return;
      var cid = retry && retry.t == text ? retry.c : uid();
      retry = null;
      err.textContent = '';
      ta.value = '';
      grow();
      typing(false);
      var r = optimistic({ sender: 'contact', text: text, client_id: cid });
      ta.focus();
      queue(async function () {
        try {
          session(await req('POST', msgPath + '/messages', {
            text: text, client_id: cid, context: api.context(), identity: api.identity || null, prechat: p,
            handoff: wantPerson
          }), p);
        } catch (e) {
          fail(r, cid, e);
          if (preErrors(e)) err.textContent = '';
          // Nothing typed is lost: put the text back in the box.
          ta.value = ta.value ? text + '\n' + ta.value : text;
          grow();
          retry = { t: text, c: cid };
        }
      });
    }

    function fail(r, cid, e) {
      r.remove();
      delete pend[cid];
      err.textContent = e.message;
    }

    function upload(f) {
      err.textContent = '';
      if (!/^image\/|^application\/pdf$/.test(f.type)) return void (err.textContent = 'Only images and PDF files can be sent.');
      if (f.size > 10485760) return void (err.textContent = 'That file is too large (10 MB at most).');
      var p = preData();
      if (p === false) return;
      var cid = uid(), url = URL.createObjectURL(f);
      var r = optimistic({ sender: 'contact', text: '', client_id: cid,
        attachments: [{ filename: f.name, content_type: f.type, size: f.size, url: url }] });
      queue(async function () {
        var fd = new FormData();
        fd.append('client_id', cid);
        fd.append('context', JSON.stringify(api.context()));
        if (api.identity) fd.append('identity', JSON.stringify(api.identity));
        if (p) fd.append('prechat', JSON.stringify(p));
        if (wantPerson) fd.append('handoff', 'true');
        fd.append('file', f, f.name);
        try {
          session(await req('POST', msgPath + '/attachments', fd), p);
        } catch (e) {
          fail(r, cid, e);
          if (preErrors(e)) err.textContent = '';
        }
        setTimeout(function () { URL.revokeObjectURL(url); }, 5000);
      });
    }

    function identify() {
      if (token && api.identity) {
        req('POST', '/widget/v1/identify', api.identity).catch(function (e) {
          if (window.console) console.warn('KalTalk identify: ' + e.message);
        });
      }
    }
    api.on('identify', function () { identify(); renderPre(); });

    // History, then live events. Also the retry path when the socket cannot connect.
    async function load() {
      if (!token) return;
      try {
        var res = await req('GET', '/widget/v1/conversation');
        (res.messages || []).forEach(add);
        if (res.last_event_id) lastEv = res.last_event_id;
        if (res.conversation) { conv = res.conversation.id; state(res.conversation.status); }
        if (res.prechat && JSON.stringify(res.prechat) != JSON.stringify(preNeed)) { preNeed = res.prechat; renderPre(); }
        save();
        seen();
        connect();
      } catch (e) {
        if (!token) return;
        if (err.textContent != e.message) err.textContent = e.message;
        wsTimer = setTimeout(load, backoff());
      }
    }

    // ---------- WebSocket ----------
    function backoff() {
      return Math.min(30, Math.pow(2, tries++)) * 1000;
    }

    function connect() {
      if (!token || ws) return;
      clearTimeout(wsTimer);
      var opened = false, fresh = !lastEv, s = ws = new WebSocket(base.replace(/^http/, 'ws') + '/widget/v1/ws?token=' +
        encodeURIComponent(token) + (lastEv ? '&after=' + encodeURIComponent(lastEv) : ''));
      s.onopen = function () {
        opened = true;
        tries = 0;
        clearInterval(pollTimer);
        if (/^We couldn/.test(err.textContent)) err.textContent = '';
        seen();
        // Connected without an event id (first message): catch up on anything that came before.
        if (fresh) req('GET', '/widget/v1/conversation').then(function (res) {
          (res.messages || []).forEach(add);
          if (!lastEv && res.last_event_id) { lastEv = res.last_event_id; save(); }
        }, function () {});
      };
      s.onmessage = function (e) {
        try { event(JSON.parse(e.data)); } catch (x) {}
      };
      s.onclose = function (e) {
        if (ws != s) return;
        ws = null;
        showTyping(null);
        // A socket that never opened may mean a forgotten token, and 4403 a session the
        // server no longer admits: re-check over HTTP, which says why.
        if (token) wsTimer = setTimeout(opened && e.code != 4403 ? connect : load, backoff());
      };
    }

    function wsSend(o) {
      if (ws && ws.readyState == 1) ws.send(JSON.stringify(o));
    }

    function event(m) {
      if (m.type == 'message.created' && m.message) {
        if (add(m.message) && m.message.sender != 'contact') {
          showTyping(null);
          if (m.message.sender != 'system') api.emit('message', m.message);
          seen();
        }
      } else if (m.type == 'typing') showTyping(m.typing && (m.name || cfg.name));
      else if (m.type == 'bot.delta') draft(m);
      else if (m.type == 'seen') markSeen(m.message_id);
      else if (m.type == 'conversation.updated') state(m.status);
      else if (m.type == 'presence') presence(m.agents_online !== false, m.back_at, m.closes_at);
      if (m.event_id) {
        lastEv = m.event_id;
        save();
      }
    }

    function showTyping(name) {
      clearTimeout(typTimer);
      typ.textContent = '';
      if (!name) return;
      typ.append(h('i', { 'aria-hidden': 'true' }, h('b'), h('b'), h('b')), name + ' is typing…');
      typTimer = setTimeout(showTyping, 15000);
    }

    // "Seen" under the visitor's last message up to message_id.
    function markSeen(id) {
      var last = null, rows = log.children, t = byId[id];
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].classList.contains('me') && !rows[i].classList.contains('pending')) last = rows[i];
        if (rows[i] == t) break;
      }
      if (seenEl) seenEl.remove();
      if (last) last.append(seenEl = h('div', { class: 'kt-seen', text: 'Seen' }));
    }

    // "Online" / "Away" / "We're back …": pushed on the socket; polled while the panel is
    // open without one (a visitor who has not written yet).
    function presence(on, back, closes) {
      dot.className = 'kt-dot' + (on ? ' on' : '');
      stText.textContent = on ? 'Online' : back ? backText(back) : 'Away';
      if (away) away.hidden = on;
      // Nothing is pushed when the hours open or end: look again then.
      clearTimeout(backTimer);
      var wait = back || closes ? new Date(back || closes) - Date.now() : 0;
      if (wait > 0 && wait < 2e9) backTimer = setTimeout(recheck, wait + 1000);
    }
    // When the team is back, on the visitor's own clock: "We're back tomorrow at 09:00".
    function backText(iso) {
      var t = new Date(iso), now = new Date();
      if (isNaN(t)) return 'Away';
      var f = function (lang, o) { return new Intl.DateTimeFormat(lang, o).format(t); };
      var midnight = function (x) { return new Date(x.getFullYear(), x.getMonth(), x.getDate()); };
      var days = Math.round((midnight(t) - midnight(now)) / 864e5);
      var when = days < 1 ? 'today' : days == 1 ? 'tomorrow'
        : f('en', days < 7 ? { weekday: 'long' } : { weekday: 'long', month: 'long', day: 'numeric' });
      return "We're back " + when + ' at ' + f(undefined, { hour: 'numeric', minute: '2-digit' });
    }
    function recheck() {
      req('GET', msgPath + '/config').then(function (c) { presence(c.agents_online !== false, c.back_at, c.closes_at); }, function () {});
    }
    function poll() {
      clearInterval(pollTimer);
      pollTimer = setInterval(function () {
        if (ws && ws.readyState == 1) return clearInterval(pollTimer);
        recheck();
      }, 5000);
    }

    var stateEl = null;
    function state(s) {
      if (stateEl) stateEl.remove();
      stateEl = s == 'resolved'
        ? h('div', { class: 'kt-sys', text: 'This conversation was marked as resolved. Write to us any time if you need more help.' }) : null;
      if (stateEl) { log.append(stateEl); if (api.isOpen) toBottom(); }
    }

    // Tell the server the visitor read the newest agent message (panel open and page visible).
    function seen() {
      if (api.isOpen && d.visibilityState == 'visible' && lastAgent && lastAgent != seenSent && ws && ws.readyState == 1) {
        seenSent = lastAgent;
        wsSend({ type: 'seen', message_id: lastAgent });
      }
    }

    // Visitor typing: true at most every 2.5 s while typing, false after 3 s idle or on send.
    function typing(on) {
      clearTimeout(tIdle);
      if (on) {
        if (Date.now() - tSent > 2500) {
          tSent = Date.now();
          wsSend({ type: 'typing', typing: true });
        }
        tIdle = setTimeout(typing, 3000, false);
      } else if (tSent) {
        tSent = 0;
        wsSend({ type: 'typing', typing: false });
      }
    }

    // ---------- start ----------
    renderPre();
    if (token) {
      load();
      req('POST', '/widget/v1/context', api.context()).catch(function () {});
      identify();
    }

    return {
      show: function () {
        panel.hidden = false;
        if (!ws) poll();
        toBottom();
        var bad = preFields.filter(function (i) { return !i.value.trim(); })[0];
        (bad || ta).focus();
        seen();
      },
      hide: function () {
        panel.hidden = true;
        clearInterval(pollTimer);
        typing(false);
      }
    };
  }

  window.__kaltalkChat = { mount: mount };
})();
