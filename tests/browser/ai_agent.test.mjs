// End-to-end: the AI agent answers a website visitor from the knowledge base, streamed
// token by token with its source, then hands over when the visitor asks for a person;
// the conversation waits unassigned in the inbox with the reason as a private note, and
// once an agent has replied the bot says nothing more.
//
// The chat model is a stand-in for an OpenAI-compatible provider (fake_openai.mjs), a
// real HTTP server the production client talks to through its configured base URL.
// Everything else is the real server, set up through the dashboard like a customer would.
//
// Run with scripts/browser-test.sh (or: KALTALK_BIN=... node --test tests/browser/).

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { makeDataDir, removeDataDir, runCli, startServer } from './server.mjs';
import { startFakeOpenAi } from './fake_openai.mjs';
import {
  ACTION_TIMEOUT_MS, agentAndVisitorSteps, CHROMIUM_ARGS, CHROMIUM_PATH, artifactsDir, clip, expectVisible, logIn,
  openLiveInbox, outerHtml, startHostServer, until, watchConsole, widgetHtml,
} from './helpers.mjs';

const execFileAsync = promisify(execFile);

const OWNER = {
  name: 'Olivia Owner',
  email: 'olivia@acme.test',
  password: 'correct horse battery',
  org: 'Acme Support',
};
const HELP_TITLE = 'Returns and refunds — Acme help';
const REFUND_FACT = 'Refunds reach your card within 5 to 7 business days after the parcel arrives.';
const QUESTION = 'How long does a refund take?';
const ASK_PERSON = 'Can I talk to a person, please?';
const HANDOFF_SAID = "I'm passing you to a person from the team.";
const AGENT_REPLY = 'Hi, Olivia here. I can look at your refund.';
const AFTER_REPLY = 'Thanks! How long do refunds take again?';

function helpPage() {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${HELP_TITLE}</title></head>
<body><nav><a href="/">Home</a> · <a href="/shop.html">Shop</a></nav>
<main><article>
<h1>Returns and refunds</h1>
<p>You can return any item within 30 days of delivery, unused and in its box.</p>
<h2>Refunds</h2>
<p>${REFUND_FACT} We email you when the refund is on its way.</p>
<h2>Exchanges</h2>
<p>Exchanges are free: choose the new size when you register the return.</p>
</article></main>
<footer>© Acme</footer></body></html>
`;
}

function shopPage(baseUrl, token) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop — Acme</title></head>
<body><h1>Shop</h1>
<script src="${baseUrl}/widget.js" data-kaltalk-inbox="${token}" async></script>
</body></html>
`;
}

/** The texts of the bot's and agents' bubbles in the widget, and whether each is a draft. */
function widgetBubbles(page) {
  return page.evaluate(() => {
    const root = document.getElementById('kaltalk-widget')?.shadowRoot;
    if (!root) return [];
    return [...root.querySelectorAll('[role=log] .kt-row.them')].map((row) => ({
      text: row.querySelector('.kt-b > div')?.textContent ?? '',
      name: row.querySelector('.kt-nm')?.textContent ?? '',
      draft: row.getAttribute('aria-hidden') === 'true',
      sources: [...row.querySelectorAll('.kt-cite a')].map((a) => ({ title: a.textContent, href: a.href })),
    }));
  });
}

