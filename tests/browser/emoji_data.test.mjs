// The composer's bundled emoji (crates/kaltalk-server/assets/emoji.json): a few hundred,
// each one emoji with a name to search by, its licence stated, no duplicates, and
// composer.js written in ASCII (assets are served without a charset).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const assets = new URL('../../crates/kaltalk-server/assets/', import.meta.url);
const data = JSON.parse(readFileSync(new URL('emoji.json', assets), 'utf8'));

test('the emoji set is complete, searchable and licensed', () => {
  assert.match(data.licence, /Unicode License/);
  const all = data.groups.flatMap((g) => g.emoji);
  assert.ok(all.length >= 300 && all.length <= 800, `${all.length} emoji`);
  const chars = new Set();
  const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
  for (const [char, name] of all) {
    assert.equal([...segmenter.segment(char)].length, 1, `${char} is one character`);
    assert.match(char, /\p{Extended_Pictographic}|\p{Emoji_Presentation}/u, `${char} is an emoji`);
    assert.match(name, /^[a-z0-9][a-z0-9 ,'+\-.:!&()]*$/, `${char} has a lower-case name: ${name}`);
    assert.ok(!chars.has(char), `${char} appears once`);
    chars.add(char);
  }
  for (const wanted of ['👍', '❤️', '🙏', '🎉', '😂', '✅', '👋']) assert.ok(chars.has(wanted), wanted);
});

test('composer.js is ASCII', () => {
  const source = readFileSync(new URL('composer.js', assets), 'utf8');
  assert.ok(!/[^\x00-\x7f]/.test(source));
});
