// Business hours end to end: the owner sets an inbox's hours on its settings page so that
// it is closed now (today is a holiday; every day opens 09:00–17:00 UTC), and a visitor on
// the customer's website sees, in the widget's header, when the team is back, on their own
// clock (New York), at desktop and phone widths. axe checks the section and the widget.
//
// The server runs on the real clock (the browser suite has no manual one), hence the
// holiday: whatever the time of day, the inbox is closed until tomorrow 09:00 UTC.
//
// Run: KALTALK_BIN=... node --test tests/browser/business_hours.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, VIEWPORTS, artifactsDir, assertReadable, axeViolations,
  expectVisible, logIn, saveArtifacts, startHostServer, steps, watchConsole, widgetHtml,
} from './helpers.mjs';

const OWNER = { name: 'Olivia Owner', email: 'olivia@acme.test', password: 'correct horse battery', org: 'Acme Support' };
const VISITOR_TZ = 'America/New_York';
const SIZES = [VIEWPORTS[0], VIEWPORTS[2]]; // 1440 and 375

function hostPage(baseUrl, token) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop — Acme</title></head>
<body>
<main><h1>Shop</h1><p>Our team answers Monday to Sunday, 09:00 to 17:00 UTC.</p></main>
<script src="${baseUrl}/widget.js" data-kaltalk-inbox="${token}" async></script>
</body>
</html>
`;
}

/** The widget's words for `backAt`, on the visitor's clock, as chat.js says them. */
function expectedBack(backAt, now) {
  const inZone = (d) => new Intl.DateTimeFormat('en-CA', { timeZone: VISITOR_TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  const days = Math.round((Date.parse(inZone(backAt)) - Date.parse(inZone(now))) / 864e5);
  const f = (o) => new Intl.DateTimeFormat('en-US', { timeZone: VISITOR_TZ, ...o }).format(backAt);
  const when = days < 1 ? 'today' : days === 1 ? 'tomorrow'
    : f(days < 7 ? { weekday: 'long' } : { weekday: 'long', month: 'long', day: 'numeric' });
  return `We're back ${when} at ${f({ hour: 'numeric', minute: '2-digit' })}`;
}

