// First run, as a new owner meets it, at 1440×900 and at 375×812 (touch): sign up, see
// the setup checklist, add a website chat, copy its snippet, see the live preview of the
// real widget with the company name and colour, send a test message from the preview,
// and see the checklist tick. Visibility is asserted with bounding boxes, inside the
// preview frame and the widget's shadow root.
//
// Run with: KALTALK_BIN=... node --test first_run.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, clip, outerHtml, saveArtifacts, steps,
  until, watchConsole,
} from './helpers.mjs';

const COMPANY = 'Acme Support';
const COLOR = '#0f766e';
const COLOR_RGB = 'rgb(15, 118, 110)';
const TEST_MESSAGE = 'Hello from the preview';

const VIEWPORTS = [
  { name: 'desktop', width: 1440, height: 900, touch: false },
  { name: 'phone', width: 375, height: 812, touch: true },
];

/** The element's box, asserted visible: a real size, and (for `inside`) within that box. */
async function visibleBox(locator, what, inside) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`expected ${what} to be visible`);
  }
  const box = await locator.first().boundingBox();
  assert.ok(box && box.width >= 8 && box.height >= 8, `${what} has no real size: ${JSON.stringify(box)}`);
  if (inside) {
    assert.ok(
      box.x >= inside.x - 1 && box.y >= inside.y - 1 &&
        box.x + box.width <= inside.x + inside.width + 1 && box.y + box.height <= inside.y + inside.height + 1,
      `${what} ${JSON.stringify(box)} is not inside ${JSON.stringify(inside)}`,
    );
  }
  return box;
}

async function stepDone(page, id) {
  return page.locator(`#step-${id}`).getAttribute('data-done');
}

