// @mentions in a private note, as a person sees them at 1440, 1024 and 375 (touch): the
// agent types "@gr" in a note, Grace shows in the completion list inside the viewport,
// the keyboard picks her, the note is sent and shows with the mention marked; Grace sees
// her own mention marked more strongly; a reply offers nobody; axe-core finds nothing
// serious with the list open.
//
// Run with: KALTALK_BIN=... node --test tests/browser/mentions.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createOrganization, makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  CHROMIUM_ARGS, CHROMIUM_PATH, VIEWPORTS, artifactsDir, assertReadable, axeViolations,
  clip, logIn, openLiveInbox, outerHtml, saveArtifacts, steps, until, watchConsole,
} from './helpers.mjs';

const OWNER = { name: 'Ada Lovelace', email: 'ada@acme.test', password: 'correct horse battery', org: 'Acme' };
const GRACE = { name: 'Grace Hopper', email: 'grace@acme.test', password: 'another long password', role: 'agent' };

/** The box of `locator` and whether it lies inside the viewport, at least a line high. */
async function visibleBox(locator) {
  return locator.evaluate((el) => {
    const box = el.getBoundingClientRect();
    const line = parseFloat(getComputedStyle(el).lineHeight) || parseFloat(getComputedStyle(el).fontSize) * 1.2;
    const inside = box.top >= -1 && box.left >= -1 && box.bottom <= innerHeight + 1 && box.right <= innerWidth + 1;
    return { top: box.top, bottom: box.bottom, left: box.left, right: box.right, height: box.height, line, inside, ok: inside && box.height + 1 >= Math.min(line, 16), viewport: `${innerWidth}x${innerHeight}` };
  });
}

