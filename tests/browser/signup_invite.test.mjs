// End-to-end: an owner signs up, invites an agent, the agent accepts the
// invitation from the outbox e-mail in a separate browser context, and both
// end up in the same organization with a safe session cookie.
//
// Run with scripts/browser-test.sh (or: KALTALK_BIN=... node --test tests/browser/).

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, saveArtifacts, steps, until,
} from './helpers.mjs';

const SESSION_COOKIE = 'kaltalk_session';
const INVITE_URL = /https?:\/\/[^\s]+\/invitations\/[A-Za-z0-9_-]+/;

const OWNER = {
  name: 'Olivia Owner',
  email: 'olivia@acme.test',
  password: 'correct horse battery',
  org: 'Acme Support',
};
const AGENT = {
  name: 'Alex Agent',
  email: 'alex@acme.test',
  password: 'another long password',
};

// ---------------------------------------------------------------- helpers

/** Wait for the page to be at exactly `url` (query and hash ignored). */
async function expectUrl(page, url) {
  try {
    await page.waitForURL((u) => u.origin + u.pathname === url, { timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`expected to be at ${url}, but the page is at ${page.url()}\n${await visibleText(page)}`);
  }
}

async function visibleText(page) {
  const text = await page.locator('body').innerText().catch(() => '<no body>');
  return `--- visible text of ${page.url()} ---\n${text.slice(0, 3000)}\n---`;
}

/** Wait for an h1 containing `text`. */
async function expectH1(page, text) {
  try {
    await page.locator('h1', { hasText: text }).first().waitFor({ timeout: ACTION_TIMEOUT_MS });
  } catch {
    const h1s = await page.locator('h1').allInnerTexts();
    assert.fail(`expected an <h1> containing ${JSON.stringify(text)} at ${page.url()}; h1 elements: ${JSON.stringify(h1s)}`);
  }
}

/** The label of the selected option of the <select> labelled `label`. */
async function selectedLabel(page, label) {
  const select = page.getByLabel(label, { exact: true });
  const count = await select.count();
  assert.equal(count, 1, `expected exactly one control labelled ${JSON.stringify(label)} at ${page.url()}, found ${count}`);
  const tag = await select.evaluate((el) => el.tagName.toLowerCase());
  assert.equal(tag, 'select', `the control labelled ${JSON.stringify(label)} should be a <select>`);
  return select.evaluate((el) => (el.selectedOptions[0]?.textContent ?? '').trim());
}

/**
 * Text that follows the heading named `name`, up to the next heading of the
 * same or a higher level (document order, whatever the wrapping elements).
 * Returns null when there is no such heading.
 */
async function textUnderHeading(page, name) {
  return page.evaluate((name) => {
    const headings = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')];
    const h = headings.find((el) => el.textContent.trim().replace(/\s+/g, ' ') === name);
    if (!h) return null;
    const level = Number(h.tagName[1]);
    const parts = [];
    // Start right after the heading's own subtree.
    let node = h;
    while (node && !node.nextSibling) node = node.parentNode;
    if (!node) return '';
    node = node.nextSibling;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    walker.currentNode = node;
    while (node) {
      if (node.nodeType === Node.ELEMENT_NODE) {
        const m = /^H([1-6])$/.exec(node.tagName);
        if (m && Number(m[1]) <= level) break;
        if (node.tagName === 'INPUT' || node.tagName === 'TEXTAREA') parts.push(node.value);
      } else if (node.nodeType === Node.TEXT_NODE) {
        const parent = node.parentElement;
        if (parent && !['SCRIPT', 'STYLE', 'TEMPLATE'].includes(parent.tagName)) parts.push(node.textContent);
      }
      node = walker.nextNode();
    }
    return parts.join(' ').replace(/\s+/g, ' ').trim();
  }, name);
}

/** Record every Set-Cookie header for the session cookie seen by `context`. */
function recordSessionSetCookies(context) {
  const seen = [];
  context.on('response', async (response) => {
    try {
      for (const value of await response.headerValues('set-cookie')) {
        for (const line of value.split('\n')) {
          if (line.trim().startsWith(`${SESSION_COOKIE}=`)) seen.push(line.trim());
        }
      }
    } catch {
      // The response may be gone when the page navigated on; nothing to record.
    }
  });
  return seen;
}

// ---------------------------------------------------------------- test

describe('signup and invitation in the browser', { timeout: 180_000 }, () => {
  let server;
  let browser;
  let ctxA; // owner
  let ctxB; // invited agent
  let pageA;
  let pageB;
  let setCookiesA;
  let setCookiesB;
  let inviteUrl;

  const step = steps({
    diagnostics: () => '',
    async onFailure(slug) {
      await saveArtifacts(pageA, `failure-${slug}-A`);
      await saveArtifacts(pageB, `failure-${slug}-B`);
      if (server) await writeFile(path.join(artifactsDir, 'server-output.log'), server.output());
    },
  });

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    for (const ctx of [ctxA, ctxB]) ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    setCookiesA = recordSessionSetCookies(ctxA);
    setCookiesB = recordSessionSetCookies(ctxB);
    pageA = await ctxA.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (server) await writeFile(path.join(artifactsDir, 'server-output.log'), server.output());
  });

  step('1a. signup rejects a 9-character password and keeps the typed name', async () => {
    const { baseUrl } = server;
    await pageA.goto(`${baseUrl}/signup`);
    await pageA.getByLabel('Your name', { exact: true }).fill(OWNER.name);
    await pageA.getByLabel('Work email', { exact: true }).fill(OWNER.email);
    await pageA.getByLabel('Password', { exact: true }).fill('123456789');
    await pageA.getByLabel('Organization name', { exact: true }).fill(OWNER.org);
    await pageA.getByRole('checkbox', { name: 'I am 16 or older', exact: true }).check();
    await pageA.getByRole('button', { name: 'Create account', exact: true }).click();

    try {
      await pageA.getByText('Use at least 10 characters.').first().waitFor({ timeout: ACTION_TIMEOUT_MS });
    } catch {
      const validity = await pageA
        .getByLabel('Password', { exact: true })
        .evaluate((el) => el.validationMessage)
        .catch(() => '');
      assert.fail(
        'expected the inline error "Use at least 10 characters." after submitting a 9-character password' +
          (validity ? ` (the browser's own validation blocked the submit: ${JSON.stringify(validity)})` : '') +
          `\n${await visibleText(pageA)}`,
      );
    }
    assert.equal(
      await pageA.getByLabel('Your name', { exact: true }).inputValue(),
      OWNER.name,
      'the signup form should keep the typed name after a validation error',
    );
  });

  step('1b. owner signs up and lands on the home page of the new organization', async () => {
    const { baseUrl } = server;
    // Fill everything again: only the name is promised to survive the error.
    await pageA.getByLabel('Your name', { exact: true }).fill(OWNER.name);
    await pageA.getByLabel('Work email', { exact: true }).fill(OWNER.email);
    await pageA.getByLabel('Password', { exact: true }).fill(OWNER.password);
    await pageA.getByLabel('Organization name', { exact: true }).fill(OWNER.org);
    await pageA.getByRole('checkbox', { name: 'I am 16 or older', exact: true }).check();
    await pageA.getByRole('button', { name: 'Create account', exact: true }).click();

    await expectUrl(pageA, `${baseUrl}/`);
    await expectH1(pageA, `Welcome, ${OWNER.name}`);
    assert.equal(await selectedLabel(pageA, 'Organization'), OWNER.org);
    await pageA.screenshot({ path: path.join(artifactsDir, '01-owner-home.png'), fullPage: true });
  });

  step('2. owner invites alex@acme.test as an agent', async () => {
    const { baseUrl } = server;
    await pageA.goto(`${baseUrl}/settings/team`);
    await pageA.getByLabel('Email address', { exact: true }).fill(AGENT.email);

    const role = pageA.getByLabel('Role', { exact: true });
    const options = await role.evaluate((el) =>
      [...el.options].map((o) => ({ value: o.value, label: o.textContent.trim() })),
    );
    for (const want of [{ value: 'agent', label: 'Agent' }, { value: 'admin', label: 'Admin' }]) {
      assert.ok(
        options.some((o) => o.value === want.value && o.label === want.label),
        `the "Role" select should offer ${JSON.stringify(want)}; it offers ${JSON.stringify(options)}`,
      );
    }
    await role.selectOption({ value: 'agent' });
    await pageA.getByRole('button', { name: 'Send invitation', exact: true }).click();
    await pageA.waitForLoadState();

    await until(
      async () => (await textUnderHeading(pageA, 'Pending invitations'))?.includes(AGENT.email),
      async () =>
        `expected ${AGENT.email} under the heading "Pending invitations"; text under it: ` +
        `${JSON.stringify(await textUnderHeading(pageA, 'Pending invitations'))}\n${await visibleText(pageA)}`,
    );
  });

  step('3. the outbox holds the invitation e-mail with the invitation link', async (t) => {
    const { baseUrl } = server;
    await pageA.goto(`${baseUrl}/settings/outbox`);
    const subject = `${OWNER.name} invited you to ${OWNER.org} on KalTalk`;
    const link = pageA.locator('table').getByRole('link', { name: subject, exact: true });
    try {
      await link.first().waitFor({ timeout: ACTION_TIMEOUT_MS });
    } catch {
      assert.fail(`expected a link ${JSON.stringify(subject)} in the outbox table\n${await visibleText(pageA)}`);
    }
    // Which row is "newest" depends on the table's order; note it rather than guess.
    const rows = pageA.locator('table tbody tr');
    const rowTexts = await rows.allInnerTexts();
    t.diagnostic(`outbox rows (in page order): ${JSON.stringify(rowTexts.map((r) => r.replace(/\s+/g, ' ').trim()))}`);

    await link.first().click();
    await pageA.waitForLoadState();
    const pres = await pageA.locator('pre').allTextContents();
    assert.ok(pres.length > 0, `expected the e-mail's plain-text part in a <pre>\n${await visibleText(pageA)}`);
    const match = pres.map((p) => INVITE_URL.exec(p)).find(Boolean);
    assert.ok(match, `expected an invitation URL in the <pre> text: ${JSON.stringify(pres)}`);
    inviteUrl = match[0];
    t.diagnostic(`invitation URL: ${inviteUrl}`);
    assert.ok(
      inviteUrl.startsWith(`${baseUrl}/`),
      `the invitation URL ${inviteUrl} should point at the server the owner used (${baseUrl})`,
    );
  });

  step('4. the invited agent accepts in a separate browser context', async () => {
    const { baseUrl } = server;
    assert.equal((await ctxB.cookies()).length, 0, 'context B should start without cookies');
    pageB = await ctxB.newPage();
    await pageB.goto(inviteUrl);
    await expectH1(pageB, `Join ${OWNER.org}`);

    const shown = await pageB.evaluate(
      (email) =>
        document.body.innerText.includes(email) ||
        [...document.querySelectorAll('input')].some((i) => i.value === email),
      AGENT.email,
    );
    assert.ok(shown, `the invitation page should show the invited address ${AGENT.email}\n${await visibleText(pageB)}`);

    await pageB.getByLabel('Your name', { exact: true }).fill(AGENT.name);
    await pageB.getByLabel('Password', { exact: true }).fill(AGENT.password);
    await pageB.getByRole('checkbox', { name: 'I am 16 or older', exact: true }).check();
    await pageB.getByRole('button', { name: 'Accept and join', exact: true }).click();

    await expectUrl(pageB, `${baseUrl}/`);
    await expectH1(pageB, `Welcome, ${AGENT.name}`);
    assert.equal(await selectedLabel(pageB, 'Organization'), OWNER.org);
  });

  step('5. the team page lists the new agent and no longer the invitation', async () => {
    const { baseUrl } = server;
    await pageA.goto(`${baseUrl}/settings/team`);
    await pageA.reload();

    const row = pageA.locator('table tr', { hasText: AGENT.name });
    const rowCount = await row.count();
    assert.equal(rowCount, 1, `expected one members-table row for ${AGENT.name}, found ${rowCount}\n${await visibleText(pageA)}`);
    const roleShown = await row.evaluate((tr) => {
      const cells = [...tr.querySelectorAll('td,th')];
      return cells.some((c) => {
        const select = c.querySelector('select');
        if (select) return (select.selectedOptions[0]?.textContent ?? '').trim() === 'Agent';
        return c.innerText.trim() === 'Agent';
      });
    });
    assert.ok(roleShown, `the row for ${AGENT.name} should show the role "Agent": ${JSON.stringify(await row.innerText())}`);

    const pending = await textUnderHeading(pageA, 'Pending invitations');
    assert.ok(
      !(pending ?? '').includes(AGENT.email),
      `${AGENT.email} should no longer be under "Pending invitations"; text under it: ${JSON.stringify(pending)}`,
    );
    await pageA.screenshot({ path: path.join(artifactsDir, '05-team.png'), fullPage: true });
  });

  step('6. the session cookie is HttpOnly and SameSite=Lax in both contexts', async (t) => {
    for (const [who, ctx, setCookies] of [
      ['A (owner)', ctxA, setCookiesA],
      ['B (agent)', ctxB, setCookiesB],
    ]) {
      const cookies = await ctx.cookies();
      const session = cookies.find((c) => c.name === SESSION_COOKIE);
      assert.ok(session, `context ${who} should hold a ${SESSION_COOKIE} cookie; it has ${JSON.stringify(cookies.map((c) => c.name))}`);
      assert.equal(session.httpOnly, true, `${SESSION_COOKIE} in context ${who} should be HttpOnly`);
      assert.equal(session.sameSite, 'Lax', `${SESSION_COOKIE} in context ${who} should be SameSite=Lax`);
      // Chromium reports a cookie without a SameSite attribute as Lax, so look
      // at the header too (other browsers do not default to Lax).
      const last = setCookies.at(-1);
      if (!last) t.diagnostic(`context ${who}: no Set-Cookie header for ${SESSION_COOKIE} was visible`);
      else if (!/;\s*samesite=lax\b/i.test(last)) {
        t.diagnostic(`context ${who}: Set-Cookie has no explicit SameSite=Lax: ${last.replace(/=[^;]*/, '=…')}`);
      }
    }
  });
});
