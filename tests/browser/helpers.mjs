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

/** The widths a person uses: a laptop, a small laptop or tablet, and a phone (touch). */
export const VIEWPORTS = [
  { name: 'desktop-1440', viewport: { width: 1440, height: 900 } },
  { name: 'laptop-1024', viewport: { width: 1024, height: 700 } },
  { name: 'phone-375', viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true },
];


/** The box of `target` and what keeps a person from reading it (empty when nothing). */
async function readability(target, area) {
  const facts = await target.first().evaluate((el, areaSelector) => {
    const box = el.getBoundingClientRect();
    const areaEl = areaSelector ? el.closest(areaSelector) : null;
    const areaBox = areaEl ? areaEl.getBoundingClientRect() : { top: 0, bottom: innerHeight, left: 0, right: innerWidth };
    const lineHeight = parseFloat(getComputedStyle(el).lineHeight) || parseFloat(getComputedStyle(el).fontSize) * 1.2;
    const style = getComputedStyle(el);
    return {
      box: { top: box.top, bottom: box.bottom, left: box.left, right: box.right, height: box.height, width: box.width },
      area: { top: areaBox.top, bottom: areaBox.bottom, left: areaBox.left, right: areaBox.right },
      viewport: { width: innerWidth, height: innerHeight },
      lineHeight,
      visibility: style.visibility,
      opacity: style.opacity,
    };
  }, area);
  const { box, area: a, viewport: v, lineHeight } = facts;
  const slack = 1; // sub-pixel rounding
  const problems = [];
  if (box.height + slack < Math.min(lineHeight, 16)) problems.push(`is ${box.height.toFixed(1)} px high, less than a line (${lineHeight} px)`);
  if (box.width < 8) problems.push(`is ${box.width.toFixed(1)} px wide`);
  // Its first line, at least, is on screen: the whole of a 40-line message cannot be.
  const firstLineBottom = Math.min(box.bottom, box.top + lineHeight);
  if (box.top < a.top - slack || firstLineBottom > a.bottom + slack) problems.push(`its first line (${box.top.toFixed(0)}–${firstLineBottom.toFixed(0)}) is outside its area (${a.top.toFixed(0)}–${a.bottom.toFixed(0)})`);
  if (box.top < -slack || firstLineBottom > v.height + slack) problems.push(`its first line is outside the ${v.width}×${v.height} viewport`);
  if (box.left < a.left - slack || box.right > a.right + slack) problems.push(`it overflows its area sideways (${box.left.toFixed(0)}–${box.right.toFixed(0)} in ${a.left.toFixed(0)}–${a.right.toFixed(0)})`);
  if (facts.visibility !== 'visible' || Number(facts.opacity) === 0) problems.push(`it is not visible (visibility ${facts.visibility}, opacity ${facts.opacity})`);
  return { box, problems };
}

/**
 * What a person sees: scroll `target` into view, then check that its box is at least one
 * line high and lies inside the viewport and inside `area` (the scrolling container it
 * belongs to). Returns the box. Failing, the message says which box was where.
 */
export async function assertReadable(page, target, area, what, { scroll = true } = {}) {
  await target.waitFor({ state: 'attached', timeout: ACTION_TIMEOUT_MS });
  // Its start at the top of its area, as a person scrolling to it reads it (a message
  // taller than the area cannot be seen whole).
  // A live refresh may swap the element while we look: look again until it reads well.
  let box;
  let problems = [];
  const deadline = Date.now() + ACTION_TIMEOUT_MS;
  for (;;) {
    if (scroll) await target.first().evaluate((el) => el.scrollIntoView({ block: 'start', inline: 'nearest' })).catch(() => {});
    ({ box, problems } = await readability(target, area).catch((e) => ({ box: null, problems: [`cannot be read (${e.message.split('\n')[0]})`] })));
    if (!problems.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (problems.length) assert.fail(`${what} ${problems.join('; ')}`);
  return box;
}

const axeSource = await import('node:fs/promises').then((fs) =>
  fs.readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'),
);

/**
 * axe-core's serious and critical violations on the page as it is now (the widget's open
 * shadow root included), as readable lines; empty when there are none.
 */
export async function axeViolations(page) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  return violations;
}

/**
 * A page in a fresh context at `viewport` (phone sizes with touch), its console kept in
 * `consoles`, signed in as `who` when given (a visitor otherwise).
 */
export async function openPage(browser, baseUrl, viewport, who, consoles) {
  const context = await browser.newContext({
    viewport: viewport.viewport, isMobile: viewport.isMobile, hasTouch: viewport.hasTouch,
  });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  consoles.push(watchConsole(context, `${who?.name ?? 'visitor'} ${viewport.name}`));
  const page = await context.newPage();
  if (who) await logIn(page, baseUrl, who);
  return page;
}

/** The first of `locator`'s matches a person sees (the sidebar's or the top bar's copy). */
export async function firstVisible(page, locator, what) {
  for (let i = 0; i < (await locator.count()); i += 1) {
    if (await locator.nth(i).isVisible()) return locator.nth(i);
  }
  assert.fail(`no visible ${what}:\n${await outerHtml(page, 'body', 2000)}`);
}
