// Teams and auto-assignment as a person sees them, at 1440, 1024 and 375 (touch): the
// owner makes a team "Support" of herself and Grace in Settings → Teams and routes the
// website inbox to it with auto-assignment; then, at each width, the owner sets herself
// busy with the availability control, a visitor writes in the widget, and the
// conversation lands in Grace's "Mine", assigned to her and in the team, while the owner
// finds it in the inbox's team view. axe-core finds nothing serious on each screen.
// (Outside business hours the widget's "back at" line is business_hours.test.mjs.)
//
// Run with: KALTALK_BIN=... node --test tests/browser/routing.test.mjs

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
<body><main><h1>Shop</h1><p>Questions? Chat with us.</p></main>
<script src="${baseUrl}/widget.js" data-kaltalk-inbox="${token}" async></script>
</body>
</html>
`;
}

describe('teams and auto-assignment', { timeout: 300_000 }, () => {
  let dataDir;
  let server;
  let host;
  let browser;
  let inboxId;
  let embedToken;
  let teamId;
  let ada;
  let grace;
  let visitor;
  const consoles = [];

  const step = steps({
    diagnostics: () => `--- console ---\n${clip(consoles.flat().join('\n') || '(none)', 6000)}`,
    async onFailure(slug) {
      for (const [who, page] of [['ada', ada], ['grace', grace], ['visitor', visitor]]) {
        if (page && !page.isClosed()) await saveArtifacts(page, `routing-failure-${slug}-${who}`);
      }
      if (server) await writeFile(path.join(artifactsDir, 'routing-server-output.log'), server.output());
    },
  });

  const newPage = (viewport, who) => openPage(browser, server.baseUrl, viewport, who, consoles);

  async function shot(page, name) {
    await page.screenshot({ path: path.join(artifactsDir, `routing-${name}.png`) });
  }

  async function noSeriousViolations(page, where) {
    const found = await axeViolations(page);
    assert.deepEqual(found, [], `axe-core found on ${where}:\n${found.join('\n')}`);
  }

  /**
   * Whether `select`'s chosen option starts with `name` and has room for it: the text's
   * width in the select's font against the select's inner width less its arrow.
   */
  async function selectShows(select, name) {
    return select.evaluate((el, wanted) => {
      const style = getComputedStyle(el);
      const text = el.selectedOptions[0]?.text ?? '';
      const context = document.createElement('canvas').getContext('2d');
      context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const width = context.measureText(wanted).width;
      const arrow = 20;
      const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - arrow;
      return { text, width, room, ok: text.startsWith(wanted) && width <= room };
    }, name);
  }

  /** The availability control a person at this width sees (sidebar, or the phone's top bar). */
  const availabilityControl = (page) => firstVisible(page, page.locator('form.availability-control'), 'availability control');

  /** What the control says, checked readable: the select's choice, or (in the inbox's rail
   * of icons, where the select lies transparent over it) the word under the dot. */
  async function availabilityShown(page, viewport) {
    const control = await availabilityControl(page);
    const select = control.getByLabel('Your availability');
    const word = control.locator('.availability-word');
    if (await word.isVisible()) {
      await assertReadable(page, word, null, `the availability word at ${viewport.name}`, { scroll: false });
      return { value: await select.inputValue(), text: await word.innerText() };
    }
    await assertReadable(page, select, null, `the availability select at ${viewport.name}`, { scroll: false });
    const shown = await selectShows(select, await select.locator('option:checked').innerText());
    assert.ok(shown.ok, `the availability select cannot show its choice: ${JSON.stringify(shown)}`);
    return { value: await select.inputValue(), text: shown.text };
  }

  async function setAvailability(page, value, viewport) {
    const select = (await availabilityControl(page)).getByLabel('Your availability');
    await Promise.all([page.waitForEvent('framenavigated'), select.selectOption(value)]);
    await page.waitForLoadState('load');
    const shown = await availabilityShown(page, viewport);
    const word = { online: 'Online', busy: 'Busy', offline: 'Offline' }[value];
    assert.deepEqual(shown, { value, text: word }, `the control says ${word} after the page comes back`);
  }

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    dataDir = await makeDataDir();
    const { orgId } = await createOrganization(dataDir, OWNER, [GRACE]);
    const inbox = await runCli(
      ['admin', 'create-inbox', '--org-id', orgId, '--name', 'Website', '--domain', 'localhost'],
      { dataDir },
    );
    inboxId = inbox.values.inbox_id;
    embedToken = inbox.values.embed_token;
    assert.ok(inboxId && embedToken, `create-inbox printed:\n${inbox.stdout}`);
    server = await startServer({ dataDir });
    host = await startHostServer({ '/shop.html': () => hostPage(server.baseUrl, embedToken) });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await host?.close();
    await server?.stop();
    if (dataDir) await removeDataDir(dataDir);
  });

  step('the owner makes the team Support with Grace in Settings → Teams', async () => {
    ada = await newPage(VIEWPORTS[0], OWNER);
    await ada.goto(`${server.baseUrl}/settings/teams`);
    await ada.getByLabel('New team').fill('Support');
    await ada.getByRole('button', { name: 'Create team' }).click();
    await ada.waitForURL(/notice=created/);
    await assertReadable(ada, ada.getByRole('status'), null, 'the "Team created." notice');
    assert.equal(await ada.getByRole('status').innerText(), 'Team created.');
    const card = ada.locator('section.team-card', { has: ada.getByRole('heading', { name: 'Support' }) });
    await card.getByLabel('Add a member').selectOption({ label: GRACE.name });
    await card.getByRole('button', { name: 'Add', exact: true }).click();
    await ada.waitForURL(/notice=members/);
    const graceInTeam = ada.locator('section.team-card .team-members li', { hasText: GRACE.name });
    await assertReadable(ada, graceInTeam, null, 'Grace in the team card');
    assert.match(await graceInTeam.innerText(), /offline · 0 of 20 open/, 'Grace has not opened the dashboard yet');
    const id = await ada.locator('section.team-card h2').getAttribute('id');
    teamId = id.replace(/^team-/, '');
    await noSeriousViolations(ada, 'Settings → Teams');
    await shot(ada, 'teams-desktop-1440');
    // The same page on a phone: the team's forms stack, nothing leaves the screen.
    await ada.setViewportSize(VIEWPORTS[2].viewport);
    await ada.reload();
    await assertReadable(ada, graceInTeam, null, 'Grace in the team card at 375 px');
    for (const name of ['Rename', 'Delete team']) {
      await assertReadable(ada, card.getByRole('button', { name, exact: true }), null, `the ${name} button at 375 px`);
    }
    await assertReadable(ada, ada.getByLabel(`Capacity of ${GRACE.name}`), null, 'Grace\'s capacity at 375 px');
    await noSeriousViolations(ada, 'Settings → Teams at 375 px');
    await ada.screenshot({ path: path.join(artifactsDir, 'routing-teams-phone-375.png'), fullPage: true });
    await ada.setViewportSize(VIEWPORTS[0].viewport);
  });

  step('the owner routes the website inbox to Support with auto-assignment', async () => {
    await ada.goto(`${server.baseUrl}/settings/inboxes/${inboxId}`);
    const section = ada.locator('#routing');
    await section.getByLabel('Team', { exact: true }).selectOption({ label: 'Support' });
    await section.getByLabel(/Auto-assign new conversations/).check();
    // A customer left waiting: a quarter of an hour by default, ten minutes here.
    const waiting = section.getByLabel(/Tell the team when a customer waits for a reply longer than/);
    await assertReadable(ada, waiting, null, 'the waiting alert field');
    assert.equal(await waiting.inputValue(), '15');
    await waiting.fill('10');
    await section.getByRole('button', { name: 'Save routing' }).click();
    await ada.waitForURL(/notice=routing-saved/);
    // The page comes back at the section, and says so there, without scrolling.
    const notice = section.locator('.notice[role=status]');
    await assertReadable(ada, notice, null, 'the "Routing saved." notice', { scroll: false });
    assert.equal(await notice.innerText(), 'Routing saved.');
    assert.equal(await ada.locator('#routing-team').inputValue(), teamId);
    assert.equal(await ada.getByLabel(/Auto-assign new conversations/).isChecked(), true);
    assert.equal(await ada.locator('#routing-waiting').inputValue(), '10');
    await assertReadable(ada, section.getByRole('heading', { name: 'Routing and auto-assignment' }), null, 'the routing section');
    await noSeriousViolations(ada, 'the inbox settings page');
    await section.screenshot({ path: path.join(artifactsDir, 'routing-inbox-settings-desktop-1440.png') });
    // The waiting field and its hint read at the smaller sizes too.
    for (const viewport of VIEWPORTS.slice(1)) {
      await ada.setViewportSize(viewport.viewport);
      await assertReadable(ada, ada.locator('#routing-waiting'), null, `the waiting alert field at ${viewport.name}`);
      await assertReadable(ada, ada.locator('#routing-waiting-hint'), null, `its hint at ${viewport.name}`);
      await section.screenshot({ path: path.join(artifactsDir, `routing-inbox-settings-${viewport.name}.png`) });
    }
    await ada.context().close();
  });

  for (const viewport of VIEWPORTS) {
    const text = `Where is my parcel? (${viewport.name})`;

    step(`at ${viewport.name} the owner is busy, so the visitor's conversation goes to Grace`, async () => {
      grace = await newPage(viewport, GRACE);
      // Opening the dashboard brings Grace online.
      await openLiveInbox(grace, server.baseUrl, 'mine');
      assert.deepEqual(await availabilityShown(grace, viewport), { value: 'online', text: 'Online' }, 'Grace is online with the dashboard open');

      ada = await newPage(viewport, OWNER);
      await openLiveInbox(ada, server.baseUrl, 'mine');
      await setAvailability(ada, 'busy', viewport);
      await shot(ada, `owner-busy-${viewport.name}`);

      visitor = await newPage(viewport, null);
      await visitor.goto(`http://localhost:${host.port}/shop.html`);
      const launcher = visitor.getByRole('button', { name: 'Open chat' });
      await expectVisible(launcher, 'the widget launcher', async () => widgetHtml(visitor));
      await launcher.click();
      const box = visitor.getByRole('textbox', { name: 'Message', exact: true });
      await expectVisible(box, 'the widget\'s message box', async () => widgetHtml(visitor));
      await box.fill(text);
      await box.press('Enter');
      await until(
        async () => (await visitor.locator('#kaltalk-widget [role=log]', { hasText: text }).count()) > 0,
        async () => `the visitor's message did not show in the widget:\n${await widgetHtml(visitor)}`,
      );

      // Grace's Mine shows it, live.
      const item = grace.locator('[data-conversation-link]', { hasText: text });
      await until(async () => (await item.count()) > 0, async () => `not in Grace's Mine:\n${await outerHtml(grace, '#conversation-list, .conversations', 4000)}`);
      await assertReadable(grace, item, null, `the conversation in Grace's list at ${viewport.name}`);
      await expectVisible(item.locator('.badge.team', { hasText: 'Support' }), 'the team badge on the list item', async () => outerHtml(grace, '.conversations'));
      if (viewport.hasTouch) await item.tap();
      else await item.click();
      // The header names the team and the assignee: in its facts line where there is
      // room, in the selects themselves on a phone (the facts hide them there).
      const head = grace.locator('#thread-head');
      await until(async () => (await head.locator('#conversation-team-name').count()) > 0, async () => `no team in the header:\n${await outerHtml(grace, '#conversation', 4000)}`);
      for (const [fact, select, name] of [['#conversation-team-name', '#conversation-team', 'Support'], ['#conversation-assignee', '#assignee', GRACE.name]]) {
        if (await head.locator(fact).isVisible()) {
          await assertReadable(grace, head.locator(fact), null, `the header's ${fact} at ${viewport.name}`);
          assert.match(await head.locator(fact).innerText(), new RegExp(name));
        }
        await assertReadable(grace, head.locator(select), null, `the header's ${select} at ${viewport.name}`);
        const shown = await selectShows(head.locator(select), name);
        assert.ok(shown.ok, `the ${select} select at ${viewport.name} cannot show "${name}" whole: ${JSON.stringify(shown)}`);
      }
      const message = grace.locator('#messages article', { hasText: text });
      await assertReadable(grace, message, '#messages', `the visitor's message in Grace's view at ${viewport.name}`);
      await shot(grace, `grace-${viewport.name}`);
      await noSeriousViolations(grace, `Grace's inbox at ${viewport.name}`);
    });

    step(`at ${viewport.name} the owner finds it in the Support team view, not in her Mine`, async () => {
      const mine = ada.locator('[data-conversation-link]', { hasText: text });
      await ada.reload();
      assert.equal(await mine.count(), 0, 'the busy owner got none of it');
      // The team filter is in the list's tools; pick it as a person would.
      const filter = ada.getByLabel('Team', { exact: true });
      await assertReadable(ada, filter, null, `the team filter at ${viewport.name}`);
      await Promise.all([ada.waitForURL(new RegExp(`team=${teamId}`)), filter.selectOption(teamId)]);
      const item = ada.locator('[data-conversation-link]', { hasText: text });
      await assertReadable(ada, item, null, `the conversation in the team view at ${viewport.name}`);
      assert.match(await item.innerText(), new RegExp(`Support[\\s\\S]*${GRACE.name}`), 'its team and assignee show on it');
      const picked = await ada.getByLabel('Team', { exact: true }).locator('option:checked').innerText();
      assert.match(picked, /^Support \(\d+\)$/, `the team view names the team and its count: ${picked}`);
      await shot(ada, `team-view-${viewport.name}`);
      await noSeriousViolations(ada, `the team view at ${viewport.name}`);
      // Back online for the next width; close everyone.
      await setAvailability(ada, 'online', viewport);
      for (const page of [ada, grace, visitor]) await page.context().close();
    });
  }
});