describe('business hours: outside them the widget says when the team is back', { timeout: 180_000 }, () => {
  let dataDir;
  let server;
  let host;
  let browser;
  let owner;
  let inboxId;
  let embedToken;
  let hostUrl;
  const consoles = []; // each context's console lines, as watchConsole keeps them

  const step = steps({
    diagnostics: () => `--- console ---\n${consoles.flat().join('\n') || '(none)'}`,
    async onFailure(slug) {
      await saveArtifacts(owner, `business-hours-failure-${slug}`);
      if (server) await writeFile(path.join(artifactsDir, 'business-hours-server-output.log'), server.output());
    },
  });

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    const user = await runCli(
      ['admin', 'create-user', '--email', OWNER.email, '--name', OWNER.name, '--password-stdin', '--org', OWNER.org],
      { dataDir, stdin: `${OWNER.password}\n` },
    );
    const inbox = await runCli(
      ['admin', 'create-inbox', '--org-id', user.values.org_id, '--name', 'Website', '--domain', 'localhost'],
      { dataDir },
    );
    inboxId = inbox.values.inbox_id;
    embedToken = inbox.values.embed_token;
    assert.ok(inboxId && embedToken, `create-inbox printed:\n${inbox.stdout}`);
    server = await startServer({ dataDir });
    host = await startHostServer({ '/shop.html': () => hostPage(server.baseUrl, embedToken) });
    hostUrl = `http://localhost:${host.port}/shop.html`;
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await host?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  step('1. the owner sets the hours, closed today for a holiday, and sees it said', async () => {
    const ctx = await browser.newContext({ viewport: VIEWPORTS[0].viewport, timezoneId: 'UTC' });
    ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    consoles.push(watchConsole(ctx, 'owner'));
    owner = await ctx.newPage();
    await logIn(owner, server.baseUrl, OWNER);
    await owner.goto(`${server.baseUrl}/settings/inboxes/${inboxId}`);
    const section = owner.locator('#business-hours');
    await expectVisible(section.getByRole('heading', { name: 'Business hours' }), 'the Business hours section', async () => '');
    // Never saved: the zone is the browser's (UTC here).
    assert.equal(await section.getByLabel('Time zone').inputValue(), 'UTC');
    await section.getByLabel('Use business hours for this inbox').check();
    for (const day of ['Saturday', 'Sunday']) await section.getByLabel(day, { exact: true }).check();
    for (const day of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']) {
      await section.getByLabel(`${day} opens at`).fill('09:00');
      await section.getByLabel(`${day} closes at`).fill('17:00');
    }
    const today = new Date().toISOString().slice(0, 10);
    await section.getByLabel('Add a holiday').fill(today);
    await section.getByRole('button', { name: 'Save business hours' }).click();
    await owner.waitForURL(/notice=hours-saved/);
    const status = owner.locator('#hours-status');
    await assertReadable(owner, status, null, 'the hours status line');
    assert.match(await status.innerText(), /^Closed now: back tomorrow at 09:00 \(UTC time\)\.$/);
    await assertReadable(owner, owner.locator('#out-of-office-preview'), null, 'the out-of-office preview');
    assert.match(await owner.locator('#out-of-office-preview').innerText(), /when we're back tomorrow at 09:00 \(UTC time\)\./);
    await section.screenshot({ path: path.join(artifactsDir, 'business-hours-settings-desktop-1440.png') });
    const found = await axeViolations(owner);
    assert.deepEqual(found, [], `axe on the settings page:\n${found.join('\n')}`);

    // The same section on a phone.
    await owner.setViewportSize(VIEWPORTS[2].viewport);
    await owner.reload();
    await assertReadable(owner, owner.locator('#hours-status'), null, 'the status line at 375 px');
    await assertReadable(owner, owner.getByLabel('Sunday closes at'), null, 'Sunday\'s closing time at 375 px');
    await owner.locator('#business-hours').screenshot({ path: path.join(artifactsDir, 'business-hours-settings-phone-375.png') });
    const onPhone = await axeViolations(owner);
    assert.deepEqual(onPhone, [], `axe on the settings page at 375 px:\n${onPhone.join('\n')}`);
  });

  for (const size of SIZES) {
    step(`2. at ${size.name} the widget's header says when the team is back`, async () => {
      const config = await (await fetch(`${server.baseUrl}/widget/v1/inboxes/${embedToken}/config`)).json();
      assert.equal(config.open, false, JSON.stringify(config));
      assert.equal(config.agents_online, false);
      assert.ok(config.back_at, JSON.stringify(config));
      const backAt = new Date(config.back_at);
      const tomorrow = new Date(Date.now() + 864e5).toISOString().slice(0, 10);
      assert.equal(config.back_at, `${tomorrow}T09:00:00Z`);

      const ctx = await browser.newContext({
        viewport: size.viewport, isMobile: size.isMobile, hasTouch: size.hasTouch, timezoneId: VISITOR_TZ, locale: 'en-US',
      });
      ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
      consoles.push(watchConsole(ctx, `visitor ${size.name}`));
      const page = await ctx.newPage();
      try {
        await page.goto(hostUrl);
        await page.getByRole('button', { name: 'Open chat' }).click();
        const line = page.locator('#kaltalk-widget .kt-ht p');
        await expectVisible(line, 'the widget header\'s status line', async () => widgetHtml(page));
        const expected = expectedBack(backAt, new Date());
        assert.equal((await line.innerText()).trim(), expected, await widgetHtml(page));
        await assertReadable(page, line, '.kt-head', `"${expected}" at ${size.name}`);
        await page.screenshot({ path: path.join(artifactsDir, `business-hours-widget-${size.name}.png`) });
        const found = await axeViolations(page);
        assert.deepEqual(found, [], `axe on the widget at ${size.name}:\n${found.join('\n')}`);
      } catch (err) {
        await saveArtifacts(page, `business-hours-failure-widget-${size.name}`, `\n<!-- ${await widgetHtml(page, 20_000)} -->`);
        throw err;
      } finally {
        await ctx.close();
      }
    });
  }
});
