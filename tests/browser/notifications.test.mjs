// The bell as an agent sees it, at 1440, 1024 and 375 (touch): Grace has the inbox open;
// a visitor writes on the shop's website, the bot has no answer and hands over; Grace's
// bell (sidebar, or the phone's top bar) shows the unread count live and the tab's title
// starts with it; the notifications page lists "The bot handed it over" with whom, and
// following it opens the conversation and reads it. At 1440 the member allowed desktop
// notifications: with the tab in the background the count that grew is also a system
// notification. Below the list she chooses how she is told (in the app, by push, by
// email; the customer's words in pushes; quiet hours in her zone), and Profile lists the
// device that gets her pushes, with Remove. axe-core finds nothing serious.
//
// Run with: KALTALK_BIN=... node --test tests/browser/notifications.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createOrganization, makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  CHROMIUM_ARGS, CHROMIUM_PATH, VIEWPORTS, artifactsDir, assertReadable, axeViolations,
  clip, expectVisible, openLiveInbox, outerHtml, saveArtifacts, startHostServer, steps, until,
  widgetHtml, openPage, firstVisible,
} from './helpers.mjs';

const OWNER = { name: 'Ada Lovelace', email: 'ada@acme.test', password: 'correct horse battery', org: 'Acme' };
const GRACE = { name: 'Grace Hopper', email: 'grace@acme.test', password: 'another long password', role: 'agent' };

