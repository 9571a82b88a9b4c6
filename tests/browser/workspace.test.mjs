// The agent workspace as a person sees it, at 1440×900, 1024×700 and 375×812 (touch):
// every message of a 30-message conversation (visitor texts of 1 to 40 lines, team
// replies, a bot answer with its sources, a private note, an image) and of an email with
// quoted history is readable (its box at least a line high, inside the message area and
// the viewport) after scrolling to it; axe-core finds no serious violation on any
// dashboard page at desktop and phone widths; the header follows events live; the inbox
// works from the keyboard alone; and an agent runs a conversation from a phone.
//
// Run with: KALTALK_BIN=... node --test tests/browser/workspace.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createOrganization, makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, VIEWPORTS, artifactsDir, assertReadable, axeViolations,
  clip, logIn, openLiveInbox, outerHtml, saveArtifacts, startHostServer, steps, until, watchConsole,
} from './helpers.mjs';

const OWNER = { name: 'Ada Lovelace', email: 'ada@acme.test', password: 'correct horse battery', org: 'Acme' };
const AGENT = { name: 'Grace Hopper', email: 'grace@acme.test', password: 'another long password', role: 'agent' };
const SUPPORT = 'support@acme.test';
const EMAIL_SUBJECT = 'Invoice 2231 charged twice';
const SCREENSHOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'crates', 'kaltalk-server', 'src', 'demo-cart-drawer.png');

/** A short email from a new customer: a conversation nobody has taken yet. */
function newCustomerEmail() {
  return [
    'From: Priya Patel <priya@customer.test>',
    `To: ${SUPPORT}`,
    'Subject: Cannot sign in',
    'Message-ID: <sign-in-priya@customer.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hi, the sign-in link you sent me has expired. Can you send a new one?',
  ].join('\r\n');
}

/** A customer's email with 45 lines of its own and the history it quotes. */
function customerEmail() {
  const own = [
    'Hello,',
    '',
    'We were charged twice for invoice 2231 this month. Could you refund one of the charges?',
    ...Array.from({ length: 45 }, (_, i) => `Detail ${i + 1}: the card ending 4242 shows two charges of 49 EUR on 1 December.`),
    '',
    'Thanks,',
    'Jonas',
  ];
  const quoted = ['On Mon, 30 Nov 2026 at 10:02, Acme Support <support@acme.test> wrote:', '> Hi Jonas, your invoice is attached.', '> Best, Acme'];
  return [
    'From: Jonas Berg <jonas@customer.test>',
    `To: ${SUPPORT}`,
    `Subject: ${EMAIL_SUBJECT}`,
    'Message-ID: <invoice-2231@customer.test>',
    'Date: Wed, 02 Dec 2026 09:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    ...own,
    '',
    ...quoted,
  ].join('\r\n');
}

