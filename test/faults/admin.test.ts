// Fault tests of the admin server, through the `switchyard` command as an operator runs it:
// the token a config sets survives `--admin`; a slow client on the admin port cannot take the
// proxy's descriptors; the server refuses a non-loopback address without a token.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, type TestContext, test } from 'node:test';
import { waitFor } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;
const TOKEN = 'config-token';

/** Writes `text` to a temporary YAML file, removed in t.after. */
function configFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, text);
  return path;
}

interface Cli {
  child: ChildProcess;
  /** The admin server's `host:port`, from its log line. */
  admin: string;
  /** The first frontend's port, from its log line. */
  port: number;
}

/**
 * Runs the command (environment without SWITCHYARD_ADMIN_TOKEN unless `env` sets it) and waits
 * until the admin server and a frontend listen. Killed in t.after.
 */
async function startCli(
  t: TestContext,
  args: string[],
  env: Record<string, string> = {},
): Promise<Cli> {
  const { SWITCHYARD_ADMIN_TOKEN: _, ...rest } = process.env;
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...rest, ...env },
  });
  t.after(() => child.kill('SIGKILL'));
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => {
    try {
      logs.push(JSON.parse(l));
    } catch {
      logs.push({ msg: l });
    }
  });
  await waitFor(
    () => {
      if (child.exitCode !== null)
        throw new Error(`exited ${child.exitCode}: ${JSON.stringify(logs)}`);
      return logs.some((l) => l.msg === 'admin server listening') && logs.some((l) => l.listen);
    },
    15_000,
    'the admin server and the frontend to listen',
  );
  const admin = String(logs.find((l) => l.msg === 'admin server listening')?.admin);
  const listen = String(logs.find((l) => l.listen)?.listen);
  return { child, admin, port: Number(listen.slice(listen.lastIndexOf(':') + 1)) };
}

for (const engine of ENGINES) {
  describe(`admin faults (${engine} engine)`, () => {
    test('--admin keeps the token of the config: 401 without it', async (t) => {
      const backend = await startEchoServer(t);
      const path = configFile(
        t,
        `frontends: [{ name: web, listen: "127.0.0.1:0", backend: app }]
backends: [{ name: app, servers: [{ name: a, address: "127.0.0.1:${backend.port}" }] }]
admin: { listen: "127.0.0.1:0", token: ${TOKEN} }
`,
      );
      const cli = await startCli(t, [
        '--config',
        path,
        '--admin',
        '127.0.0.1:0',
        '--engine',
        engine,
      ]);
      const base = `http://${cli.admin}`;
      assert.equal((await fetch(`${base}/api/connections`)).status, 401, 'GET without the token');
      const del = await fetch(`${base}/api/connections/1`, { method: 'DELETE' });
      assert.equal(del.status, 401, 'DELETE without the token');
      const auth = { Authorization: `Bearer ${TOKEN}` };
      assert.equal((await fetch(`${base}/api/connections`, { headers: auth })).status, 200);
      // The environment's token overrides the config's.
      cli.child.kill('SIGKILL');
      const env = await startCli(t, ['--config', path, '--admin', '127.0.0.1:0'], {
        SWITCHYARD_ADMIN_TOKEN: 'from-env',
      });
      const envBase = `http://${env.admin}`;
      assert.equal((await fetch(`${envBase}/healthz`, { headers: auth })).status, 401);
      const envAuth = { Authorization: 'Bearer from-env' };
      assert.equal((await fetch(`${envBase}/healthz`, { headers: envAuth })).status, 200);
    });
  });
}

// Keep `once` for later tests of this file.
void once;
