// The `switchyard` command with --admin and --access-log, on each engine: the admin server binds
// loopback, wants the token from SWITCHYARD_ADMIN_TOKEN, reports readiness and metrics; the
// access log goes to stdout, one JSON line per closed connection, flushed by the time it exits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { connect, readAll, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;
const TOKEN = 'e2e-token';

for (const engine of ENGINES) {
  describe(`switchyard --admin --access-log (${engine} engine)`, () => {
    test('admin server and access log of the command', async (t) => {
      const backend = await startEchoServer(t);
      const child = spawn(
        process.execPath,
        [
          BIN,
          '--listen',
          '127.0.0.1:0',
          '--backend',
          `127.0.0.1:${backend.port}`,
          '--admin',
          '0',
          '--access-log',
          'stdout',
          '--engine',
          engine,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, SWITCHYARD_ADMIN_TOKEN: TOKEN },
        },
      );
      t.after(() => child.kill('SIGKILL'));
      const logs: Record<string, unknown>[] = [];
      createInterface({ input: child.stderr }).on('line', (l) => logs.push(JSON.parse(l)));
      const access: Record<string, unknown>[] = [];
      createInterface({ input: child.stdout }).on('line', (l) => access.push(JSON.parse(l)));
      await waitFor(
        () => logs.some((l) => l.msg === 'admin server listening') && logs.some((l) => l.listen),
        10_000,
        'the admin server and the frontend to listen',
      );
      const adminAt = String(logs.find((l) => l.msg === 'admin server listening')?.admin);
      assert.match(adminAt, /^127\.0\.0\.1:\d+$/, 'a port alone binds loopback');
      const listen = String(logs.find((l) => l.listen)?.listen);
      const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
      const base = `http://${adminAt}`;
      const auth = { Authorization: `Bearer ${TOKEN}` };

      assert.equal((await fetch(`${base}/readyz`)).status, 401);
      assert.equal((await fetch(`${base}/readyz`, { headers: auth })).status, 200);
      assert.equal((await fetch(`${base}/healthz`, { headers: auth })).status, 200);

      const c = await connect(port);
      c.end('abc');
      assert.equal((await readAll(c)).toString(), 'abc');
      await waitFor(() => access.length === 1, 5000, 'one access log line');
      assert.equal(access[0]?.cause, 'done');
      assert.equal(access[0]?.fin, 'client');
      assert.equal(access[0]?.bytes_in, 3);
      assert.equal(access[0]?.frontend, 'default');

      const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text();
      assert.match(metrics, /^switchyard_connections_accepted_total\{frontend="default"\} 1$/m);
      assert.match(
        metrics,
        /^switchyard_connections_closed_total\{frontend="default",reason="done"\} 1$/m,
      );

      // A second connection, still open at SIGTERM.
      const held = await connect(port);
      held.on('error', () => {});
      held.write('x');
      await waitFor(
        async () => {
          const live = (await (
            await fetch(`${base}/api/connections`, { headers: auth })
          ).json()) as { bytesIn: number }[];
          return live.length === 1 && live[0]?.bytesIn === 1;
        },
        5000,
        'the held connection in /api/connections',
      );
      // SIGTERM: the held connection drains, and meanwhile the process is not ready (but alive).
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await waitFor(
        async () => (await fetch(`${base}/readyz`, { headers: auth })).status === 503,
        5000,
        '/readyz 503 while draining',
      );
      assert.equal((await fetch(`${base}/healthz`, { headers: auth })).status, 200);
      assert.equal(child.exitCode, null, 'still running while the connection is open');
      held.end();
      const [code] = await exited;
      assert.equal(code, 0);
      await waitFor(() => access.length === 2, 2000, 'the held connection logged at exit');
      assert.equal(access[1]?.bytes_in, 1);
      assert.equal(access[1]?.cause, 'done', 'the drained connection finished on its own');
      assert.equal(access[1]?.fin, 'client');
    });
  });
}

test('--admin on a port in use: exits 1 naming SWITCHYARD_ERR_ADMIN_LISTEN_FAILED', async (t) => {
  const backend = await startEchoServer(t);
  const taken = await startEchoServer(t);
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--listen',
      '127.0.0.1:0',
      '--backend',
      `127.0.0.1:${backend.port}`,
      '--admin',
      String(taken.port),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 1);
  assert.match(stderr, /SWITCHYARD_ERR_ADMIN_LISTEN_FAILED/);
});

for (const engine of ENGINES) {
  test(`--workers 2 --admin (${engine}): /api/connections lists every worker's live connections`, async (t) => {
    const backend = await startEchoServer(t);
    const probe = await import('node:net');
    const free = probe.createServer();
    free.listen(0, '127.0.0.1');
    await once(free, 'listening');
    const port = (free.address() as import('node:net').AddressInfo).port;
    free.close();
    const child = spawn(
      process.execPath,
      [BIN, '--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${backend.port}`].concat([
        '--workers',
        '2',
        '--admin',
        '0',
        '--engine',
        engine,
      ]),
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, SWITCHYARD_ADMIN_TOKEN: TOKEN },
      },
    );
    t.after(() => child.kill('SIGKILL'));
    const logs: Record<string, unknown>[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => logs.push(JSON.parse(l)));
    await waitFor(
      () => logs.filter((l) => l.listen).length >= 2 && logs.some((l) => l.admin),
      20_000,
      'both workers and the admin server to listen',
    );
    const adminAt = String(logs.find((l) => l.msg === 'admin server listening')?.admin);
    const held: import('node:net').Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await connect(port);
      c.write('x');
      await once(c, 'data');
      held.push(c);
    }
    t.after(() => {
      for (const c of held) c.destroy();
    });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const rows = (await (
      await fetch(`http://${adminAt}/api/connections`, { headers: auth })
    ).json()) as { worker: number; state: string }[];
    assert.equal(rows.length, 8, 'asked of the workers, not an empty cache');
    assert.ok(rows.every((r) => r.worker === 1 || r.worker === 2));
  });
}
