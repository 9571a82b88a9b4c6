// A stand-in for an OpenAI-compatible provider, for the browser tests: a real HTTP
// server on loopback speaking the Chat Completions wire format (server-sent events
// with `stream: true`), so KalTalk's production client talks to it unchanged, only
// its base URL configured.
//
//   const provider = await startFakeOpenAi();
//   ... KALTALK_AI__BASE_URL = provider.baseUrl ...
//   provider.requests   // every request body received, parsed
//   await provider.close();
//
// Its behaviour is deliberately simple and visible in the tests:
// - when the visitor's question asks for a person, it calls the hand-over tool;
// - otherwise it answers with the first sentence of the source that shares most words
//   with the question (or hands over when none does), citing it as [n], streamed a few characters at a time with a pause between, so the widget's
//   streaming can be watched.

import http from 'node:http';

const TOKEN_DELAY_MS = 120;

/** The last user message of a chat request. */
function lastUserText(body) {
  const users = (body.messages ?? []).filter((m) => m.role === 'user');
  const last = users[users.length - 1];
  return typeof last?.content === 'string' ? last.content : '';
}

/**
 * KalTalk's last user message carries the sources, one JSON object a line between
 * `BEGIN SOURCES` and `END SOURCES`, then "The visitor's question:" and the question.
 */
function readPrompt(body) {
  const text = lastUserText(body);
  const [sourcePart, question = text] = text.split("The visitor's question:\n");
  const sources = [];
  for (const line of sourcePart.split('\n')) {
    if (!line.startsWith('{')) continue;
    try { sources.push(JSON.parse(line)); } catch { /* not a source line */ }
  }
  return { question: question.trim(), sources };
}

const words = (text) => new Set(text.toLowerCase().match(/[a-z]{3,}/g) ?? []);

/** The first sentence of the source sharing most words with the question, citing it. */
function answerFrom({ question, sources }) {
  const asked = words(question);
  let best = null;
  let bestScore = 0;
  for (const source of sources) {
    const score = [...words(`${source.title} ${source.text}`)].filter((w) => asked.has(w) || asked.has(w.replace(/s$/, ''))).length;
    if (score > bestScore) { best = source; bestScore = score; }
  }
  if (!best) return null;
  const text = best.text.replace(/\s+/g, ' ').trim();
  const sentence = /^(.*?[.!?])(\s|$)/.exec(text)?.[1] ?? text;
  return `${sentence} [${best.n}]`;
}

function chunkEvent(id, model, delta, finish = null) {
  return `data: ${JSON.stringify({
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

function usageEvent(id, model) {
  return `data: ${JSON.stringify({
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [],
    usage: { prompt_tokens: 321, completion_tokens: 17, total_tokens: 338 },
  })}\n\n`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function streamAnswer(res, body) {
  const id = `chatcmpl-fake-${Date.now()}`;
  const model = body.model ?? 'fake-model';
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunkEvent(id, model, { role: 'assistant', content: '' }));
  const prompt = readPrompt(body);
  const answer = answerFrom(prompt);
  if (/\b(person|human|agent|someone)\b/i.test(prompt.question) || !answer) {
    const args = JSON.stringify({ reason: 'The visitor asked for a person.' });
    const tool = (extra) => ({ tool_calls: [{ index: 0, ...extra }] });
    res.write(chunkEvent(id, model, tool({ id: 'call_1', type: 'function', function: { name: 'hand_over_to_human', arguments: '' } })));
    // Arguments arrive in fragments, as providers send them.
    for (let i = 0; i < args.length; i += 8) {
      res.write(chunkEvent(id, model, tool({ function: { arguments: args.slice(i, i + 8) } })));
    }
    res.write(chunkEvent(id, model, {}, 'tool_calls'));
  } else {
    for (let i = 0; i < answer.length; i += 6) {
      res.write(chunkEvent(id, model, { content: answer.slice(i, i + 6) }));
      await sleep(TOKEN_DELAY_MS);
    }
    res.write(chunkEvent(id, model, {}, 'stop'));
  }
  if (body.stream_options?.include_usage) res.write(usageEvent(id, model));
  res.end('data: [DONE]\n\n');
}

export function startFakeOpenAi() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { raw += c; });
    req.on('end', async () => {
      if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } }));
        return;
      }
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid JSON body', type: 'invalid_request_error' } }));
        return;
      }
      requests.push({ headers: req.headers, body });
      if (!body.stream) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'this fake only streams', type: 'invalid_request_error' } }));
        return;
      }
      await streamAnswer(res, body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        baseUrl: `http://127.0.0.1:${port}`,
        requests,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
