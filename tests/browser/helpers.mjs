// What the browser tests share: how Chromium is started, polling with a helpful failure
// message, reading the widget's shadow root, recording console output, saving
// artifacts, the customer's website, and step-by-step tests that stop at the first
// failing step with the page state saved.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const artifactsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
export const ACTION_TIMEOUT_MS = 15_000;

/** Poll `fn` until it returns a truthy value; return it, or throw `message()` on timeout. */
export async function until(fn, message, timeoutMs = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new assert.AssertionError({ message: await message() });
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function clip(text, max = 3000) {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

export async function outerHtml(page, selector, max = 3000) {
  if (!page || page.isClosed()) return `<no page>`;
  const html = await page
    .locator(selector)
    .first()
    .evaluate((el) => el.outerHTML, null, { timeout: 2000 })
    .catch(() => `<no ${selector}>`);
  return clip(html.replace(/\n{2,}/g, '\n'), max);
}

/** The widget's shadow-root markup (page.content() does not include it). */
export async function widgetHtml(page, max = 4000) {
  if (!page || page.isClosed()) return '<no page>';
  const html = await page
    .evaluate(() => {
      const host = document.getElementById('kaltalk-widget');
      if (!host) return '<no #kaltalk-widget element>';
      if (!host.shadowRoot) return '<#kaltalk-widget has no open shadow root>';
      return host.shadowRoot.innerHTML.replace(/<style>[\s\S]*?<\/style>/g, '<style>…</style>');
    })
    .catch((e) => `<cannot read the widget: ${e.message}>`);
  return clip(html, max);
}

/** Wait for `locator` to be visible; on timeout fail with `describe()`'s text. */
export async function expectVisible(locator, what, describe) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`${what}\n${await describe()}`);
  }
}

/** Record console messages and uncaught errors of every page of `context`. */
export function watchConsole(context, who) {
  const lines = [];
  const watch = (page) => {
    page.on('console', (msg) => {
      const loc = msg.location();
      const where = loc?.url ? ` (${loc.url}:${loc.lineNumber})` : '';
      lines.push(`[${who} console.${msg.type()}] ${msg.text()}${where}`);
    });
    page.on('pageerror', (err) => lines.push(`[${who} pageerror] ${err.stack || err.message}`));
    page.on('requestfailed', (req) => lines.push(`[${who} requestfailed] ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  };
  context.on('page', watch);
  return lines;
}

export async function saveArtifacts(page, name, extra = '') {
  if (!page || page.isClosed()) return;
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, `${name}.png`), fullPage: true }).catch(() => {});
  const html = await page.content().catch(() => '');
  await writeFile(path.join(artifactsDir, `${name}.html`), `<!-- ${page.url()} -->\n${html}${extra}`);
}

/**
 * A tiny web server for the customer's website: `pages` maps a path to a function
 * returning its HTML; everything else is 404.
 */
export function startHostServer(pages) {
  const server = http.createServer((req, res) => {
    const page = pages[req.url];
    if (page) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page());
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

/**
 * Numbered steps of one story. A step after a failed one is skipped; a failing step
 * calls `onFailure(slug)` (save screenshots, server output) and gets `diagnostics()`
 * (console lines) appended to its message.
 *
 * @param {{ onFailure: (slug: string) => Promise<void>, diagnostics: () => string }} hooks
 */
export function steps({ onFailure, diagnostics }) {
  let failed = false;
  return function step(name, fn) {
    const slug = name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 40);
    it(name, async (t) => {
      if (failed) {
        t.skip('an earlier step failed');
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        failed = true;
        await onFailure(slug).catch(() => {});
        t.diagnostic(`page HTML, screenshots and server output are in ${artifactsDir}`);
        const extra = `\n${diagnostics()}`;
        if (err && typeof err === 'object' && typeof err.message === 'string') {
          const oldMessage = err.message;
          err.message = oldMessage + extra;
          if (typeof err.stack === 'string') err.stack = err.stack.replace(oldMessage, err.message);
          // assert.equal & co. print `generatedMessage` diffs instead of message.
          if ('generatedMessage' in err) err.generatedMessage = false;
        }
        throw err;
      }
    });
  };
}

/** Log in through the login page and wait to leave it. */
export async function logIn(page, baseUrl, { email, password }) {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForURL((u) => u.pathname !== '/login', { timeout: ACTION_TIMEOUT_MS }).catch(async () => {
    assert.fail(`login did not leave /login\n${await outerHtml(page, 'main')}`);
  });
}

/** Open the inbox view and wait until its WebSocket is live. */
export async function openLiveInbox(page, baseUrl, view) {
  await page.goto(`${baseUrl}/inbox?view=${view}`);
  await until(
    async () => (await page.locator('#inbox').getAttribute('data-live').catch(() => null)) === 'on',
    async () =>
      `expected #inbox[data-live="on"] (inbox.js sets it when /inbox/ws opens) at ${page.url()}\n` +
      `#inbox: ${await outerHtml(page, '#inbox', 1500)}`,
  );
}

/**
 * Steps of a story with an agent's page and a visitor's page: on failure both pages
 * (with the widget's shadow root) and the server's output are saved as
 * `${prefix}-failure-*`, and the console lines of both are added to the message.
 * `current()` returns `{ pageA, pageB, server, consoleA, consoleB }` as they are then.
 */
export function agentAndVisitorSteps(prefix, current) {
  function diagnostics() {
    const { consoleA, consoleB } = current();
    const logs = [...(consoleA ?? []), ...(consoleB ?? [])];
    return `--- console and page errors (${logs.length}) ---\n${clip(logs.join('\n') || '(none)', 6000)}`;
  }
  const step = steps({
    diagnostics,
    async onFailure(slug) {
      const { pageA, pageB, server } = current();
      await saveArtifacts(pageA, `${prefix}-failure-${slug}-agent`);
      await saveArtifacts(pageB, `${prefix}-failure-${slug}-visitor`, `\n<!-- widget shadow root:\n${(await widgetHtml(pageB, 50_000)).replace(/--/g, '- -')}\n-->\n`);
      if (server) await writeFile(path.join(artifactsDir, `${prefix}-server-output.log`), server.output());
    },
  });
  return { step, diagnostics };
}
