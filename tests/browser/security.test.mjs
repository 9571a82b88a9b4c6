// Stored HTML injection: an admin saves a canned response that tries to end the inbox's
// <script type="application/json"> block and plant an htmx form that transfers the
// organization's ownership to them as soon as someone opens the inbox. The owner opens
// the inbox in Chromium; the canned response shows as text, no transfer request is
// sent, and the owner is still the owner. htmx requests still carry the CSRF token.
//
// Run with: KALTALK_BIN=... node --test tests/browser/security.test.mjs

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createOrganization, makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, clip, expectVisible, logIn,
  openLiveInbox, outerHtml, saveArtifacts, steps, watchConsole,
} from './helpers.mjs';

const OWNER = { name: 'Olivia Owner', email: 'olivia@acme.test', password: 'correct horse battery', org: 'Acme' };
const ADMIN = { name: 'Mallory Admin', email: 'mallory@acme.test', password: 'another long password', role: 'admin' };
const VISITOR_TEXT = 'Hello, is anyone there?';

describe('stored HTML injection through a canned response', { timeout: 180_000 }, () => {
  let dataDir;
  let server;
  let browser;
  let ctxOwner;
  let ctxAdmin;
  let pageOwner;
  let pageAdmin;
  let consoleLines = [];
  let payload;
  const transferRequests = [];
  const replyRequests = [];

  const step = steps({
    diagnostics: () => `--- console and page errors ---\n${clip(consoleLines.join('\n') || '(none)', 6000)}`,
    async onFailure(slug) {
      await saveArtifacts(pageOwner, `security-failure-${slug}-owner`);
      await saveArtifacts(pageAdmin, `security-failure-${slug}-admin`);
      if (server) await writeFile(path.join(artifactsDir, 'security-server-output.log'), server.output());
    },
  });

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    const { orgId, userIds } = await createOrganization(dataDir, OWNER, [ADMIN]);
    const adminId = userIds[ADMIN.email];
    const inbox = await runCli(['admin', 'create-inbox', '--org-id', orgId, '--name', 'Website', '--domain', 'localhost'], { dataDir });
    assert.ok(inbox.values.embed_token, `create-inbox should print embed_token=; it printed:\n${inbox.stdout}`);

    // Unquoted attributes: serde_json would escape quotes, not `</`.
    payload = '</script><form hx-post=/settings/team/transfer-ownership hx-trigger=load>' +
      `<input name=user_id value=${adminId}></form>`;

    server = await startServer({ dataDir });
    // A conversation, so the owner's inbox has a composer that offers canned responses.
    const said = await fetch(`${server.baseUrl}/widget/v1/inboxes/${inbox.values.embed_token}/messages`, {
      method: 'POST',
      // As the widget on the inbox's website sends it: state-changing widget requests
      // need an allowed Origin.
      headers: { 'content-type': 'application/json', origin: 'http://localhost' },
      body: JSON.stringify({ text: VISITOR_TEXT, client_id: 'c-1' }),
    });
    assert.equal(said.status, 201, `the visitor's message: ${await said.text()}`);

    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    ctxAdmin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctxOwner = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    for (const ctx of [ctxAdmin, ctxOwner]) ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    consoleLines = watchConsole(ctxOwner, 'owner');
    ctxOwner.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/settings/team/transfer-ownership') transferRequests.push(`${request.method()} ${request.url()}`);
      if (request.method() === 'POST' && /^\/inbox\/conversations\/[^/]+\/messages$/.test(url.pathname)) {
        replyRequests.push(request.headers()['x-csrf-token'] ?? '');
      }
    });
    pageAdmin = await ctxAdmin.newPage();
    pageOwner = await ctxOwner.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (server) await writeFile(path.join(artifactsDir, 'security-server-output.log'), server.output());
    if (dataDir) await removeDataDir(dataDir);
  });

  step('1. the admin saves a canned response that tries to end the page data block', async () => {
    await logIn(pageAdmin, server.baseUrl, ADMIN);
    await pageAdmin.goto(`${server.baseUrl}/settings/canned-responses`);
    await pageAdmin.getByLabel('Shortcut', { exact: true }).fill('evil');
    await pageAdmin.getByLabel('Reply', { exact: true }).fill(payload);
    await pageAdmin.getByRole('button', { name: 'Save', exact: true }).click();
    await expectVisible(pageAdmin.locator('td', { hasText: '/settings/team/transfer-ownership' }),
      'expected the saved canned response in the list, as text', async () => outerHtml(pageAdmin, 'main'));
  });

  step('2. the owner opens the inbox: nothing in it became markup', async () => {
    await logIn(pageOwner, server.baseUrl, OWNER);
    await openLiveInbox(pageOwner, server.baseUrl, 'all');
    assert.equal(
      await pageOwner.locator('form[hx-post*="transfer-ownership"]').count(), 0,
      `no element from the canned response may become markup\n${await outerHtml(pageOwner, 'main', 6000)}`,
    );
  });

  step('3. no transfer was requested and the owner is still the owner', async () => {
    // htmx fires `hx-trigger=load` while it starts, before inbox.js opens its socket,
    // so an injected form would have sent its request by now.
    assert.deepEqual(transferRequests, [], 'no request to transfer-ownership was sent');
    await pageOwner.goto(`${server.baseUrl}/settings/team`);
    const ownerRow = pageOwner.locator('tr', { hasText: OWNER.email });
    const adminRow = pageOwner.locator('tr', { hasText: ADMIN.email });
    await expectVisible(ownerRow, 'expected the owner on the Team page', async () => outerHtml(pageOwner, 'main'));
    assert.equal((await ownerRow.locator('td').nth(2).innerText()).trim(), 'Owner', await outerHtml(pageOwner, 'table'));
    assert.equal(await adminRow.locator('select').inputValue(), 'admin', await outerHtml(pageOwner, 'table'));
  });

  step('4. the composer offers the canned response as the text it is', async () => {
    await openLiveInbox(pageOwner, server.baseUrl, 'all');
    await pageOwner.locator('[data-conversation-link]').first().click();
    const box = pageOwner.locator('#reply-text');
    await expectVisible(box, 'expected the composer of the conversation', async () => outerHtml(pageOwner, '#conversation'));
    await box.fill('/evil');
    const suggestion = pageOwner.getByRole('option').filter({ hasText: '/settings/team/transfer-ownership' });
    await expectVisible(suggestion, 'expected the canned response among the suggestions',
      async () => outerHtml(pageOwner, '#canned-suggestions'));
    assert.equal(await suggestion.innerText(), `/evil — ${payload}`, 'the suggestion shows the text as written');
    await pageOwner.screenshot({ path: path.join(artifactsDir, 'security-inbox-canned-response.png') });
  });

  step('5. an htmx reply still carries the CSRF token and is sent', async () => {
    await pageOwner.locator('#reply-text').fill('We are here.');
    await pageOwner.locator('#conversation').getByRole('button', { name: 'Send', exact: true }).click();
    await expectVisible(pageOwner.locator('#messages').getByText('We are here.'),
      'expected the reply in the conversation', async () => outerHtml(pageOwner, '#messages'));
    assert.equal(replyRequests.length, 1, `one reply request; saw ${replyRequests.length}`);
    const token = await pageOwner.locator('meta[name="csrf-token"]').getAttribute('content');
    assert.ok(token, 'the page carries the token in a meta tag');
    assert.equal(replyRequests[0], token, 'the htmx request sent the session\'s token in X-CSRF-Token');
    assert.deepEqual(transferRequests, [], 'still no request to transfer-ownership');
  });
});