describe('@mentions in private notes', { timeout: 300_000 }, () => {
  let dataDir;
  let server;
  let browser;
  let page;
  let consoleLines = [];
  let conversation;

  const step = steps({
    diagnostics: () => `--- console and page errors ---\n${clip(consoleLines.join('\n') || '(none)', 6000)}`,
    async onFailure(slug) {
      await saveArtifacts(page, `mentions-failure-${slug}`);
    },
  });

  async function newPage(viewport, who) {
    const context = await browser.newContext({ viewport: viewport.viewport, isMobile: viewport.isMobile, hasTouch: viewport.hasTouch });
    consoleLines = watchConsole(context, viewport.name);
    const p = await context.newPage();
    await logIn(p, server.baseUrl, who);
    return p;
  }

  async function shot(name) {
    await page.screenshot({ path: path.join(artifactsDir, `mentions-${name}.png`) });
  }

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    const { orgId } = await createOrganization(dataDir, OWNER, [GRACE]);
    const demo = await runCli(['admin', 'seed-demo', '--org-id', orgId], { dataDir });
    conversation = demo.values.conversation_id;
    assert.ok(conversation, `seed-demo should print conversation_id=; it printed:\n${demo.stdout}`);
    server = await startServer({ dataDir });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  const list = () => page.locator('#mention-list');
  const grace = () => page.locator('#mention-list [role=option]', { hasText: GRACE.name });

  for (const viewport of VIEWPORTS) {
    const text = `can you check the refund? (${viewport.name})`;

    step(`a reply offers nobody at ${viewport.name}`, async () => {
      page = await newPage(viewport, OWNER);
      await openLiveInbox(page, server.baseUrl, `all&c=${conversation}`);
      const box = page.locator('#reply-text');
      await box.click();
      await box.pressSequentially('@gr');
      // The list would open on this very input: it has been handled once the value is in.
      assert.equal(await box.inputValue(), '@gr');
      assert.equal(await list().isHidden(), true, `the list opened for a reply:\n${await outerHtml(page, '#mention-list')}`);
      await box.fill('');
    });

    step(`"@gr" in a note shows Grace inside the viewport at ${viewport.name}`, async () => {
      await page.locator('.composer .kind label', { hasText: 'Private note' }).click();
      const box = page.locator('#reply-text');
      await box.click();
      await box.pressSequentially('@gr');
      await until(async () => (await grace().count()) && (await grace().isVisible()), async () => `Grace is not offered:\n${await outerHtml(page, 'form.composer')}`);
      const option = await visibleBox(grace());
      assert.ok(option.ok, `Grace's option is not readable in the ${option.viewport} viewport: ${JSON.stringify(option)}`);
      const whole = await visibleBox(list());
      assert.ok(whole.inside, `the list leaves the ${whole.viewport} viewport: ${JSON.stringify(whole)}`);
      // It does not cover what is being typed.
      const typing = await visibleBox(box);
      assert.ok(whole.bottom <= typing.top + 1 || whole.top >= typing.bottom - 1, `the list covers the text: list ${JSON.stringify(whole)}, text ${JSON.stringify(typing)}`);
      assert.match(await grace().innerText(), /grace@acme\.test/, 'the option shows the email');
      assert.equal(await page.locator('#mention-list [role=option]').count(), 1, 'only Grace matches "gr"');
      // The text box points at the chosen option, as a combobox does.
      const active = await box.getAttribute('aria-activedescendant');
      assert.equal(active, await grace().getAttribute('id'));
      assert.equal(await grace().getAttribute('aria-selected'), 'true');
      await shot(`${viewport.name}-list`);
    });

    step(`axe-core finds nothing serious with the list open at ${viewport.name}`, async () => {
      const found = await axeViolations(page);
      assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
    });

    step(`the keyboard picks Grace and the note shows her marked at ${viewport.name}`, async () => {
      const box = page.locator('#reply-text');
      await box.press('ArrowDown');
      assert.equal(await grace().getAttribute('aria-selected'), 'true', 'one option: ArrowDown stays on Grace');
      await box.press('Enter');
      assert.equal(await box.inputValue(), `@${GRACE.name} `, 'Enter writes the name, not a new line');
      assert.equal(await list().isHidden(), true, 'the list closes once she is picked');
      const hint = await page.locator('form.composer input[name="mentions"]').inputValue();
      assert.match(hint, /^[0-9a-f-]{36}$/, `the picked id goes with the note: ${hint}`);
      await box.pressSequentially(text);
      await page.locator('form.composer button[type=submit]').click();
      const note = page.locator('#messages article.kind-note', { hasText: text });
      await until(async () => (await note.count()) > 0, async () => `the note did not appear:\n${await outerHtml(page, '#messages', 4000)}`);
      const mention = note.locator('.mention');
      assert.equal(await mention.innerText(), `@${GRACE.name}`);
      assert.equal(await note.locator('.mention-me').count(), 0, 'Ada is not Grace');
      await assertReadable(page, mention, '#messages', `the mention at ${viewport.name}:`);
      const styled = await mention.evaluate((el) => ({ weight: getComputedStyle(el).fontWeight, background: getComputedStyle(el).backgroundColor }));
      assert.ok(Number(styled.weight) >= 600 && styled.background !== 'rgba(0, 0, 0, 0)', `the mention is not marked: ${JSON.stringify(styled)}`);
      assert.equal(await page.locator('form.composer input[name="mentions"]').inputValue(), '', 'the hint is cleared once sent');
      await shot(`${viewport.name}-note`);
    });

    step(`Escape closes the list and a tap picks at ${viewport.name}`, async () => {
      const box = page.locator('#reply-text');
      await box.click();
      await box.pressSequentially('and @gra');
      await until(async () => grace().isVisible(), async () => `Grace is not offered again:\n${await outerHtml(page, 'form.composer')}`);
      await box.press('Escape');
      assert.equal(await list().isHidden(), true, 'Escape closes the list');
      assert.equal(await box.inputValue(), 'and @gra', 'Escape keeps the text');
      await box.pressSequentially('c');
      assert.equal(await list().isHidden(), true, 'closed for this "@" until it is typed again');
      await box.fill('');
      await box.pressSequentially('@gr');
      await until(async () => grace().isVisible(), async () => 'Grace is not offered for a new "@"');
      if (viewport.hasTouch) await grace().tap();
      else await grace().click();
      assert.equal(await box.inputValue(), `@${GRACE.name} `);
      await box.fill('');
      await page.locator('input[name="mentions"]').evaluate((el) => { el.value = ''; });
      await page.context().close();
    });

    step(`Grace sees her own mention marked more strongly at ${viewport.name}`, async () => {
      page = await newPage(viewport, GRACE);
      await page.goto(`${server.baseUrl}/inbox?view=all&c=${conversation}`);
      const note = page.locator('#messages article.kind-note', { hasText: text });
      await until(async () => (await note.count()) > 0, async () => `Grace does not see the note:\n${await outerHtml(page, '#messages', 4000)}`);
      const mine = note.locator('.mention.mention-me');
      assert.equal(await mine.count(), 1, `no stronger mark for Grace:\n${await outerHtml(page, `#${await note.getAttribute('id')}`)}`);
      // The conversation opens on its newest message, this note: no scrolling needed.
      await assertReadable(page, mine, '#messages', `Grace's own mention at ${viewport.name}:`, { scroll: false });
      assert.match(await mine.innerText(), /^@Grace Hopper/);
      await shot(`${viewport.name}-grace`);
      const found = await axeViolations(page);
      assert.deepEqual(found, [], `axe-core found on Grace's view:\n${found.join('\n')}`);
      await page.context().close();
    });
  }
});
