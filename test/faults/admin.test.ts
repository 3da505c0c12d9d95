// Fault tests of the admin server, through the `switchyard` command as an operator runs it:
// the token a config sets survives `--admin`; a slow client on the admin port cannot take the
// proxy's descriptors; the server refuses a non-loopback address without a token.
import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, type TestContext, test } from 'node:test';
import { connect, inParallel, readAll, waitFor } from '../support/clients.ts';
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
  nofile?: number,
): Promise<Cli> {
  const { SWITCHYARD_ADMIN_TOKEN: _, ...rest } = process.env;
  const argv = [process.execPath, BIN, ...args];
  const options: SpawnOptions = {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...rest, ...env },
  };
  // A descriptor limit (soft and hard, so nothing raises it back) is set by the shell, which
  // then becomes the command (exec).
  const child =
    nofile === undefined
      ? spawn(argv[0] as string, argv.slice(1), options)
      : spawn('bash', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, ...argv], options);
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

    test('2,000 idle connections to the admin port: the proxy still accepts and forwards', async (t) => {
      const backend = await startEchoServer(t);
      const path = configFile(
        t,
        `frontends: [{ name: web, listen: "127.0.0.1:0", backend: app, maxConnections: 100 }]
backends: [{ name: app, servers: [{ name: a, address: "127.0.0.1:${backend.port}" }] }]
admin: { listen: "127.0.0.1:0" }
`,
      );
      // 1,024 descriptors: fewer than the idle clients, plenty for the proxy's 100 connections.
      const cli = await startCli(t, ['--config', path, '--engine', engine], {}, 1024);
      const [host, port] = [
        cli.admin.slice(0, cli.admin.lastIndexOf(':')),
        cli.admin.slice(cli.admin.lastIndexOf(':') + 1),
      ];
      const idle: net.Socket[] = [];
      t.after(() => {
        for (const s of idle) s.destroy();
      });
      await inParallel(2000, 100, async () => {
        const s = net.connect({ host, port: Number(port) });
        idle.push(s);
        s.on('error', () => {});
        // Connected (accepted or in the backlog) or turned away: either way the next one.
        await Promise.race([once(s, 'connect'), once(s, 'close')]);
      });
      // Clients of the frontend, while those are held open: every one is forwarded.
      const echoed = await inParallel(20, 5, async (i) => {
        const c = await connect(cli.port);
        c.on('error', () => {});
        c.end(`through ${i}`);
        return (await readAll(c)).toString();
      });
      assert.deepEqual(
        echoed,
        Array.from({ length: 20 }, (_, i) => `through ${i}`),
      );
      // Once they are gone, the admin server answers again.
      for (const s of idle) s.destroy();
      await waitFor(
        async () => {
          try {
            return (await fetch(`http://${cli.admin}/healthz`)).status === 200;
          } catch {
            return false;
          }
        },
        20_000,
        'the admin server to answer after the idle clients left',
      );
    });
  });
}

test('admin beyond loopback without a token: exit 2, one line naming the fix', (t) => {
  const { SWITCHYARD_ADMIN_TOKEN: _, ...env } = process.env;
  const run = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 10_000, env });
  const flag = run(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:1', '--admin', '0.0.0.0:0']);
  assert.equal(flag.status, 2, flag.stderr);
  assert.equal(flag.stderr.trim().split('\n').length, 1, flag.stderr);
  assert.match(
    flag.stderr,
    /--admin: 0\.0\.0\.0:0 is not a loopback address; set SWITCHYARD_ADMIN_TOKEN/,
  );
  const path = configFile(
    t,
    `frontends: [{ name: web, listen: "127.0.0.1:0", backend: app }]
backends: [{ name: app, servers: [{ name: a, address: "127.0.0.1:1" }] }]
admin: { listen: "[::]:0" }
`,
  );
  const config = run(['--config', path]);
  assert.equal(config.status, 2, config.stderr);
  assert.match(config.stderr, /^switchyard: invalid config, 1 problem:\nadmin\.token: required: /);
});
