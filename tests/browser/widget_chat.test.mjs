// End-to-end: a visitor on a customer's website (another origin) chats through
// the embedded widget with an agent in the live inbox, against the real server.
// Both sides update without reloading; the widget sets no cookie and talks to
// nobody but the page's own origin and the KalTalk server.
//
// Run with scripts/browser-test.sh (or: KALTALK_BIN=... node --test tests/browser/).

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, agentAndVisitorSteps, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, expectVisible, outerHtml,
  logIn, openLiveInbox, startHostServer, until, watchConsole, widgetHtml,
} from './helpers.mjs';

const OWNER = {
  name: 'Olivia Owner',
  email: 'olivia@acme.test',
  password: 'correct horse battery',
  org: 'Acme Support',
};
const PAGE_TITLE = 'Pricing — Acme';
const VISITOR_TZ = 'Europe/Paris';
const FIRST = 'Hello, I need help with my order';
const REPLY = 'Hi! Let me check that for you.';
const SECOND = 'Thanks! It is order #1234.';
const AFTER_RESET = 'Hi, a different person here.';

// ---------------------------------------------------------------- host page

function hostPage(baseUrl, token) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${PAGE_TITLE}</title>
<style>
  /* Hostile site CSS: none of it may reach the widget's shadow root. */
  * { font-size: 40px !important; color: red !important; font-family: serif !important; }
  div { margin: 17px !important; }
  button, textarea, input { border: 5px dashed lime !important; background: yellow !important; }