describe('the AI agent answers from the knowledge base and hands over', { timeout: 240_000 }, () => {
  let dataDir;
  let provider;
  let server;
  let host;
  let browser;
  let ctxA; // agent
  let ctxB; // visitor
  let pageA;
  let pageB;
  let consoleA;
  let consoleB;
  let embedToken;
  let helpUrl;
  let answer; // the bot's committed answer, as the widget shows it

  const { step } = agentAndVisitorSteps('ai', () => ({ pageA, pageB, server, consoleA, consoleB }));

  before(async () => {
    await mkdir(artifactsDir, { recursive: true });
    provider = await startFakeOpenAi();

    dataDir = await makeDataDir();
    const user = await runCli(
      ['admin', 'create-user', '--email', OWNER.email, '--name', OWNER.name, '--password-stdin', '--org', OWNER.org],
      { dataDir, stdin: `${OWNER.password}\n` },
    );
    const orgId = user.values.org_id;
    assert.ok(orgId, `create-user should print org_id=; it printed:\n${user.stdout}`);
    const inbox = await runCli(['admin', 'create-inbox', '--org-id', orgId, '--name', 'Website', '--domain', 'localhost'], { dataDir });
    embedToken = inbox.values.embed_token;
    assert.ok(embedToken, `create-inbox should print embed_token=; it printed:\n${inbox.stdout}`);

    server = await startServer({
      dataDir,
      env: {
        KALTALK_AI__BASE_URL: provider.baseUrl,
        KALTALK_AI__MODEL: 'fake-model',
        // The help centre is served on loopback, which the crawler refuses by default.
        KALTALK_KNOWLEDGE__ALLOW_LOOPBACK: 'true',
      },
    });
    host = await startHostServer({
      '/shop.html': () => shopPage(server.baseUrl, embedToken),
      '/help/returns.html': helpPage,
    });
    helpUrl = `http://localhost:${host.port}/help/returns.html`;

    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    ctxA = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    ctxB = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    for (const ctx of [ctxA, ctxB]) ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    consoleA = watchConsole(ctxA, 'agent');
    consoleB = watchConsole(ctxB, 'visitor');
    pageA = await ctxA.newPage();
  });

  after(async () => {
    await pageA?.screenshot({ path: path.join(artifactsDir, 'ai-agent-inbox.png'), fullPage: true }).catch(() => {});
    await pageB?.screenshot({ path: path.join(artifactsDir, 'ai-agent-visitor.png'), fullPage: true }).catch(() => {});
    await browser?.close();
    await host?.close();
    await server?.stop();
    await provider?.close();
    if (server) await writeFile(path.join(artifactsDir, 'ai-server-output.log'), server.output());
    if (dataDir) await removeDataDir(dataDir);
  });

  step('1. the owner adds the help page to the knowledge base and it becomes ready', async () => {
    await logIn(pageA, server.baseUrl, OWNER);
    await pageA.goto(`${server.baseUrl}/settings/knowledge`);
    await pageA.getByLabel('Web address', { exact: true }).fill(helpUrl);
    await pageA.locator('form[action="/settings/knowledge/web"]').getByRole('button', { name: 'Add' }).click();
    const row = () => pageA.locator('tr', { hasText: '/help/returns.html' });
    await until(
      async () => {
        await pageA.goto(`${server.baseUrl}/settings/knowledge`);
        const state = await row().locator('[data-state]').first().getAttribute('data-state').catch(() => null);
        if (state === 'failed') assert.fail(`the source failed: ${await outerHtml(pageA, 'table')}`);
        return state === 'ready';
      },
      async () => `expected the source ${helpUrl} to become ready\n${await outerHtml(pageA, 'main')}`,
      60_000,
    );
  });

  step('2. the owner switches the AI agent on; the page names the configured model', async () => {
    await pageA.goto(`${server.baseUrl}/settings/ai`);
    assert.match(await pageA.locator('main').innerText(), /fake-model/, 'the AI settings page names the server’s chat model');
    await pageA.getByLabel('Let the bot answer new conversations first').check();
    await pageA.getByRole('button', { name: 'Save' }).click();
    await expectVisible(pageA.getByText('Saved.'), 'expected "Saved." after saving the AI settings', async () => outerHtml(pageA, 'main'));
    await openLiveInbox(pageA, server.baseUrl, 'unassigned');
  });

  step('3. the visitor asks; the answer streams in, then shows its source', async () => {
    pageB = await ctxB.newPage();
    await pageB.goto(`http://localhost:${host.port}/shop.html`);
    await pageB.getByRole('button', { name: 'Open chat' }).click();
    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await expectVisible(box, 'expected the chat panel', async () => `widget: ${await widgetHtml(pageB)}`);
    await box.fill(QUESTION);
    await box.press('Enter');

    // While the model writes, a draft grows; record what it showed along the way.
    const drafts = new Set();
    answer = await until(
      async () => {
        const bubbles = await widgetBubbles(pageB);
        for (const b of bubbles) if (b.draft && b.text) drafts.add(b.text);
        return bubbles.find((b) => !b.draft && b.text.includes(REFUND_FACT));
      },
      async () => `expected the bot's answer containing ${JSON.stringify(REFUND_FACT)}\nwidget: ${await widgetHtml(pageB)}`,
      30_000,
    );
    assert.ok(
      [...drafts].some((d) => d.length < answer.text.length && answer.text.startsWith(d)),
      `expected to see the answer streaming in (a shorter draft first); drafts seen: ${JSON.stringify([...drafts])}`,
    );
    assert.deepEqual(
      answer.sources.map((s) => s.href),
      [helpUrl],
      `the answer cites the help page: ${JSON.stringify(answer.sources)}`,
    );
    assert.match(answer.sources[0].title, /Returns and refunds/, `the citation is titled after the page: ${JSON.stringify(answer.sources)}`);
    assert.equal(answer.name, 'Assistant', 'the answer is signed with the bot’s name from the AI settings');

    // What the provider got: the question and the help page's text as sources.
    assert.equal(provider.requests.length, 1, 'one model call for one question');
    const sent = JSON.stringify(provider.requests[0].body.messages);
    assert.ok(sent.includes(QUESTION) && sent.includes('5 to 7 business days'), `the prompt carries the question and the passage: ${clip(sent)}`);
  });

  step('4. the visitor asks for a person: the bot says so once and the conversation waits unassigned with a note', async () => {
    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill(ASK_PERSON);
    await box.press('Enter');
    await expectVisible(pageB.locator('#kaltalk-widget [role=log]').getByText(HANDOFF_SAID), 'expected the bot to say it hands over', async () =>
      `widget: ${await widgetHtml(pageB)}`);

    // The list's preview follows the newest message, so match any of the last ones.
    const link = pageA.locator('#conversation-list [data-conversation-link]').filter({ hasText: /talk to a person|passing you to a person/i });
    await expectVisible(link, 'expected the conversation in the unassigned view, live', async () =>
      `#conversation-list: ${await outerHtml(pageA, '#conversation-list')}`);
    await pageA.locator('#conversation-list [data-conversation-link]').first().click();
    const note = pageA.locator('#messages .timeline-line', { hasText: 'Handed over to the team' });
    await expectVisible(note, 'expected the handoff note in the conversation', async () => `#messages: ${await outerHtml(pageA, '#messages')}`);
    assert.match(await note.first().innerText(), /asked for a person/i, 'the handover line gives the reason');
    // It is the team's timeline, never the visitor's.
    assert.equal(await pageB.locator('#kaltalk-widget [role=log]').getByText('Handed over to the team').count(), 0, 'the visitor does not see the handover line');
    const handoffs = (await widgetBubbles(pageB)).filter((b) => b.text.includes(HANDOFF_SAID));
    assert.equal(handoffs.length, 1, 'the bot says it hands over exactly once');
  });

  step('5. the agent replies; afterwards the bot stays silent', async () => {
    await pageA.locator('#reply-text').fill(AGENT_REPLY);
    await pageA.locator('#conversation').getByRole('button', { name: 'Send', exact: true }).click();
    await expectVisible(pageB.locator('#kaltalk-widget [role=log]').getByText(AGENT_REPLY), 'expected the agent’s reply in the widget', async () =>
      `widget: ${await widgetHtml(pageB)}`);

    const before = (await widgetBubbles(pageB)).length;
    const calls = provider.requests.length;
    const turns = await botTurnsQueued(dataDir);
    const box = pageB.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill(AFTER_REPLY);
    await box.press('Enter');
    await expectVisible(pageA.locator('#messages').getByText(AFTER_REPLY), 'expected the visitor’s message in the agent’s conversation, live', async () =>
      `#messages: ${await outerHtml(pageA, '#messages')}`);
    // A bot turn is a job committed in the same transaction as the visitor's message, so
    // now that the message is on the agent's screen the queue already says whether the
    // bot will answer: no waiting for an answer that should not come.
    assert.equal(await botTurnsQueued(dataDir), turns, 'no bot turn was queued for the message');
    const after = await widgetBubbles(pageB);
    assert.equal(after.length, before, `no bot message after a person replied: ${JSON.stringify(after.slice(before))}`);
    assert.equal(provider.requests.length, calls, 'the model was not called again');
  });
});

/** How many bot turns (jobs of kind `ai.turn`, whatever their state) the server's SQLite
 * database holds; read with Python's own sqlite3 module (WAL lets it read beside the
 * server), so the test needs no SQLite package of its own. */
async function botTurnsQueued(dir) {
  const script = 'import sqlite3, sys\n' +
    'db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)\n' +
    'print(db.execute("SELECT count(*) FROM jobs WHERE kind = \'ai.turn\'").fetchone()[0])';
  const { stdout } = await execFileAsync('python3', ['-c', script, path.join(dir, 'kaltalk.db')]);
  return Number(stdout.trim());
}
