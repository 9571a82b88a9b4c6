// The Contacts section as a team lead uses it, at 1440×900 and on a phone (375×812,
// touch): define an attribute, import a CSV (the preview shows the one bad row and why),
// edit the attribute on a contact, merge a duplicate into it, export the contacts and
// read the downloaded CSV. Each thing a person must read is checked where they see it:
// scrolled into view, inside the viewport, at least one line high.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import {
  ACTION_TIMEOUT_MS, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, clip, logIn, outerHtml, saveArtifacts,
  steps, until, watchConsole,
} from './helpers.mjs';

const PASSWORD = 'correct horse battery';
const WIDTHS = [
  { name: 'desktop', viewport: { width: 1440, height: 900 }, touch: false },
  { name: 'phone', viewport: { width: 375, height: 812 }, touch: true },
];

/**
 * Fails unless `locator`'s first element, scrolled into view, lies inside the viewport
 * and is at least one line of its text high (its font size).
 */
async function expectReadable(page, locator, what) {
  const el = locator.first();
  try {
    await el.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`${what}: not visible\n${await outerHtml(page, 'main')}`);
  }
  await el.scrollIntoViewIfNeeded();
  const box = await el.boundingBox();
  // An inline element's box is its glyphs' height, a little under the line's.
  const lineHeight = await el.evaluate((node) => parseFloat(getComputedStyle(node).fontSize));
  const { width, height } = page.viewportSize();
  assert.ok(box, `${what}: no box`);
  assert.ok(box.height >= lineHeight - 1, `${what}: ${box.height}px high, a line is ${lineHeight}px`);
  assert.ok(
    box.x >= -1 && box.y >= -1 && box.x + box.width <= width + 1 && box.y + box.height <= height + 1,
    `${what}: box ${JSON.stringify(box)} is not inside the ${width}×${height} viewport`,
  );
}

