// Start a throw-away kaltalk server for one browser test.
//
//   const server = await startServer();
//   ... use server.baseUrl ...
//   await server.stop();
//
// The binary comes from KALTALK_BIN (default target/debug/kaltalk, relative to
// the repository root). The server listens on an ephemeral port on 127.0.0.1
// and keeps its data in a fresh temporary directory that stop() removes.
// Readiness is taken from the server's own log line
// "listening on http://127.0.0.1:PORT"; nothing sleeps or probes ports.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LISTENING = /listening on (https?:\/\/[^\s]+)/;
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export function kaltalkBin() {
  const bin = process.env.KALTALK_BIN || 'target/debug/kaltalk';
  return path.isAbsolute(bin) ? bin : path.join(repoRoot, bin);
}

/**
 * @param {{ env?: Record<string, string> }} [options] extra environment for the server
 * @returns {Promise<{ baseUrl: string, dataDir: string, output: () => string, stop: () => Promise<void> }>}
 */
export async function startServer(options = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'kaltalk-browser-'));
  const env = {
    ...process.env,
    KALTALK_LISTEN: '127.0.0.1:0',
    KALTALK_DATA_DIR: dataDir,
    KALTALK_LOG_FORMAT: 'text',
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

  let output = '';
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
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
    await rm(dataDir, { recursive: true, force: true });
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
    await rm(dataDir, { recursive: true, force: true });
  }

  return { baseUrl, dataDir, output: () => output, stop };
}
