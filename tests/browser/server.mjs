// Start a throw-away kaltalk server for one browser test.
//
//   const server = await startServer();
//   ... use server.baseUrl ...
//   await server.stop();
//
// To prepare data with the CLI first (SQLite WAL also allows it while the
// server runs), make the data directory yourself and pass it on:
//
//   const dataDir = await makeDataDir();
//   const { values } = await runCli(['admin', 'create-user', ...], { dataDir, stdin: 'password\n' });
//   const server = await startServer({ dataDir });
//   ...
//   await server.stop();          // leaves a caller-provided dataDir alone
//   await removeDataDir(dataDir);
//
// The binary comes from KALTALK_BIN (default target/debug/kaltalk, relative to
// the repository root). The server listens on an ephemeral port on 127.0.0.1
// and keeps its data in a fresh temporary directory that stop() removes.
// Readiness is taken from the server's own log line
// "listening on http://127.0.0.1:PORT"; nothing sleeps or probes ports.

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LISTENING = /listening on (https?:\/\/[^\s]+)/;
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const CLI_TIMEOUT_MS = 60_000;

export function kaltalkBin() {
  const bin = process.env.KALTALK_BIN || 'target/debug/kaltalk';
  return path.isAbsolute(bin) ? bin : path.join(repoRoot, bin);
}

/** A fresh, empty temporary data directory. */
export function makeDataDir() {
  return mkdtemp(path.join(tmpdir(), 'kaltalk-browser-'));
}

export function removeDataDir(dataDir) {
  return rm(dataDir, { recursive: true, force: true });
}

/** The `key=value` lines of a CLI's output (other lines, e.g. logs, are skipped). */
export function parseKeyValues(stdout) {
  const values = {};
  for (const line of stdout.split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(line.trimEnd());
    if (m) values[m[1]] = m[2];
  }
  return values;
}

/**
 * Run `kaltalk ARGS...` against a data directory and wait for it to finish.
 * The child gets none of this process's KALTALK_* variables (the binary
 * rejects unknown ones, and KALTALK_BIN is this harness's), only
 * KALTALK_DATA_DIR and `options.env`. Rejects, with the output, when the
 * command exits non-zero.
 *
 * @param {string[]} args
 * @param {{ dataDir: string, stdin?: string, env?: Record<string, string> }} options
 * @returns {Promise<{ stdout: string, stderr: string, values: Record<string, string> }>}
 */
export function runCli(args, options) {
  if (!options?.dataDir) throw new Error('runCli: options.dataDir is required');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KALTALK_')));
  Object.assign(env, { KALTALK_DATA_DIR: options.dataDir }, options.env);
  return new Promise((resolve, reject) => {
    const child = execFile(
      kaltalkBin(),
      args,
      { cwd: options.dataDir, env, timeout: CLI_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`kaltalk ${args.join(' ')} failed (${err.code ?? err.signal ?? err.message}):\n` +
            `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
        } else {
          resolve({ stdout, stderr, values: parseKeyValues(stdout) });
        }
      },
    );
    // A command that reads no input may exit before its stdin is written: that EPIPE is
    // not a failure (the exit status above says whether the command worked).
    child.stdin.on('error', (err) => { if (err.code !== 'EPIPE') reject(err); });
    child.stdin.end(options.stdin ?? '');
  });
}

/**
 * An organization made with the CLI: its owner (`{ name, email, password, org }`) and
 * members (`{ name, email, password, role }`), each with their password on stdin.
 * Resolves to the organization's id and each person's user id, by email.
 *
 * @returns {Promise<{ orgId: string, userIds: Record<string, string> }>}
 */
export async function createOrganization(dataDir, owner, members = []) {
  const made = await runCli(
    ['admin', 'create-user', '--email', owner.email, '--name', owner.name, '--password-stdin', '--org', owner.org],
    { dataDir, stdin: `${owner.password}\n` },
  );
  const orgId = made.values.org_id;
  if (!orgId) throw new Error(`create-user should print org_id=; it printed:\n${made.stdout}`);
  const userIds = { [owner.email]: made.values.user_id };
  for (const member of members) {
    const joined = await runCli(
      ['admin', 'create-user', '--email', member.email, '--name', member.name, '--password-stdin', '--org-id', orgId, '--role', member.role],
      { dataDir, stdin: `${member.password}\n` },
    );
    if (!joined.values.user_id) throw new Error(`create-user should print user_id=; it printed:\n${joined.stdout}`);
    userIds[member.email] = joined.values.user_id;
  }
  return { orgId, userIds };
}

/**
 * @param {{ env?: Record<string, string>, dataDir?: string }} [options]
 *   env: extra environment for the server;
 *   dataDir: use this data directory (the caller removes it) instead of a
 *   fresh one that stop() removes.
 * @returns {Promise<{ baseUrl: string, dataDir: string, output: () => string, stop: () => Promise<void> }>}
 */
export async function startServer(options = {}) {
  const ownDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? (await makeDataDir());
  const env = {
    ...process.env,
    KALTALK_LISTEN: '127.0.0.1:0',
    KALTALK_DATA_DIR: dataDir,
    KALTALK_LOG_FORMAT: 'text',
    // A fresh data dir has no embedding model; the server would fetch it from
    // Hugging Face, which the tests cannot reach.
    KALTALK_EMBEDDINGS__DOWNLOAD: 'false',
    // Port 0: browser suites run side by side, and the default 2525 may be taken.
    KALTALK_SMTP_LISTEN: '127.0.0.1:0',
    ...options.env,
  };
  delete env.KALTALK_DATABASE_URL;
  delete env.KALTALK_PUBLIC_URL;
  // KALTALK_BIN is this harness's variable, not the server's: the server reads
  // every KALTALK_* variable as configuration and rejects unknown ones.
  delete env.KALTALK_BIN;

  const child = spawn(kaltalkBin(), ['serve'], {
    cwd: dataDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // However this test process ends (a failed hook, an uncaught error), the server goes
  // with it: no orphan holding a port after the suite.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let output = '';
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      resolve({ code, signal });
    });
  });

  let baseUrl;
  try {
    baseUrl = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`kaltalk did not log "listening on" within ${STARTUP_TIMEOUT_MS / 1000} s; output:\n${output}`));
      }, STARTUP_TIMEOUT_MS);
      const onData = (chunk) => {
        output += chunk.toString('utf8');
        const m = LISTENING.exec(output);
        if (m) {
          clearTimeout(timer);
          // Strip trailing punctuation a log formatter might put after the URL.
          resolve(m[1].replace(/[)"',.;]+$/, '').replace(/\/+$/, ''));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${kaltalkBin()}: ${err.message}`));
      });
      // 'close' rather than 'exit': all of the output has been read by then.
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`kaltalk exited before listening (code ${code}, signal ${signal}); output:\n${output}`));
      });
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    if (ownDataDir) await removeDataDir(dataDir);
    throw err;
  }

  // Keep collecting output for diagnostics after startup.
  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    if (ownDataDir) await removeDataDir(dataDir);
  }

  return { baseUrl, dataDir, output: () => output, stop };
}