/** Delivers `message` to the server's SMTP listener, as a mail relay would. */
function sendSmtp(port, from, to, message) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const script = [`EHLO relay.test`, `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA', `${message.replace(/\r\n\./g, '\r\n..')}\r\n.`, 'QUIT'];
    let buffer = '';
    let sent = 0;
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      buffer += chunk;
      // Each reply ends with a line "NNN text"; EHLO's has continuation lines "NNN-".
      const lines = buffer.split('\r\n').filter(Boolean);
      const last = lines[lines.length - 1];
      if (!last || !/^\d{3} /.test(last)) return;
      if (/^[45]/.test(last)) { socket.destroy(); reject(new Error(`SMTP refused: ${buffer}`)); return; }
      buffer = '';
      if (sent < script.length) socket.write(`${script[sent++]}\r\n`);
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

describe('the agent workspace as a person sees it', { timeout: 420_000 }, () => {
  let dataDir;
  let server;
  let browser;
  let page;
  let consoleLines = [];
  let demoConversation;
  let emailConversation;
  let smtpPort;
  let orgId;
  const orgOf = async () => orgId;

  const step = steps({
    diagnostics: () => `--- console and page errors ---\n${clip(consoleLines.join('\n') || '(none)', 6000)}`,
    async onFailure(slug) {
      await saveArtifacts(page, `workspace-failure-${slug}`);
    },
  });

  async function newPage(viewport, who = OWNER) {
    const context = await browser.newContext({ viewport: viewport.viewport, isMobile: viewport.isMobile, hasTouch: viewport.hasTouch });
    consoleLines = watchConsole(context, viewport.name);
    const p = await context.newPage();
    await logIn(p, server.baseUrl, who);
    return p;
  }

  async function shot(name) {
    await page.screenshot({ path: path.join(artifactsDir, `workspace-${name}.png`) });
  }

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    ({ orgId } = await createOrganization(dataDir, OWNER, [AGENT]));
    const demo = await runCli(['admin', 'seed-demo', '--org-id', orgId], { dataDir });
    demoConversation = demo.values.conversation_id;
    assert.ok(demoConversation, `seed-demo should print conversation_id=; it printed:\n${demo.stdout}`);
    await runCli(['admin', 'create-inbox', '--org-id', orgId, '--kind', 'email', '--address', SUPPORT], { dataDir });
    server = await startServer({ dataDir });
    const smtp = /SMTP listener ready address=127\.0\.0\.1:(\d+)/.exec(server.output());
    assert.ok(smtp, `the server should log its SMTP address; it logged:\n${clip(server.output())}`);
    smtpPort = Number(smtp[1]);
    await sendSmtp(smtpPort, 'jonas@customer.test', SUPPORT, customerEmail());
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  step('the email arrives as a conversation', async () => {
    page = await newPage(VIEWPORTS[0]);
    emailConversation = await until(async () => {
      await page.goto(`${server.baseUrl}/inbox?view=all`);
      const link = page.locator('[data-conversation-link]', { hasText: 'Jonas Berg' });
      return (await link.count()) ? link.first().getAttribute('data-conversation-link') : null;
    }, async () => `no conversation with Jonas Berg in the list:\n${await outerHtml(page, '#conversation-list')}`);
    await page.context().close();
  });

  for (const viewport of VIEWPORTS) {
    step(`every message of the sample conversation is readable at ${viewport.name}`, async () => {
      page = await newPage(viewport);
      await page.goto(`${server.baseUrl}/inbox?view=all&c=${demoConversation}`);
      const messages = page.locator('#messages article.message');
      const count = await messages.count();
      assert.ok(count >= 28, `expected the sample's 30 messages (the handover note is a timeline line), found ${count}`);
      const kinds = new Set();
      for (let i = 0; i < count; i++) {
        const message = messages.nth(i);
        const label = await message.getAttribute('aria-label');
        const className = await message.getAttribute('class');
        kinds.add(className);
        // A message's words, or, for an image alone, its thumbnail.
        const text = message.locator('.bubble > .text');
        const target = (await text.count()) ? text : message.locator('.thumb img');
        await assertReadable(page, target.first(), '#messages', `message ${i + 1} of ${count} (${label}, ${className}) at ${viewport.name}:`);
        if (i === 0) await shot(`${viewport.name}-first`);
      }
      for (const kind of ['from-contact', 'from-agent', 'from-bot', 'kind-note']) {
        assert.ok([...kinds].some((k) => k.includes(kind)), `the sample should hold a ${kind} message; it held ${[...kinds].join(', ')}`);
      }
      // The bot's sources and the day separators are readable too.
      await assertReadable(page, page.locator('.citations a').first(), '#messages', `the bot answer's first source at ${viewport.name}:`);
      await assertReadable(page, page.locator('#messages .day').first(), '#messages', `the first day separator at ${viewport.name}:`);
      // The newest message is where the conversation opens.
      await page.goto(`${server.baseUrl}/inbox?view=all&c=${demoConversation}`);
      const newest = await messages.last().evaluate((el) => {
        const box = el.getBoundingClientRect();
        const area = el.closest('#messages').getBoundingClientRect();
        return { bottom: box.bottom, areaTop: area.top, areaBottom: area.bottom };
      });
      assert.ok(
        newest.bottom <= newest.areaBottom + 1 && newest.bottom > newest.areaTop + 16,
        `the conversation should open on its newest message's end: it ends at ${newest.bottom}, the message area spans ${newest.areaTop}–${newest.areaBottom}`,
      );
      await shot(`${viewport.name}-conversation`);
    });

    step(`the email with quoted history is readable at ${viewport.name}`, async () => {
      await page.goto(`${server.baseUrl}/inbox?view=all&c=${emailConversation}`);
      const email = page.locator('#messages article.message').first();
      await assertReadable(page, email.locator('.bubble > .text'), '#messages', `the email's own words at ${viewport.name}:`);
      await assertReadable(page, page.locator('#conversation-subject'), '#thread-head', `the subject at ${viewport.name}:`);
      const more = email.locator('details.more > summary');
      await assertReadable(page, more, '#messages', `"Show more" of the long email at ${viewport.name}:`);
      await more.click();
      await assertReadable(page, email.locator('details.more .text'), '#messages', `the rest of the email at ${viewport.name}:`);
      const quote = email.locator('details.quote > summary');
      await assertReadable(page, quote, '#messages', `"Show quoted text" at ${viewport.name}:`);
      await quote.click();
      await assertReadable(page, email.locator('.quoted'), '#messages', `the quoted history at ${viewport.name}:`);
      await shot(`${viewport.name}-email`);
      await page.context().close();
    });
  }

  const PAGES = [
    '/', '/inbox', '/inbox?view=all&c=DEMO', '/contacts', '/settings', '/settings/contact-attributes', '/settings/inboxes', '/settings/canned-responses', '/settings/ai',
    '/settings/ai/playground', '/settings/knowledge', '/settings/team', '/settings/api-keys', '/settings/webhooks',
    '/settings/api/reference', '/settings/organization', '/settings/profile', '/settings/outbox',
  ];
  // The pages with an id in their address, found from the lists that link them.
  async function detailPages(p) {
    const found = [];
    for (const [list, pattern] of [
      ['/settings/inboxes', /^\/settings\/inboxes\/[0-9a-f-]{36}$/],
      ['/contacts', /^\/contacts\/[0-9a-f-]{36}$/],
    ]) {
      await p.goto(`${server.baseUrl}${list}`);
      const hrefs = await p.locator('a[href]').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
      const first = hrefs.find((h) => pattern.test(h));
      assert.ok(first, `no link matching ${pattern} on ${list}`);
      found.push(first);
    }
    return found;
  }

  for (const [viewport, scheme] of [[VIEWPORTS[0], 'light'], [VIEWPORTS[2], 'light'], [VIEWPORTS[1], 'dark']]) {
    step(`axe-core finds no serious violation on any dashboard page at ${viewport.name} (${scheme})`, async () => {
      page = await newPage(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      const found = [];
      const pages = [...PAGES, ...(await detailPages(page))];
      for (const url of pages) {
        const response = await page.goto(`${server.baseUrl}${url.replace('DEMO', demoConversation)}`);
        assert.equal(response.status(), 200, `${url} answered ${response.status()}`);
        for (const line of await axeViolations(page)) found.push(`${url}: ${line}`);
        // Nothing pushes the page wider than the screen (it would scroll sideways).
        const wide = await page.evaluate(() => {
          const over = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && !el.closest('.table-wrap, .sr-only, .skip, .sidebar'));
          return { scroll: document.documentElement.scrollWidth, width: innerWidth, first: over.slice(0, 3).map((el) => `${el.tagName.toLowerCase()}.${el.className}`) };
        });
        if (wide.scroll > wide.width + 1) found.push(`${url}: the page is ${wide.scroll} px wide in a ${wide.width} px viewport (${wide.first.join(', ')})`);
      }
      if (scheme === 'dark') {
        await page.goto(`${server.baseUrl}/inbox?view=all&c=${demoConversation}`);
        await shot(`${viewport.name}-dark`);
      }
      assert.deepEqual(found, [], `axe-core at ${viewport.name} (${scheme}):\n${found.join('\n')}`);
      // Not one style or script the CSP had to refuse on any of them.
      const refused = consoleLines.filter((l) => /Content Security Policy|Refused to (apply|execute|load)/.test(l));
      assert.deepEqual(refused, [], 'the CSP refused something');
      await page.context().close();
    });
  }

  step('the inbox page loads exactly the assets scripts/dashboard-size.sh weighs, gzipped', async () => {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'dashboard-size.sh');
    const budgeted = execFileSync('bash', [script, '--list'], { encoding: 'utf8' }).trim().split('\n').sort();
    page = await newPage(VIEWPORTS[0]);
    const loaded = [];
    page.on('response', async (response) => {
      const m = /\/assets\/[0-9a-f]+\/(.+\.(?:css|js))$/.exec(new URL(response.url()).pathname);
      if (m) loaded.push({ name: m[1], encoding: (await response.allHeaders())['content-encoding'] });
    });
    await page.goto(`${server.baseUrl}/inbox?view=all&c=${demoConversation}`);
    await page.waitForLoadState('networkidle');
    assert.deepEqual(loaded.map((l) => l.name).sort(), budgeted, 'the files the budget script weighs are the files the inbox page loads');
    for (const l of loaded) assert.equal(l.encoding, 'gzip', `${l.name} is sent gzipped`);
    // Every asset comes from our own origin: no third-party request at all.
    const foreign = [];
    page.on('request', (r) => { if (!r.url().startsWith(server.baseUrl) && !r.url().startsWith('data:')) foreign.push(r.url()); });
    await page.reload();
    await page.waitForLoadState('networkidle');
    assert.deepEqual(foreign, []);
    await page.context().close();
  });

  for (const viewport of [VIEWPORTS[0], VIEWPORTS[2]]) {
    step(`axe-core finds no serious violation in the open widget at ${viewport.name}`, async () => {
      const context = await browser.newContext({ viewport: viewport.viewport, isMobile: viewport.isMobile, hasTouch: viewport.hasTouch });
      consoleLines = watchConsole(context, `widget-${viewport.name}`);
      page = await context.newPage();
      const embed = await runCli(['admin', 'create-inbox', '--org-id', (await orgOf()), '--name', `Widget ${viewport.name}`, '--domain', '127.0.0.1'], { dataDir });
      const host = await startHostServer({
        '/': () => `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title></head><body><h1>Shop</h1><main><p>Products.</p></main><script src="${server.baseUrl}/widget.js" data-kaltalk-inbox="${embed.values.embed_token}" async></script></body></html>`,
      });
      try {
        await page.goto(`http://127.0.0.1:${host.port}/`);
        const launcher = page.locator('#kaltalk-widget').getByRole('button').first();
        await launcher.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
        await launcher.click();
        await page.locator('#kaltalk-widget textarea, #kaltalk-widget [role=log]').first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
        // The panel fades in (inside the widget's shadow root, whose animations the
        // document's list leaves out): a picture taken before that ends shows it
        // see-through. Endless animations (the typing dots) are not waited for.
        await page.evaluate(() => {
          const roots = [document, document.getElementById('kaltalk-widget')?.shadowRoot].filter(Boolean);
          return Promise.all(roots.flatMap((root) => root.getAnimations())
            .filter((animation) => animation.effect?.getTiming().iterations !== Infinity)
            .map((animation) => animation.finished));
        });
        await page.screenshot({ path: path.join(artifactsDir, `workspace-widget-${viewport.name}.png`) });
        const found = await axeViolations(page);
        assert.deepEqual(found, [], `axe-core in the widget at ${viewport.name}:\n${found.join('\n')}`);
      } finally {
        await host.close();
        await context.close();
      }
    });
  }

  step('the sign-in, sign-up and password pages have no serious violation either', async () => {
    for (const viewport of [VIEWPORTS[0], VIEWPORTS[2]]) {
      const context = await browser.newContext({ viewport: viewport.viewport, isMobile: viewport.isMobile, hasTouch: viewport.hasTouch });
      page = await context.newPage();
      for (const url of ['/login', '/signup', '/forgot-password']) {
        const response = await page.goto(`${server.baseUrl}${url}`);
        assert.equal(response.status(), 200, `${url} answered ${response.status()}`);
        assert.deepEqual(await axeViolations(page), [], `${url} at ${viewport.name}`);
      }
      await context.close();
    }
  });

  step('the header follows another agent\'s changes live', async () => {
    page = await newPage(VIEWPORTS[0]);
    await openLiveInbox(page, server.baseUrl, 'all');
    await page.goto(`${server.baseUrl}/inbox?view=all&c=${emailConversation}`);
    await until(async () => (await page.locator('#inbox').getAttribute('data-live')) === 'on', async () => 'the inbox feed did not connect');
    const other = await newPage(VIEWPORTS[0], AGENT);
    await other.goto(`${server.baseUrl}/inbox?view=all&c=${emailConversation}`);
    // Each member is offered with their availability ("Grace Hopper (you) · online").
    const herself = other.locator('#assignee option', { hasText: `${AGENT.name} (you) · ` });
    await other.locator('#assignee').selectOption(await herself.getAttribute('value'));
    await until(
      async () => ((await page.locator('#conversation-assignee').textContent()) ?? '').includes(AGENT.name),
      async () => `the first agent's header did not show the new assignee:\n${await outerHtml(page, '#thread-head')}`,
    );
    await assertReadable(page, page.locator('#conversation-assignee'), '#thread-head', 'the assignee in the header:');
    // The change is a line in the timeline too.
    await until(
      async () => (await page.locator('#messages .timeline-line', { hasText: `Assigned to ${AGENT.name}` }).count()) > 0,
      async () => `no "Assigned to ${AGENT.name}" line:\n${await outerHtml(page, '#messages', 2000)}`,
    );
    await other.context().close();
    await page.context().close();
  });

  step('the inbox can be worked with the keyboard alone', async () => {
    page = await newPage(VIEWPORTS[0]);
    await openLiveInbox(page, server.baseUrl, 'all');
    await page.keyboard.press('j');
    await until(async () => (await page.locator('#conversation .thread').count()) > 0, async () => '"j" opened no conversation');
    await page.keyboard.press('r');
    await until(async () => page.evaluate(() => document.activeElement?.id === 'reply-text'), async () => '"r" did not focus the reply box');
    await page.keyboard.type('Typed without a mouse.');
    await page.keyboard.press('Control+Enter');
    const sent = page.locator('#messages article.message', { hasText: 'Typed without a mouse.' });
    await until(async () => (await sent.count()) > 0, async () => `Ctrl+Enter sent nothing:\n${await outerHtml(page, '#messages', 1500)}`);
    await assertReadable(page, sent.locator('.bubble > .text'), '#messages', 'the reply sent with the keyboard:');
    // The emoji picker, from the keyboard too: it opens, a search narrows it, Enter inserts.
    await page.locator('#emoji-button').focus();
    await page.keyboard.press('Enter');
    const picker = page.locator('#emoji-picker');
    await until(async () => picker.isVisible(), async () => `the emoji picker did not open:\n${await outerHtml(page, '.composer', 2000)}`);
    await page.keyboard.type('thumbs');
    await until(async () => (await picker.locator('[role=option]').count()) > 0, async () => `no emoji for "thumbs":\n${await outerHtml(page, '#emoji-picker', 2000)}`);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await until(async () => /\p{Extended_Pictographic}/u.test(await page.locator('#reply-text').inputValue()), async () => `no emoji inserted: ${JSON.stringify(await page.locator('#reply-text').inputValue())}`);
    await page.locator('#reply-text').fill('');
    await page.locator('#reply-text').blur();
    await page.keyboard.press('e');
    await until(
      async () => ((await page.locator('#conversation-status').textContent()) ?? '').trim() === 'resolved',
      async () => `"e" did not resolve:\n${await outerHtml(page, '#thread-head')}`,
    );
    // Tab reaches the list's links and the composer; every focused element shows a ring.
    await page.locator('#search').focus();
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused element shows no focus ring');
    await page.context().close();
  });

  step('an agent runs a conversation from a phone', async () => {
    await sendSmtp(smtpPort, 'priya@customer.test', SUPPORT, newCustomerEmail());
    page = await newPage(VIEWPORTS[2], AGENT);
    const item = page.locator('[data-conversation-link]', { hasText: 'Priya Patel' });
    await until(async () => {
      await page.goto(`${server.baseUrl}/inbox`);
      return (await item.count()) > 0;
    }, async () => `Priya's email did not reach the list:\n${await outerHtml(page, '#conversation-list')}`);
    // Nothing is assigned to Grace now: the inbox opens on Unassigned, the list alone.
    await until(async () => (await page.locator('.views a[aria-current="page"]').textContent())?.includes('Unassigned'), async () => `the inbox did not open on Unassigned:\n${await outerHtml(page, '.views')}`);
    await assertReadable(page, item.locator('.who'), '.inbox-list', 'the unassigned conversation in the phone list:');
    await shot('phone-list');
    await item.tap();
    await until(async () => (await page.locator('#inbox').getAttribute('data-pane')) === 'conversation', async () => 'tapping did not open the conversation pane');
    assert.equal(await page.locator('.inbox-list').isVisible(), false, 'the list stays beside the conversation on a phone');
    await assertReadable(page, page.locator('#messages article.message').last().locator('.bubble > .text'), '#messages', 'the newest message on the phone:');
    // Inputs are 16 px or more (no zoom on focus) and buttons 44 px or more.
    const sizes = await page.evaluate(() => ({
      input: parseFloat(getComputedStyle(document.getElementById('reply-text')).fontSize),
      send: document.querySelector('.composer button[type=submit]').getBoundingClientRect().height,
      back: document.querySelector('[data-back]').getBoundingClientRect().height,
    }));
    assert.ok(sizes.input >= 16, `the reply box's text is ${sizes.input} px`);
    assert.ok(sizes.send >= 44 && sizes.back >= 44, `touch targets: send ${sizes.send} px, back ${sizes.back} px`);
    await page.locator('#reply-text').fill('Replying from my phone, with a **screenshot**.');
    // The picker's input is visually hidden behind the paperclip; a chip shows the file.
    await page.locator('#reply-files').setInputFiles(SCREENSHOT);
    await assertReadable(page, page.locator('#attached-files li').first(), null, 'the attached file\'s chip:');
    await page.locator('.composer button[type=submit]').tap();
    const sent = page.locator('#messages article.message', { hasText: 'Replying from my phone' });
    await until(async () => (await sent.count()) > 0, async () => `the phone reply did not appear:\n${await outerHtml(page, '#messages', 2000)}`);
    await assertReadable(page, sent.locator('.bubble > .text'), '#messages', 'the phone reply:');
    await assertReadable(page, sent.locator('.bubble > .text strong'), '#messages', 'the bold word of the phone reply:');
    await assertReadable(page, sent.locator('.thumb img'), '#messages', 'the image sent from the phone:');
    assert.ok(await sent.locator('.thumb img').evaluate((img) => img.complete && img.naturalWidth > 0), 'the image loads');
    assert.equal(await page.locator('#attached-files li').count(), 0, 'the chips clear after sending');
    // The contact is one tap away, and back again.
    await page.locator('.contact-toggle').tap();
    await assertReadable(page, page.locator('#contact-panel h2'), null, 'the contact panel on the phone:');
    await shot('phone-contact');
    await page.locator('.close-contact').tap();
    await page.locator('#thread-head button[data-shortcut="e"]').tap();
    await until(
      async () => ((await page.locator('#conversation-status').textContent()) ?? '').trim() === 'resolved',
      async () => `resolving from the phone did not work:\n${await outerHtml(page, '#thread-head')}`,
    );
    await shot('phone-resolved');
    await page.locator('[data-back]').tap();
    await until(async () => (await page.locator('#inbox').getAttribute('data-pane')) === 'list', async () => 'back did not return to the list');
    // htmx swaps never set a style attribute the CSP must refuse.
    assert.deepEqual(consoleLines.filter((l) => /Content Security Policy/.test(l)), [], 'the CSP refused something');
    await page.context().close();
  });
});