for (const { name, viewport, touch } of WIDTHS) {
  describe(`contacts at ${viewport.width}×${viewport.height}`, () => {
    const owner = { email: `olivia-${name}@acme.test`, name: 'Olivia Owner', password: PASSWORD };
    let dataDir;
    let server;
    let browser;
    let context;
    let page;
    let consoleLines;
    const step = steps({
      onFailure: async (slug) => {
        await saveArtifacts(page, `contacts-${name}-failure-${slug}`);
        if (server) await writeFile(path.join(artifactsDir, `contacts-${name}-server.log`), server.output());
      },
      diagnostics: () => `--- console (${consoleLines?.length ?? 0}) ---\n${clip((consoleLines ?? []).join('\n') || '(none)', 4000)}`,
    });

    before(async () => {
      await mkdir(artifactsDir, { recursive: true });
      dataDir = await makeDataDir();
      await runCli(
        ['admin', 'create-user', '--email', owner.email, '--name', owner.name, '--password-stdin', '--org', 'Acme'],
        { dataDir, stdin: `${PASSWORD}\n` },
      );
      server = await startServer({ dataDir });
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
      context = await browser.newContext({ viewport, hasTouch: touch, isMobile: touch, acceptDownloads: true });
      context.setDefaultTimeout(ACTION_TIMEOUT_MS);
      consoleLines = watchConsole(context, name);
      page = await context.newPage();
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
      if (dataDir) await removeDataDir(dataDir);
    });

    step('1. the owner defines a list attribute', async () => {
      await logIn(page, server.baseUrl, owner);
      await page.goto(`${server.baseUrl}/contacts`);
      await expectReadable(page, page.getByText('No contacts yet'), 'the empty list says so');
      await page.getByRole('link', { name: 'Attributes', exact: true }).click();
      await page.getByLabel('Key (used in the API, CSV files and filters)').fill('plan');
      await page.getByLabel('Label', { exact: true }).fill('Plan');
      await page.getByLabel('Type', { exact: true }).selectOption('list');
      await page.getByLabel('Choices, for a list (one per line)').fill('Free\nPro\nTeam');
      await page.getByRole('button', { name: 'Add attribute' }).click();
      await expectReadable(page, page.getByText('The attribute was added.'), 'the confirmation');
      await saveArtifacts(page, `contacts-${name}-attributes`);
    });

    step('2. a CSV upload shows a preview with the bad row and why', async () => {
      await page.goto(`${server.baseUrl}/contacts`);
      await page.getByRole('link', { name: 'Import CSV' }).click();
      const csv = 'name,email,phone,plan\n'
        + 'Ada Lovelace,ada@engines.test,+47 912 34 567,Pro\n'
        + 'Ada L.,ada.l@engines.test,,Free\n'
        + 'Broken Row,not-an-email,,Pro\n';
      await page.getByLabel('CSV file (UTF-8, at most 5 MB)').setInputFiles({
        name: 'contacts.csv', mimeType: 'text/csv', buffer: Buffer.from(csv),
      });
      await page.getByRole('button', { name: 'Preview' }).click();
      await expectReadable(page, page.getByText('2 will be imported'), 'the preview summary');
      await expectReadable(page, page.locator('tr.refused').getByText('Invalid email address “not-an-email”.'), 'the bad row’s reason');
      await expectReadable(page, page.locator('tr', { hasText: 'Ada Lovelace' }).getByText('new'), 'a good row’s result');
      await saveArtifacts(page, `contacts-${name}-import-preview`);
      await page.getByRole('button', { name: 'Import 2 contacts' }).click();
      await expectReadable(page, page.getByText('Imported: 2 new contacts, 0 updated.'), 'the import result');
    });

    step('3. the list finds the contact and its page edits the attribute', async () => {
      await page.goto(`${server.baseUrl}/contacts`);
      await expectReadable(page, page.getByRole('link', { name: 'Ada L.', exact: true }), 'the duplicate in the list');
      await saveArtifacts(page, `contacts-${name}-list`);
      await page.getByLabel('Search', { exact: true }).fill('lovelace');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      const link = page.getByRole('link', { name: 'Ada Lovelace', exact: true });
      await expectReadable(page, link, 'the search result');
      assert.equal(await page.getByRole('link', { name: 'Ada L.', exact: true }).count(), 0, 'the search leaves out the others');
      await link.click();
      await expectReadable(page, page.locator('h1', { hasText: 'Ada Lovelace' }), 'the contact’s name');
      const plan = page.getByLabel('Plan', { exact: true });
      assert.equal(await plan.inputValue(), 'Pro', 'the imported value');
      await plan.selectOption('Team');
      await page.getByRole('button', { name: 'Save attributes' }).click();
      await expectReadable(page, page.locator('.attributes-panel [role=status]', { hasText: 'Saved' }), 'the save confirmation');
      await page.reload();
      assert.equal(await page.getByLabel('Plan', { exact: true }).inputValue(), 'Team', 'the value was stored');
      await saveArtifacts(page, `contacts-${name}-contact`);
    });

    step('4. the duplicate is merged into the contact after a confirmation', async () => {
      await page.getByRole('link', { name: 'Merge…' }).click();
      await page.getByLabel('Find the duplicate').fill('ada.l');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.getByRole('link', { name: 'Pick Ada L.' }).click();
      await expectReadable(page, page.getByRole('heading', { name: 'Merge Ada L. into Ada Lovelace?' }), 'the confirmation question');
      await expectReadable(page, page.getByText('This cannot be undone.', { exact: false }), 'the warning');
      await saveArtifacts(page, `contacts-${name}-merge-confirm`);
      await page.getByRole('button', { name: 'Merge', exact: true }).click();
      await expectReadable(page, page.getByText('The contacts were merged into this one.'), 'the merge notice');
      await page.goto(`${server.baseUrl}/contacts`);
      await expectReadable(page, page.getByRole('link', { name: 'Ada Lovelace', exact: true }), 'the merged contact');
      assert.equal(await page.getByRole('link', { name: 'Ada L.', exact: true }).count(), 0, 'the duplicate is gone');
    });

    step('5. the export downloads a CSV with the attribute column', async () => {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Export CSV' }).click(),
      ]);
      assert.match(download.suggestedFilename(), /^contacts-\d{4}-\d{2}-\d{2}\.csv$/);
      const text = await readFile(await download.path(), 'utf8');
      const lines = text.trim().split('\n');
      assert.equal(lines[0], 'id,name,email,phone,created,last seen,plan');
      assert.equal(lines.length, 2, `one contact after the merge:\n${text}`);
      assert.match(lines[1], /,Ada Lovelace,ada@engines\.test,\+47 912 34 567,.*,Team$/);
    });

    // The inbox's contact pane is checked at the desktop width, where it stands beside the
    // conversation (on a phone it is a pane of its own, which the inbox's tests drive).
    if (name !== 'desktop') return;

    step('6. the inbox sidebar shows the attribute, edits it, and filters by it', async () => {
      await page.goto(`${server.baseUrl}/settings/api-keys`);
      await page.getByLabel('Key name', { exact: true }).fill('Test');
      await page.getByRole('button', { name: 'Create key' }).click();
      const key = (await page.locator('#new-key').innerText()).trim();
      const api = async (route, body) => {
        const response = await fetch(`${server.baseUrl}/api/v1${route}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await response.text();
        assert.ok(response.ok, `POST ${route}: ${response.status} ${text}`);
        return JSON.parse(text);
      };
      const inbox = await api('/inboxes', { kind: 'api', name: 'App' });
      const started = await api(`/inboxes/${inbox.id}/conversations`, {
        contact: { email: 'ada@engines.test' }, text: 'Which plan am I on?',
      });
      await page.goto(`${server.baseUrl}/inbox?view=all&c=${started.conversation.id}`);
      const panel = page.locator('#contact-panel .attributes-panel');
      const plan = panel.getByLabel('Plan', { exact: true });
      await expectReadable(page, plan, 'the attribute in the sidebar');
      assert.equal(await plan.inputValue(), 'Team', 'the value set on the contact page');
      await plan.selectOption('Pro');
      await panel.getByRole('button', { name: 'Save attributes' }).click();
      await expectReadable(page, panel.locator('[role=status]', { hasText: 'Saved' }), 'the save confirmation in the sidebar');
      await saveArtifacts(page, `contacts-${name}-inbox-panel`);
      await panel.getByRole('link', { name: 'Conversations with this Plan' }).click();
      await page.waitForURL((u) => u.searchParams.get('attr') === 'plan' && u.searchParams.get('attr_value') === 'Pro');
      await expectReadable(page, page.locator('.conversations').getByText('Which plan am I on?'), 'the conversation in the filtered list');
      assert.deepEqual(consoleLines.filter((l) => /Content Security Policy|error/i.test(l)), [], 'no console errors');
    });
  });
}
