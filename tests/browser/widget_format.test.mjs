// The widget's message formatting (widget/chat.js) against the vectors the Rust renderer
// (kaltalk-core src/format.rs) is tested with: both must write the same HTML for each.
// The formatting section and the widget's `h` helper are evaluated as they are in the
// file, over a small stand-in for the DOM whose serializer escapes as the Rust one does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url);
const source = readFileSync(new URL('widget/chat.js', root), 'utf8');
const vectors = JSON.parse(
  readFileSync(new URL('crates/kaltalk-core/tests/format_vectors.json', root), 'utf8'),
).vectors;

function section(begin, end) {
  const from = source.indexOf(begin);
  const to = source.indexOf(end, from);
  assert.ok(from >= 0 && to > from, `chat.js has ${begin} … ${end}`);
  return source.slice(from, to + end.length);
}

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

class Text {
  constructor(data) { this.data = String(data); }
  get html() { return escape(this.data); }
}
class Node {
  constructor(tag) { this.tag = tag; this.attrs = []; this.children = []; }
  append(...items) {
    for (const item of items) {
      if (item instanceof Fragment) this.children.push(...item.children);
      else this.children.push(item instanceof Node || item instanceof Text ? item : new Text(item));
    }
  }
  setAttribute(name, value) { this.attrs.push([name, String(value)]); }
  addEventListener() {}
  set textContent(value) { this.children = [new Text(value)]; }
  set innerHTML(_) { throw new Error('innerHTML used for message text'); }
  get html() {
    const attrs = this.attrs.map(([k, v]) => ` ${k}="${escape(v)}"`).join('');
    const inner = this.children.map((c) => c.html).join('');
    return this.tag == 'br' ? `<br${attrs}>` : `<${this.tag}${attrs}>${inner}</${this.tag}>`;
  }
}
class Fragment extends Node {
  constructor() { super(null); }
  get html() { return this.children.map((c) => c.html).join(''); }
}
const fakeDocument = {
  createElement: (tag) => new Node(tag),
  createDocumentFragment: () => new Fragment(),
};

const code = section('  function h(tag, props) {', '\n  }\n') +
  section('// ---------- light formatting: begin', '// ---------- light formatting: end');
const fmt = new Function('d', `${code}\nreturn fmt;`)(fakeDocument);

test('the widget formats every vector as the server does', () => {
  const failures = [];
  for (const vector of vectors) {
    const html = fmt(vector.input).html;
    if (html !== vector.html) failures.push(`${vector.name}\n  got  ${html}\n  want ${vector.html}`);
  }
  assert.deepEqual(failures, []);
});

test('message text never reaches innerHTML', () => {
  const html = fmt('<img src=x onerror=alert(1)> **<b>**').html;
  assert.equal(html, '<p>&lt;img src=x onerror=alert(1)&gt; <strong>&lt;b&gt;</strong></p>');
});

test('long and hostile text is formatted quickly', () => {
  const started = Date.now();
  for (const input of [
    '*'.repeat(10000), '*a '.repeat(3000), '**a '.repeat(3000), '['.repeat(10000), '[a]('.repeat(3000) + ')',
    '`'.repeat(10000), '` ``'.repeat(3000), 'https://a.test/' + '('.repeat(10000), 'https://a.test/' + ')'.repeat(10000),
    '- a\n'.repeat(3000),
  ]) fmt(input);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});
