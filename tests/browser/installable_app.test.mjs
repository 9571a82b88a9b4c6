// The dashboard is the mobile agent app, installable: every signed-in page links a valid
// web app manifest (name, `display: standalone`, `start_url` in scope, PNG icons of 192
// and 512 px and a maskable one, each served as what it says); the service worker at
// `/sw.js` registers and controls the page after a reload, on a phone-sized touch screen.
//
// Run with: KALTALK_BIN=... node --test tests/browser/installable_app.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createOrganization, makeDataDir, removeDataDir, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, VIEWPORTS, artifactsDir, logIn, saveArtifacts, steps, until,
} from './helpers.mjs';

const OWNER = { name: 'Ada Lovelace', email: 'ada@acme.test', password: 'correct horse battery', org: 'Acme' };

/** A PNG's width and height, from its IHDR chunk. */
function pngSize(bytes) {
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG file');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('the dashboard installs as an app', { timeout: 120_000 }, () => {
  let dataDir;
  let server;
  let browser;
  let page;

  const step = steps({
    diagnostics: () => '',
    async onFailure(slug) {
      if (page) await saveArtifacts(page, `installable-failure-${slug}`);
    },
  });

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    await createOrganization(dataDir, OWNER);
    server = await startServer({ dataDir });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  step('every signed-in page links a manifest an installed app can live by', async () => {
    const phone = VIEWPORTS[2];
    const context = await browser.newContext({ viewport: phone.viewport, isMobile: true, hasTouch: true });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    page = await context.newPage();
    await logIn(page, server.baseUrl, OWNER);
    await page.goto(`${server.baseUrl}/inbox`);
    const href = await page.locator('link[rel="manifest"]').getAttribute('href');
    assert.equal(href, '/manifest.webmanifest');
    assert.equal(await page.locator('meta[name="theme-color"]').getAttribute('content'), '#111827');

    const response = await fetch(new URL(href, server.baseUrl));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^application\/manifest\+json/);
    const manifest = await response.json();
    assert.equal(manifest.name, 'KalTalk');
    assert.ok(manifest.short_name && manifest.short_name.length <= 12, 'a short name that fits under an icon');
    assert.equal(manifest.display, 'standalone');
    const scope = new URL(manifest.scope, server.baseUrl).href;
    assert.ok(new URL(manifest.start_url, server.baseUrl).href.startsWith(scope), 'start_url is inside the scope');
    const wanted = [['192x192', 'any'], ['512x512', 'any'], ['512x512', 'maskable']];
    for (const [sizes, purpose] of wanted) {
      const icon = manifest.icons.find((i) => i.sizes === sizes && i.purpose === purpose);
      assert.ok(icon, `an icon of ${sizes} for ${purpose}: ${JSON.stringify(manifest.icons)}`);
      const got = await fetch(new URL(icon.src, server.baseUrl));
      assert.equal(got.status, 200, icon.src);
      assert.equal(got.headers.get('content-type'), icon.type, icon.src);
      const { width, height } = pngSize(Buffer.from(await got.arrayBuffer()));
      assert.equal(`${width}x${height}`, sizes, `${icon.src} is as big as it says`);
    }
    // The login page, before anyone signed in, is no app to install.
    const anonymous = await (await fetch(`${server.baseUrl}/login`)).text();
    assert.doesNotMatch(anonymous, /rel="manifest"/);
  });

  step('the service worker registers and controls the dashboard', async () => {
    await until(
      async () => page.evaluate(async () => {
        const registration = await navigator.serviceWorker.getRegistration('/');
        return Boolean(registration && registration.active);
      }),
      async () => 'no active service worker for /',
    );
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    assert.equal(scope, `${server.baseUrl}/`);
    await page.reload();
    const controlled = await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null);
    assert.equal(controlled, `${server.baseUrl}/sw.js`, 'the reloaded page is controlled by /sw.js');
    // The page works as before under it: the inbox is live.
    await until(
      async () => (await page.locator('#inbox').getAttribute('data-live')) === 'on',
      async () => 'the inbox did not connect under the service worker',
    );
    await page.screenshot({ path: path.join(artifactsDir, 'installable-inbox-phone-375.png') });
    await page.context().close();
  });
});