for (const vp of VIEWPORTS) {
  describe(`first run at ${vp.width}×${vp.height}`, { timeout: 180_000 }, () => {
    let server;
    let browser;
    let context;
    let page;
    let consoleLines = [];
    const owner = {
      name: 'Olivia Owner',
      email: `olivia-${vp.name}@acme.test`,
      password: 'correct horse battery',
      org: 'Acme',
    };
    const shot = (name) => page.screenshot({ path: path.join(artifactsDir, `first-run-${vp.name}-${name}.png`), fullPage: true });

    const step = steps({
      diagnostics: () => `--- console (${consoleLines.length}) ---\n${clip(consoleLines.join('\n') || '(none)', 6000)}`,
      async onFailure(slug) {
        await saveArtifacts(page, `first-run-${vp.name}-failure-${slug}`);
        if (server) await writeFile(path.join(artifactsDir, `first-run-${vp.name}-server-output.log`), server.output());
      },
    });

    before(async () => {
      await mkdir(artifactsDir, { recursive: true });
      server = await startServer();
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
      context = await browser.newContext({
        viewport: { width: vp.width, height: vp.height },
        hasTouch: vp.touch,
        isMobile: vp.touch,
      });
      context.setDefaultTimeout(ACTION_TIMEOUT_MS);
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
      consoleLines = watchConsole(context, vp.name);
      page = await context.newPage();
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    step('1. a new owner signs up and sees the setup checklist', async () => {
      const { baseUrl } = server;
      await page.goto(`${baseUrl}/signup`);
      await page.getByLabel('Your name', { exact: true }).fill(owner.name);
      await page.getByLabel('Work email', { exact: true }).fill(owner.email);
      await page.getByLabel('Password', { exact: true }).fill(owner.password);
      await page.getByLabel('Organization name', { exact: true }).fill(owner.org);
      await page.getByRole('checkbox', { name: 'I am 16 or older', exact: true }).check();
      await page.getByRole('button', { name: 'Create account', exact: true }).click();
      await page.waitForURL((u) => u.pathname === '/', { timeout: ACTION_TIMEOUT_MS });
      await visibleBox(page.locator('#setup-heading'), 'the checklist heading');
      await page.locator('#step-add-channel').scrollIntoViewIfNeeded();
      await visibleBox(page.locator('#step-add-channel strong', { hasText: 'Add a channel' }), 'the "Add a channel" step');
      assert.equal(await stepDone(page, 'add-channel'), 'no');
      assert.equal(await stepDone(page, 'test-message'), 'no');
      assert.equal(await page.getByText('arrive here next').count(), 0, 'the stale copy is gone');
      await shot('01-checklist');
    });

    step('2. the owner adds a website chat from the checklist', async () => {
      await page.locator('#step-add-channel').getByRole('link', { name: 'Add a channel' }).click();
      await page.waitForURL((u) => u.pathname === '/settings/inboxes');
      await page.getByLabel('Inbox name', { exact: true }).fill('Website');
      await page.locator('#allowed_domains').fill('shop.example.com');
      await page.getByRole('button', { name: 'Create inbox', exact: true }).click();
      await page.waitForURL((u) => /^\/settings\/inboxes\/[0-9a-f-]+$/.test(u.pathname));
    });

    step('3. the owner sets the company name and colour and copies the snippet', async () => {
      await page.getByLabel('Company name (shown in the widget\'s header)').fill(COMPANY);
      // The picker is there (scripts ran) and the text field beside it takes a typed colour.
      await visibleBox(page.locator('#color-picker'), 'the colour picker');
      await page.locator('#color').fill(COLOR);
      assert.equal(await page.locator('#color-picker').inputValue(), COLOR, 'the picker follows the text');
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.getByText('Settings saved.').first().waitFor();

      const snippet = (await page.locator('#embed-snippet').innerText()).trim();
      assert.match(snippet, /^<script src="http:\/\/127\.0\.0\.1:\d+\/widget\.js" data-kaltalk-inbox="wi_[^"]+" async><\/script>$/);
      const copy = page.getByRole('button', { name: 'Copy the snippet', exact: true });
      await visibleBox(copy, 'the copy button');
      await copy.click();
      await page.locator('[data-copied-for="embed-snippet"]', { hasText: 'Copied.' }).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), snippet, 'the clipboard holds the snippet');
    });

    step('4. the live preview shows the real widget with the company name and colour', async () => {
      const frameEl = page.locator('#widget-preview');
      await frameEl.scrollIntoViewIfNeeded();
      const frameBox = await visibleBox(frameEl, 'the preview frame');
      const frame = page.frameLocator('#widget-preview');
      const launcher = frame.getByRole('button', { name: 'Open chat' });
      const launcherBox = await visibleBox(launcher, 'the widget launcher in the preview', frameBox);
      assert.ok(launcherBox.width >= 44 && launcherBox.height >= 44, `launcher too small: ${JSON.stringify(launcherBox)}`);
      const background = await launcher.evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(background, COLOR_RGB, 'the launcher has the saved colour');
      await launcher.click();
      const title = frame.locator('#kt-title');
      await visibleBox(title, 'the widget header title', frameBox);
      assert.equal((await title.innerText()).trim(), COMPANY, 'the header shows the company name, not the inbox name');
      const header = await frame.locator('.kt-head').evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(header, COLOR_RGB, 'the header has the saved colour');
      await shot('02-inbox-settings-preview');
    });

    step('5. the owner sends a test message from the preview and the checklist ticks', async () => {
      const { baseUrl } = server;
      await page.goto(`${baseUrl}/`);
      assert.equal(await stepDone(page, 'add-channel'), 'yes');
      assert.equal(await stepDone(page, 'test-message'), 'no');
      const send = page.locator('#step-test-message').getByRole('link', { name: 'Send a test message' });
      await send.scrollIntoViewIfNeeded();
      await visibleBox(send, 'the "Send a test message" button');
      await send.click();
      const frameEl = page.locator('#home-preview');
      await frameEl.scrollIntoViewIfNeeded();
      const frameBox = await visibleBox(frameEl, 'the preview on the home page');
      const frame = page.frameLocator('#home-preview');
      const box = frame.getByRole('textbox', { name: 'Message', exact: true });
      await visibleBox(box, 'the widget\'s message box (the preview opened the chat)', frameBox);
      await box.fill(TEST_MESSAGE);
      // The widget shows the message at once; the server has it when the POST answers
      // (reloading the page before then would abort it).
      const stored = page.waitForResponse((r) => r.request().method() === 'POST' && /\/widget\/v1\/inboxes\/[^/]+\/messages$/.test(r.url()));
      await box.press('Enter');
      assert.equal((await stored).status(), 201, 'the widget stored the test message');
      const sent = frame.locator('[role=log]').getByText(TEST_MESSAGE);
      await visibleBox(sent, 'the test message in the widget', frameBox);
      await until(
        async () => {
          await page.goto(`${baseUrl}/`);
          return (await stepDone(page, 'test-message')) === 'yes';
        },
        async () => `the "Send a test message" step did not tick\n${await outerHtml(page, '#setup')}`,
      );
      assert.equal(await stepDone(page, 'widget-on-site'), 'no', 'the preview is not the customer\'s site');
      await page.locator('#step-test-message').scrollIntoViewIfNeeded();
      await visibleBox(page.locator('#step-test-message .badge', { hasText: 'Done' }), 'the "Done" badge of the test message step');
      await shot('03-checklist-ticked');
    });

    step('6. no page logged a CSP violation or a script error', async () => {
      const bad = consoleLines.filter((l) => /Content Security Policy|pageerror|Refused to/i.test(l));
      assert.deepEqual(bad, [], 'console errors');
    });
  });
}
