// Faults around the supervisor (issue 10): a worker that cannot be spawned, a worker restarted
// after the config file changed on disk, a worker that ignores stop, counters of a dead worker.
// Real worker processes (bin/ on dist/) on loopback; this process (Node) supervises.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import pino from 'pino';
import { loadConfigFile } from '../../src/config/load.ts';
import { ErrorCode } from '../../src/errors.ts';
import { Supervisor } from '../../src/lifecycle/supervisor.ts';
import { connect, inParallel, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';

type Line = { msg: string; [key: string]: unknown };

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger() {
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

/** Rejects when `promise` is still pending after `ms`: a hang is a failure, not a slow pass. */
function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a worker that cannot be spawned (no such binary): start() rejects, no hang, no crash', async (t) => {
  const { log, lines } = capturingLogger();
  const supervisor = new Supervisor({
    workers: 2,
    command: ['/nonexistent/switchyard-runtime', 'bin/switchyard.js'],
    args: ['--listen', '127.0.0.1:1', '--backend', '127.0.0.1:2'],
    log,
  });
  t.after(() => supervisor.exitNow());
  await assert.rejects(settlesWithin(supervisor.start(), 10_000, 'start()'), {
    code: ErrorCode.WORKER_START_FAILED,
  });
  assert.ok(lines.some((l) => l.msg === 'cannot start worker' && /ENOENT/.test(String(l.err))));
  await settlesWithin(supervisor.stop(100), 10_000, 'stop()');
});