function hostPage(baseUrl, token) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop — Acme</title></head>
<body><main><h1>Shop</h1></main>
<script src="${baseUrl}/widget.js" data-kaltalk-inbox="${token}" async></script>
</body>
</html>
`;
}

describe('the bell tells an agent of a handover', { timeout: 300_000 }, () => {
  let dataDir;
  let server;
  let host;
  let browser;
  let grace;
  let visitor;
  const consoles = [];

  const step = steps({
    diagnostics: () => `--- console ---\n${clip(consoles.flat().join('\n') || '(none)', 6000)}`,
    async onFailure(slug) {
      for (const [who, page] of [['grace', grace], ['visitor', visitor]]) {
        if (page && !page.isClosed()) await saveArtifacts(page, `notifications-failure-${slug}-${who}`);
      }
      if (server) await writeFile(path.join(artifactsDir, 'notifications-server-output.log'), server.output());
    },
  });

  const newPage = (viewport, who) => openPage(browser, server.baseUrl, viewport, who, consoles);

  /** The bell a person at this width sees, and its count. */
  const visibleBell = (page) => firstVisible(page, page.locator('[data-notification-bell]'), 'bell');

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    const { orgId } = await createOrganization(dataDir, OWNER, [GRACE]);
    const inbox = await runCli(
      ['admin', 'create-inbox', '--org-id', orgId, '--name', 'Website', '--domain', 'localhost'],
      { dataDir },
    );
    server = await startServer({ dataDir });
    host = await startHostServer({ '/shop.html': () => hostPage(server.baseUrl, inbox.values.embed_token) });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    // The owner switches the AI agent on: with no knowledge it hands every question over.
    const owner = await newPage(VIEWPORTS[0], OWNER);
    await owner.goto(`${server.baseUrl}/settings/ai`);
    await owner.locator('input[name=enabled]').check();
    await owner.locator('form[action="/settings/ai"] button[type=submit]').click();
    await owner.waitForLoadState();
    await owner.context().close();
  });

  after(async () => {
    await browser?.close();
    await host?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  let seen = 0; // Grace's notifications so far (one handover per width)

  for (const viewport of VIEWPORTS) {
    const question = `Is the blue kettle back in stock? (${viewport.name})`;

    const allowed = viewport === VIEWPORTS[0]; // desktop notifications allowed at 1440

    step(`at ${viewport.name} the bell counts the bot's handover live`, async () => {
      grace = await newPage(viewport, GRACE);
      if (allowed) {
        await grace.context().grantPermissions(['notifications'], { origin: server.baseUrl });
        // Record what the page asks the system to show, and let the test put the tab in
        // the background (a headless tab is always in front).
        await grace.context().addInitScript(() => {
          window.__shown = [];
          const Real = window.Notification;
          window.Notification = function (title, options) { window.__shown.push({ title, body: options?.body }); return new Real(title, options); };
          window.Notification.permission = Real.permission;
          window.Notification.requestPermission = Real.requestPermission.bind(Real);
          Object.defineProperty(Document.prototype, 'hidden', { get: () => window.__inBackground === true });
        });
      }
      await openLiveInbox(grace, server.baseUrl, 'all');
      const bell = await visibleBell(grace);
      const count = bell.locator('.bell-count');
      assert.equal(await count.isVisible(), false, `no count while nothing is unread:\n${await outerHtml(grace, '[data-notification-bell]')}`);
      assert.doesNotMatch(await grace.title(), /^\(\d+\)/);

      if (allowed) await grace.evaluate(() => { window.__inBackground = true; });
      visitor = await newPage(viewport, null);
      await visitor.goto(`http://localhost:${host.port}/shop.html`);
      await visitor.getByRole('button', { name: /^Open chat/ }).click();
      const box = visitor.getByRole('textbox', { name: 'Message', exact: true });
      await expectVisible(box, 'the widget\'s message box', async () => widgetHtml(visitor));
      await box.fill(question);
      await box.press('Enter');

      // The bot finds nothing and hands over; Grace's bell says so without a reload.
      await until(
        async () => (await count.isVisible()) && Number((await count.locator('[data-notification-count]').innerText()).trim()) === seen + 1,
        async () => `the bell did not count the handover:\n${await outerHtml(grace, '[data-notification-bell]')}\n${clip(server.output().slice(-3000))}`,
        30_000,
      );
      seen += 1;
      const shown = await grace.evaluate(() => window.__shown ?? null);
      if (allowed) {
        assert.deepEqual(shown, [{ title: 'KalTalk', body: '1 unread notification' }], 'a system notification while in the background');
        await grace.evaluate(() => { window.__inBackground = false; });
      } else {
        assert.equal(shown, null);
      }
      await assertReadable(grace, count, null, `the bell's count at ${viewport.name}`, { scroll: false });
      assert.match(await grace.title(), /^\(1\) /, 'the tab title starts with the count');
      assert.match(await bell.getAttribute('href'), /\/notifications$/);
      await grace.screenshot({ path: path.join(artifactsDir, `notifications-bell-${viewport.name}.png`) });
    });

    step(`at ${viewport.name} the notification opens the handed-over conversation and is read`, async () => {
      const bell = await visibleBell(grace);
      if (viewport.hasTouch) await bell.tap();
      else await bell.click();
      await grace.waitForURL(/\/notifications$/);
      const item = grace.locator('.notifications li.unread').first();
      await assertReadable(grace, item.locator('.what'), null, `the notification's headline at ${viewport.name}`);
      assert.equal(await item.locator('.what').innerText(), 'The bot handed it over');
      assert.match(await item.locator('.meta').innerText(), /Website/);
      assert.match(await item.locator('.who').innerText(), /^Visitor [0-9a-f]{6}$/, 'named as the inbox names the visitor');
      // Below the list, how she is told: every kind in the app and by push by default,
      // by email what waits on her; names and words in pushes off; her browser's zone.
      const handovers = grace.getByLabel('In the app: Conversations the bot hands over');
      await assertReadable(grace, handovers, null, `the handover choice at ${viewport.name}`);
      assert.equal(await handovers.isChecked(), true);
      const pushed = grace.getByLabel('By push: Conversations the bot hands over');
      await assertReadable(grace, pushed, null, `the handover's push choice at ${viewport.name}`);
      assert.equal(await pushed.isChecked(), true);
      await assertReadable(grace, grace.getByRole('columnheader', { name: 'Email' }), null, `the email column at ${viewport.name}`);
      assert.equal(await grace.locator('.notification-settings input[name=in_app]:checked').count(), 6);
      assert.equal(await grace.locator('.notification-settings input[name=push]:checked').count(), 6);
      assert.equal(await grace.locator('.notification-settings input[name=email]:checked').count(), 3);
      const words = grace.getByLabel(/Show the customer's name and words in pushes/);
      await assertReadable(grace, words, null, `the push text choice at ${viewport.name}`);
      assert.equal(await words.isChecked(), false, 'no customer words in pushes by default');
      await assertReadable(grace, grace.getByLabel('From'), null, `quiet hours at ${viewport.name}`);
      const zone = await grace.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
      assert.equal(await grace.locator('#time_zone').inputValue(), zone, 'the zone starts as the browser\'s');
      const getPushes = grace.getByRole('button', { name: 'Get pushes on this device' });
      await assertReadable(grace, getPushes, null, `the push button at ${viewport.name}`);
      const desktop = grace.getByRole('button', { name: 'Show desktop notifications' });
      if (allowed) {
        assert.equal(await desktop.isVisible(), false, 'already allowed: nothing to ask');
        assert.match(await grace.locator('#desktop-notifications-status').innerText(), /Desktop notifications are on/);
      } else {
        await assertReadable(grace, desktop, null, `the desktop notifications button at ${viewport.name}`);
      }
      await grace.locator('.notifications').scrollIntoViewIfNeeded();
      await grace.screenshot({ path: path.join(artifactsDir, `notifications-page-${viewport.name}.png`), fullPage: true });
      const found = await axeViolations(grace);
      assert.deepEqual(found, [], `axe-core found on the notifications page:\n${found.join('\n')}`);

      const link = item.locator('a');
      if (viewport.hasTouch) await link.tap();
      else await link.click();
      await grace.waitForURL(/\/inbox\?view=all&c=/);
      const message = grace.locator('#messages article', { hasText: question });
      await assertReadable(grace, message, '#messages', `the visitor's question at ${viewport.name}`);
      const after = await visibleBell(grace);
      assert.equal(await after.locator('.bell-count').isVisible(), false, 'read: the count is gone');
      assert.doesNotMatch(await grace.title(), /^\(\d+\)/);
      await grace.screenshot({ path: path.join(artifactsDir, `notifications-opened-${viewport.name}.png`) });
    });

    step(`at ${viewport.name} Profile lists the device that gets her pushes, and removes it`, async () => {
      // What "Get pushes on this device" registers after the browser subscribed (headless
      // Chromium's push service is Google's, unreachable here): a subscription with a
      // key and auth secret this page makes.
      const status = await grace.evaluate(async () => {
        const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
        const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
        const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        const response = await fetch('/notifications/push-subscriptions', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content },
          body: JSON.stringify({
            endpoint: 'https://fcm.googleapis.com/fcm/send/browser-test',
            expirationTime: null,
            keys: { p256dh: b64url(raw), auth: b64url(crypto.getRandomValues(new Uint8Array(16))) },
          }),
        });
        return response.status;
      });
      assert.equal(status, 201);
      await grace.goto(`${server.baseUrl}/settings/profile#devices`);
      const device = grace.locator('#devices li', { hasText: "Google's push service" });
      await assertReadable(grace, device.locator('.what'), null, `the device at ${viewport.name}`);
      const remove = device.getByRole('button', { name: /^Remove/ });
      await assertReadable(grace, remove, null, `its Remove button at ${viewport.name}`);
      await grace.locator('#devices').scrollIntoViewIfNeeded();
      await grace.screenshot({ path: path.join(artifactsDir, `notifications-devices-${viewport.name}.png`) });
      const found = await axeViolations(grace);
      assert.deepEqual(found, [], `axe-core found on the profile page:\n${found.join('\n')}`);
      if (viewport.hasTouch) await remove.tap();
      else await remove.click();
      await grace.waitForURL(/notice=device-removed/);
      await assertReadable(grace, grace.getByText('That device gets no more pushes.'), null, `the removal notice at ${viewport.name}`);
      assert.equal(await grace.locator('#devices li').count(), 0);
      for (const page of [grace, visitor]) await page.context().close();
      seen = 0;
    });
  }
});