</style>
</head>
<body>
<h1>Pricing</h1>
<p>Acme Pro: 49 € per month.</p>
<script src="${baseUrl}/widget.js" data-kaltalk-inbox="${token}" async></script>
</body>
</html>
`;
}

// ---------------------------------------------------------------- test

describe('website widget chat with the live inbox', { timeout: 180_000 }, () => {
  let dataDir;
  let server;
  let host;
  let browser;
  let ctxA; // agent (inbox)
  let ctxB; // visitor (customer's website)
  let pageA;
  let pageB;
  let consoleA;
  let consoleB;
  let orgId;
  let embedToken;
  let hostUrl;
  let hostOrigin;
  const requestsB = []; // every request URL of the visitor context (WebSockets included)
  const setCookiesB = []; // { url, value } of every Set-Cookie the visitor context received

  const { step, diagnostics } = agentAndVisitorSteps('widget', () => ({ pageA, pageB, server, consoleA, consoleB }));

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });

    // The owner and the web inbox, made with the CLI before the server starts.
    dataDir = await makeDataDir();
    const user = await runCli(
      ['admin', 'create-user', '--email', OWNER.email, '--name', OWNER.name, '--password-stdin', '--org', OWNER.org],
      { dataDir, stdin: `${OWNER.password}\n` },
    );
    orgId = user.values.org_id;
    assert.ok(orgId && user.values.user_id, `create-user should print user_id= and org_id=; it printed:\n${user.stdout}`);
    const inbox = await runCli(
      ['admin', 'create-inbox', '--org-id', orgId, '--name', 'Website', '--domain', 'localhost'],
      { dataDir },
    );
    embedToken = inbox.values.embed_token;
    assert.ok(
      inbox.values.inbox_id && embedToken && inbox.values.snippet,
      `create-inbox should print inbox_id=, embed_token= and snippet=; it printed:\n${inbox.stdout}`,
    );
    assert.ok(
      inbox.values.snippet.includes(`data-kaltalk-inbox="${embedToken}"`),
      `the snippet should carry the embed token: ${inbox.values.snippet}`,
    );

    server = await startServer({ dataDir });
    host = await startHostServer({ '/shop.html': () => hostPage(server.baseUrl, embedToken) });
    hostOrigin = `http://localhost:${host.port}`;
    hostUrl = `${hostOrigin}/shop.html`;

    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    ctxA = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    ctxB = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: VISITOR_TZ, locale: 'fr-FR' });
    for (const ctx of [ctxA, ctxB]) ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    consoleA = watchConsole(ctxA, 'agent');
    consoleB = watchConsole(ctxB, 'visitor');

    ctxB.on('request', (request) => requestsB.push(request.url()));
    ctxB.on('response', async (response) => {
      try {
        for (const { name, value } of await response.headersArray()) {
          if (name.toLowerCase() === 'set-cookie') setCookiesB.push({ url: response.url(), value });
        }
      } catch {
        // The response may be gone when the page navigated on; nothing to record.
      }
    });
    ctxB.on('page', (page) => page.on('websocket', (ws) => requestsB.push(ws.url())));

    pageA = await ctxA.newPage();
  });

  after(async () => {
    // Both sides as they ended (failures also saved widget-failure-* at the failing step).
    await pageA?.screenshot({ path: path.join(artifactsDir, 'widget-chat-agent.png'), fullPage: true }).catch(() => {});
    await pageB?.screenshot({ path: path.join(artifactsDir, 'widget-chat-visitor.png'), fullPage: true }).catch(() => {});
    await browser?.close();
    await host?.close();
    await server?.stop();
    if (server) await writeFile(path.join(artifactsDir, 'widget-server-output.log'), server.output());
    if (dataDir) await removeDataDir(dataDir);
  });

  step('1. the agent logs in and the inbox goes live', async () => {
    const { baseUrl } = server;
    await logIn(pageA, baseUrl, OWNER);
    await openLiveInbox(pageA, baseUrl, 'all');
    // Gone if the page reloads or navigates: proves later updates arrived live.
    await pageA.evaluate(() => { window.__noReload = true; });
  });

  step('2. the visitor opens the widget on the shop page and writes', async () => {
    pageB = await ctxB.newPage();
    await pageB.goto(hostUrl);
    assert.equal(await pageB.title(), PAGE_TITLE);
    await pageB.evaluate(() => { window.__noReload = true; });

    const launcher = pageB.getByRole('button', { name: 'Open chat' });
    await expectVisible(launcher, 'expected the widget launcher (a button named "Open chat")', async () =>
      `widget: ${await widgetHtml(pageB)}\n${diagnostics()}`);
    await launcher.click();

    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await expectVisible(box, 'expected the chat panel with a textbox named "Message" after opening', async () =>
      `widget: ${await widgetHtml(pageB)}`);

    // The host page's `* { font-size: 40px !important; color: red !important }` stays outside.
    const style = await box.evaluate((el) => {
      const s = getComputedStyle(el);
      return { fontSize: s.fontSize, color: s.color, fontFamily: s.fontFamily };
    });
    assert.notEqual(style.fontSize, '40px', `host-page CSS reached the widget's textbox: ${JSON.stringify(style)}`);
    assert.notEqual(style.color, 'rgb(255, 0, 0)', `host-page CSS reached the widget's textbox: ${JSON.stringify(style)}`);

    await box.fill(FIRST);
    await box.press('Enter');

    const log = pageB.locator('#kaltalk-widget [role=log]');
    await expectVisible(log.getByText(FIRST, { exact: true }), `expected ${JSON.stringify(FIRST)} in the widget's message log`, async () =>
      `widget: ${await widgetHtml(pageB)}`);
    // The server answered (201): the widget keeps the visitor token in localStorage.
    await until(
      async () =>
        pageB.evaluate((key) => {
          try { return /^vt_/.test(JSON.parse(localStorage.getItem(key))?.visitor_token ?? ''); } catch { return false; }
        }, `kaltalk:${embedToken}`),
      async () =>
        `expected localStorage["kaltalk:${embedToken}"].visitor_token (vt_…) after the first message; localStorage: ` +
        `${await pageB.evaluate(() => JSON.stringify({ ...localStorage }))}\nwidget: ${await widgetHtml(pageB)}`,
    );
  });

  step('3. the agent sees the new conversation live, with the visitor details', async () => {
    const link = pageA.locator('#conversation-list [data-conversation-link]', { hasText: FIRST });
    await expectVisible(link, `expected a link containing ${JSON.stringify(FIRST)} in #conversation-list without a reload`, async () =>
      `#conversation-list: ${await outerHtml(pageA, '#conversation-list')}\n#inbox data-live=${await pageA.locator('#inbox').getAttribute('data-live').catch(() => '?')}`);
    await link.first().click();

    await expectVisible(pageA.locator('#messages').getByText(FIRST), `expected ${JSON.stringify(FIRST)} in #messages after opening the conversation`, async () =>
      `#conversation: ${await outerHtml(pageA, '#conversation')}`);

    const aside = pageA.locator('aside.contact-panel');
    await expectVisible(aside, 'expected the visitor sidebar aside.contact-panel', async () => `#conversation: ${await outerHtml(pageA, '#conversation')}`);
    const field = async (name) => {
      const dd = aside.locator(`dd[data-field=${name}]`);
      return (await dd.count()) ? (await dd.first().innerText()).trim() : null;
    };
    const fields = {
      browser: await field('browser'),
      os: await field('os'),
      timezone: await field('timezone'),
      page: await field('page'),
    };
    const sidebar = await outerHtml(pageA, 'aside.contact-panel');
    assert.match(fields.browser ?? '', /Chrom(e|ium)|HeadlessChrome/, `Browser in the sidebar: ${JSON.stringify(fields)}\n${sidebar}`);
    assert.match(fields.os ?? '', /Linux/, `OS in the sidebar: ${JSON.stringify(fields)}\n${sidebar}`);
    assert.equal(fields.timezone, VISITOR_TZ, `Timezone in the sidebar: ${JSON.stringify(fields)}\n${sidebar}`);
    assert.ok((fields.page ?? '').includes(PAGE_TITLE), `Page in the sidebar should include ${JSON.stringify(PAGE_TITLE)}: ${JSON.stringify(fields)}\n${sidebar}`);
  });

  step('4. the agent replies and the visitor sees it live', async () => {
    await pageA.locator('#reply-text').fill(REPLY);
    await pageA.locator('#conversation').getByRole('button', { name: 'Send', exact: true }).click();
    await expectVisible(pageA.locator('#messages').getByText(REPLY), `expected the reply ${JSON.stringify(REPLY)} in the agent's #messages`, async () =>
      `#conversation: ${await outerHtml(pageA, '#conversation')}`);

    const log = pageB.locator('#kaltalk-widget [role=log]');
    await expectVisible(log.getByText(REPLY, { exact: true }), `expected the agent's reply ${JSON.stringify(REPLY)} in the widget without a reload`, async () =>
      `widget: ${await widgetHtml(pageB)}`);
  });

  step('5. the visitor writes again and the agent sees it live', async () => {
    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill(SECOND);
    await box.press('Enter');
    await expectVisible(pageA.locator('#messages').getByText(SECOND), `expected ${JSON.stringify(SECOND)} in the agent's #messages without a reload`, async () =>
      `#messages: ${await outerHtml(pageA, '#messages')}\n#inbox data-live=${await pageA.locator('#inbox').getAttribute('data-live').catch(() => '?')}\nwidget: ${await widgetHtml(pageB)}`);
    // The list follows too: the open conversation's preview becomes the new message.
    await expectVisible(pageA.locator('#conversation-list [data-conversation-link]', { hasText: SECOND }), `expected the conversation's preview in #conversation-list to become ${JSON.stringify(SECOND)}`, async () =>
      `#conversation-list: ${await outerHtml(pageA, '#conversation-list')}`);
  });

  step('5b. the visitor sends an image and the agent sees it inline, live', async () => {
    // A 1×1 PNG, attached through the widget's own file input.
    const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
      '1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7358184000000004945' + '4e44ae426082', 'hex');
    await pageB.locator('#kaltalk-widget input[type=file]').setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: png });
    const log = pageB.locator('#kaltalk-widget [role=log]');
    await expectVisible(log.locator('img[alt="receipt.png"]'), 'expected the image inline in the widget', async () =>
      `widget: ${await widgetHtml(pageB)}`);
    const agentImage = pageA.locator('#messages img[alt="receipt.png"]');
    await expectVisible(agentImage, "expected the image inline in the agent's #messages without a reload", async () =>
      `#messages: ${await outerHtml(pageA, '#messages')}`);
    // It really loaded (not a broken image) in both pages.
    await pageA.waitForFunction(() => { const img = document.querySelector('#messages img[alt="receipt.png"]'); return img && img.complete && img.naturalWidth === 1; });
    const widgetLoaded = await log.locator('img[alt="receipt.png"]').evaluate((img) => img.complete && img.naturalWidth === 1);
    assert.equal(widgetLoaded, true, 'the image loads in the widget from its signed URL');
  });


  step('6. neither page reloaded: every update above arrived live', async () => {
    for (const [who, page] of [['agent', pageA], ['visitor', pageB]]) {
      assert.equal(
        await page.evaluate(() => window.__noReload === true),
        true,
        `the ${who} page reloaded or navigated during the chat (now at ${page.url()})`,
      );
    }
  });

  step('7. the widget set no cookie and talked only to the page and the KalTalk server', async (t) => {
    assert.equal(await pageB.evaluate(() => document.cookie), '', 'document.cookie on the host page');
    const cookies = await ctxB.cookies();
    assert.deepEqual(cookies.map((c) => `${c.name} (${c.domain})`), [], 'cookies stored in the visitor context');

    const kaltalkOrigin = new URL(server.baseUrl).origin;
    const fromKaltalk = setCookiesB.filter((s) => new URL(s.url).origin === kaltalkOrigin);
    assert.deepEqual(fromKaltalk, [], 'Set-Cookie headers from the KalTalk server to the visitor');
    assert.deepEqual(setCookiesB, [], 'Set-Cookie headers of any kind in the visitor context');

    const allowed = new Set([hostOrigin, kaltalkOrigin]);
    const originOf = (u) => {
      const url = new URL(u);
      if (url.protocol === 'ws:') url.protocol = 'http:';
      if (url.protocol === 'wss:') url.protocol = 'https:';
      return url.origin;
    };
    const elsewhere = requestsB.filter((u) => !allowed.has(originOf(u)));
    assert.deepEqual(elsewhere, [], `requests to origins other than ${[...allowed].join(' and ')}`);

    // Sanity: the widget really did talk to the server (config, chat.js, messages, socket).
    const toKaltalk = requestsB.filter((u) => originOf(u) === kaltalkOrigin).map((u) => new URL(u).pathname);
    for (const want of ['/widget.js', '/widget/chat.js', `/widget/v1/inboxes/${embedToken}/config`, `/widget/v1/inboxes/${embedToken}/messages`, '/widget/v1/ws']) {
      assert.ok(toKaltalk.includes(want), `expected a request to ${want}; requests to KalTalk: ${JSON.stringify(toKaltalk)}`);
    }
    t.diagnostic(`visitor context: ${requestsB.length} requests, ${toKaltalk.length} to KalTalk: ${JSON.stringify(toKaltalk)}`);
    for (const line of [...consoleA, ...consoleB]) t.diagnostic(line);
  });

  step('8. KalTalk("reset") (the site logs out) clears the chat; the next person starts afresh', async () => {
    const key = `kaltalk:${embedToken}`;
    const tokenOf = () => pageB.evaluate((k) => {
      try { return JSON.parse(localStorage.getItem(k))?.visitor_token ?? null; } catch { return null; }
    }, key);
    const before = await tokenOf();
    assert.match(before ?? '', /^vt_/, 'a visitor token before the reset');
    await pageB.evaluate(() => window.KalTalk('reset'));

    const log = pageB.locator('#kaltalk-widget [role=log]');
    await until(
      async () => (await log.getByText(FIRST, { exact: true }).count()) === 0 && (await log.getByText(REPLY, { exact: true }).count()) === 0,
      async () => `expected the earlier messages gone from the widget after reset; widget: ${await widgetHtml(pageB)}`,
    );
    assert.equal(await tokenOf(), null, `localStorage["${key}"] after reset`);

    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await expectVisible(box, 'expected the message box still there after reset', async () => `widget: ${await widgetHtml(pageB)}`);
    await box.fill(AFTER_RESET);
    await box.press('Enter');
    await expectVisible(log.getByText(AFTER_RESET, { exact: true }), `expected ${JSON.stringify(AFTER_RESET)} in the widget`, async () =>
      `widget: ${await widgetHtml(pageB)}`);
    await until(
      async () => /^vt_/.test((await tokenOf()) ?? '') && (await tokenOf()) !== before,
      async () => `expected a new visitor token after the first message since reset; localStorage: ${await pageB.evaluate(() => JSON.stringify({ ...localStorage }))}`,
    );
    assert.equal(await log.getByText(FIRST, { exact: true }).count(), 0, 'the old chat stays gone');
    // The team sees a conversation of its own, beside the earlier one.
    const link = pageA.locator('#conversation-list [data-conversation-link]', { hasText: AFTER_RESET });
    await expectVisible(link, `expected a new conversation with ${JSON.stringify(AFTER_RESET)} in #conversation-list`, async () =>
      `#conversation-list: ${await outerHtml(pageA, '#conversation-list')}`);
    const hrefs = new Set(await pageA.locator('#conversation-list [data-conversation-link]').evaluateAll((links) => links.map((a) => a.getAttribute('href'))));
    assert.ok(hrefs.size >= 2, `the earlier conversation is still listed apart: ${await outerHtml(pageA, '#conversation-list')}`);
  });
});