test('a restarted worker whose spawn fails is retried with the crash backoff until it starts', async (t) => {
  const echo = await startEchoServer(t);
  const port = await closedPort();
  // The runtime through a symlink we can take away and put back.
  const runtime = runtimeFor('node');
  const link = join(tempDir(t), basename(runtime));
  symlinkSync(runtime, link);
  const { log, lines } = capturingLogger();
  const supervisor = new Supervisor({
    workers: 2,
    command: [link, `${ROOT}bin/switchyard.js`],
    args: ['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${echo.port}`],
    log,
  });
  t.after(() => supervisor.exitNow());
  await supervisor.start();
  const first = supervisor.workers()[0]?.pid as number;
  unlinkSync(link);
  process.kill(first, 'SIGKILL');
  const failures = () => lines.filter((l) => l.msg === 'cannot start worker').length;
  await waitFor(() => failures() >= 3, 10_000, 'three failed spawns');
  const delays = lines
    .filter((l) => l.worker === 1 && typeof l.restartInMs === 'number')
    .map((l) => l.restartInMs);
  t.diagnostic(`restart delays: ${delays.join(', ')} ms`);
  assert.deepEqual(delays.slice(0, 3), [100, 200, 400], 'the same doubling as a crash');
  symlinkSync(runtime, link);
  await waitFor(() => supervisor.workers()[0]?.ready === true, 10_000, 'worker 1 back');
  const client = await connect(port);
  client.destroy();
  await settlesWithin(supervisor.stop(1_000), 10_000, 'stop()');
});

test('a worker that ignores stop (SIGTERM and the IPC order) is killed after the deadline', async (t) => {
  const script = join(tempDir(t), 'hung-worker.mjs');
  writeFileSync(
    script,
    `process.on('SIGTERM', () => {});
process.on('message', () => {});
process.send({ type: 'ready', ports: {} });
setInterval(() => {}, 60_000);
`,
  );
  const { log, lines } = capturingLogger();
  const supervisor = new Supervisor({
    workers: 2,
    command: [process.execPath, script],
    args: [],
    log,
    stopMarginMs: 1_000,
  });
  t.after(() => supervisor.exitNow());
  await supervisor.start();
  const pids = supervisor.workers().map((w) => w.pid as number);
  t.after(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  // Nor does it answer for its connections: the admin server's request is not held up.
  assert.deepEqual(await supervisor.liveConnections(200), []);
  assert.ok(lines.some((l) => /did not list its connections/.test(l.msg)));
  await settlesWithin(supervisor.stop(300), 15_000, 'stop()');
  assert.ok(
    pids.every((pid) => !alive(pid)),
    'both hung workers are gone',
  );
  assert.ok(
    lines.some((l) => /SIGKILL/.test(l.msg)),
    'the kill is logged',
  );
});

for (const engine of ENGINES) {
  test(`${engine}: a restarted worker runs the config the others run, not the file changed since`, async (t) => {
    const echo = await startEchoServer(t);
    const [portA, portB, portC] = [await closedPort(), await closedPort(), await closedPort()];
    const file = join(tempDir(t), 'switchyard.yaml');
    const frontend = (name: string, port: number) =>
      `  - { name: ${name}, listen: "127.0.0.1:${port}", backend: echo }\n`;
    const config = (...frontends: string[]) =>
      `frontends:\n${frontends.join('')}backends:\n  - name: echo\n    servers:\n      - { name: e, address: "127.0.0.1:${echo.port}" }\n`;
    writeFileSync(file, config(frontend('a', portA)));
    const supervisor = new Supervisor({
      workers: 2,
      command: [runtimeFor(engine), `${ROOT}bin/switchyard.js`],
      args: ['--config', file, '--log-level', 'warn'],
      log: pino({ level: 'silent' }),
    });
    t.after(() => supervisor.exitNow());
    await supervisor.start();
    // B: what SIGHUP validated and sent to every worker.
    writeFileSync(file, config(frontend('a', portA), frontend('b', portB)));
    await supervisor.reload(loadConfigFile(file));
    await waitFor(
      async () => {
        await supervisor.refresh();
        return supervisor.stats().frontends.b !== undefined;
      },
      5_000,
      'frontend b',
    );
    // C: valid, different, never reloaded.
    writeFileSync(file, config(frontend('a', portA), frontend('c', portC)));
    const before = supervisor.workers()[0]?.pid as number;
    process.kill(before, 'SIGKILL');
    await waitFor(
      () => supervisor.workers()[0]?.ready === true && supervisor.workers()[0]?.pid !== before,
      10_000,
      'worker 1 restarted',
    );
    await supervisor.refresh();
    const frontends = Object.keys(supervisor.stats().frontends).sort();
    assert.deepEqual(frontends, ['a', 'b'], 'the restarted worker runs B');
    await assert.rejects(connect(portC), { code: 'ECONNREFUSED' });
    // Nor does a file that no longer parses keep a worker from coming back.
    writeFileSync(file, 'frontends: [');
    const second = supervisor.workers()[1]?.pid as number;
    process.kill(second, 'SIGKILL');
    await waitFor(
      () => supervisor.workers()[1]?.ready === true && supervisor.workers()[1]?.pid !== second,
      10_000,
      'worker 2 restarted',
    );
    (await connect(portB)).destroy();
    await supervisor.stop(1_000);
  });

  test(`${engine}: a dead worker's counters stay in the sum; its gauges leave`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const supervisor = new Supervisor({
      workers: 2,
      command: [runtimeFor(engine), `${ROOT}bin/switchyard.js`],
      args: [
        '--listen',
        `127.0.0.1:${port}`,
        '--backend',
        `127.0.0.1:${echo.port}`,
        '--log-level',
        'warn',
      ],
      log: pino({ level: 'silent' }),
    });
    t.after(() => supervisor.exitNow());
    await supervisor.start();
    // Connections held open until both workers have some, then each says hello and closes.
    const sockets: net.Socket[] = [];
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    const workersWithConnections = async () =>
      new Set((await supervisor.liveConnections()).map((c) => c.worker)).size;
    while (sockets.length < 200) {
      sockets.push(...(await inParallel(8, 8, () => connect(port))));
      if (sockets.length >= 16 && (await workersWithConnections()) === 2) break;
    }
    const n = sockets.length;
    for (const s of sockets) s.end('hello');
    await waitFor(
      async () => {
        await supervisor.refresh();
        const web = supervisor.stats().frontends.default;
        return web?.active === 0 && web.accepted === n;
      },
      10_000,
      'every connection closed',
    );
    const before = supervisor.stats().frontends.default;
    assert.ok(before);
    const dead = supervisor.workers()[0]?.pid as number;
    process.kill(dead, 'SIGKILL');
    await waitFor(
      () => supervisor.workers()[0]?.ready === true && supervisor.workers()[0]?.pid !== dead,
      10_000,
      'worker 1 restarted',
    );
    await supervisor.refresh();
    const after = supervisor.stats().frontends.default;
    assert.ok(after);
    t.diagnostic(`accepted ${before.accepted} before the kill, ${after.accepted} after`);
    assert.equal(after.accepted, before.accepted, 'accepted kept');
    assert.deepEqual(after.closed, before.closed, 'closed by reason kept');
    assert.equal(after.bytesIn, before.bytesIn, 'bytes kept');
    assert.equal(after.active, 0);
    await supervisor.stop(1_000);
  });
}
