// The process lifecycle of the `switchyard` command (bin/ on dist/), on each engine: workers
// sharing a port, a worker killed with SIGKILL, SIGHUP reloads, SIGTERM/SIGINT drains.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { connect, sha256, sleep, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';
import { closedPort, startEchoServer, startServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;

interface Cli {
  child: ChildProcess;
  /** Every log line so far, parsed. */
  lines: Record<string, unknown>[];
  /** Resolves with the first line (from the start) whose msg matches, or throws after `ms`. */
  line(msg: RegExp, ms?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or 128 + signal number). */
  exited: Promise<number>;
}

/** Runs the command on `engine`'s runtime, killed in t.after. */
function startCli(t: TestContext, engine: 'node' | 'bun', args: string[]): Cli {
  const child = spawn(runtimeFor(engine), [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text));
    } catch {
      lines.push({ msg: text });
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) =>
    code === null ? 128 + (signal === 'SIGKILL' ? 9 : 15) : (code as number),
  );
  const line = async (msg: RegExp, ms = 5_000) => {
    let found: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        found = lines.find((l) => msg.test(String(l.msg)));
        return found !== undefined;
      },
      ms,
      `a log line ${msg}`,
    );
    return found as Record<string, unknown>;
  };
  return { child, lines, line, exited };
}

/** Log lines whose msg matches. */
function count(cli: Cli, msg: RegExp): number {
  return cli.lines.filter((l) => msg.test(String(l.msg))).length;
}

interface Stream {
  sent: string;
  got: Promise<string>;
  socket: net.Socket;
}

/**
 * Writes `chunks` random 16 KiB chunks to an echo through the proxy, one every `everyMs`, then
 * FIN; `got` resolves with the sha256 of everything echoed back (or the error code).
 */
async function stream(port: number, chunks: number, everyMs: number): Promise<Stream> {
  const socket = await connect(port);
  const data = randomBytes(chunks * 16 * 1024);
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  const got = new Promise<string>((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
    socket.on('end', () => resolve(sha256(Buffer.concat(received))));
  });
  // The first chunk is echoed before this resolves: the proxy has accepted the connection (one
  // still in a listener's queue is reset when the listener closes).
  const first = once(socket, 'data');
  socket.write(data.subarray(0, 16 * 1024));
  await first;
  (async () => {
    for (let i = 1; i < chunks && !socket.destroyed; i++) {
      await sleep(everyMs);
      socket.write(data.subarray(i * 16 * 1024, (i + 1) * 16 * 1024));
    }
    socket.end();
  })();
  return { sent: sha256(data), got, socket };
}

/** Resolves with 'ok' when a connect succeeds and echoes, else the error code. */
function tryEcho(port: number, ms = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (result: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    socket.on('connect', () => socket.write('x'));
    socket.on('data', () => done('ok'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
    socket.on('close', () => done('closed'));
  });
}

/** Writes `text` to a temporary YAML file, removed in t.after. */
function configFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, text);
  return path;
}

/** Which of `pids` holds the proxy's end of the client socket `client` (via /proc). */
function ownerOf(client: net.Socket, listenPort: number, pids: number[]): number | null {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hex(listenPort)}`;
  const remote = `0100007F:${hex(client.localPort as number)}`;
  let inode = '';
  for (const row of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = row.trim().split(/\s+/);
    if (cols[1] === local && cols[2] === remote) inode = cols[9] ?? '';
  }
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
      } catch {
        // closed while we looked
      }
    }
  }
  return null;
}

/** The pid of each ready worker, from the supervisor's log, by worker id. */
function workerPids(cli: Cli): Map<number, number> {
  const pids = new Map<number, number>();
  for (const l of cli.lines) {
    if (/^worker \d+ ready$/.test(String(l.msg)))
      pids.set(l.worker as number, l.workerPid as number);
  }
  return pids;
}

for (const engine of ENGINES) {
  for (const workers of [1, 2]) {
    test(`${engine}, --workers ${workers}: SIGTERM drains: streams finish intact, new connections refused, exit 0`, async (t) => {
      const echo = await startEchoServer(t);
      const port = await closedPort();
      const cli = startCli(t, engine, [
        ...['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${echo.port}`],
        ...['--workers', String(workers), '--drain-timeout', '10s'],
      ]);
      await cli.line(workers > 1 ? /workers ready$/ : /listening on/);
      const streams = await Promise.all([1, 2, 3].map(() => stream(port, 20, 40)));
      await sleep(150);
      cli.child.kill('SIGTERM');
      // New connections are refused while the streams still run.
      await waitFor(async () => (await tryEcho(port)) === 'ECONNREFUSED', 1_000, 'refused');
      for (const s of streams) assert.equal(await s.got, s.sent, 'stream intact');
      assert.equal(await cli.exited, 0);
    });
  }

  test(`${engine}: SIGHUP without --config logs it; a second SIGTERM exits at once with 143`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const cli = startCli(t, engine, [
      ...['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${echo.port}`],
    ]);
    await cli.line(/listening on/);
    cli.child.kill('SIGHUP');
    await cli.line(/nothing to reload/);
    assert.equal(await tryEcho(port), 'ok', 'still forwarding');
    const held = await connect(port); // never finishes: the drain would wait 30 s
    t.after(() => held.destroy());
    held.write('x');
    await once(held, 'data');
    cli.child.kill('SIGTERM');
    await cli.line(/^stopping/);
    const at = Date.now();
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 143);
    t.diagnostic(`second SIGTERM to exit: ${Date.now() - at} ms`);
    assert.ok(Date.now() - at < 2_000);
  });

  test(`${engine}, --workers 2: --drain-timeout closes what is left after the deadline, exit 0`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const cli = startCli(t, engine, [
      ...['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${echo.port}`],
      ...['--workers', '2', '--drain-timeout', '300ms'],
    ]);
    await cli.line(/workers ready$/);
    const held = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
    // Each one echoes once: accepted by a worker, not waiting in a listener's queue (which a
    // closing listener resets).
    for (const s of held) {
      s.write('x');
      await once(s, 'data');
    }
    const closed = held.map(
      (s) =>
        new Promise<number>((resolve) => {
          // FIN or RST: the client allows half-open, so FIN alone does not close it.
          s.on('error', () => resolve(Date.now()));
          s.on('end', () => resolve(Date.now()));
          s.on('close', () => resolve(Date.now()));
          s.resume();
        }),
    );
    const at = Date.now();
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0);
    for (const when of await Promise.all(closed)) {
      assert.ok(when - at >= 250, `closed after the deadline (${when - at} ms)`);
    }
    t.diagnostic(`SIGINT to exit with 4 idle connections: ${Date.now() - at} ms`);
  });

  for (const workers of [1, 2]) {
    test(`${engine}, --workers ${workers}: SIGHUP reload keeps streams intact; invalid config kept out`, async (t) => {
      const a = await startEchoServer(t);
      let bHits = 0;
      const b = await startServer(t, (socket) => {
        bHits++;
        socket.pipe(socket);
      });
      const [webPort, extraPort] = [await closedPort(), await closedPort()];
      const yaml = (frontends: string[], servers: number[]) =>
        `frontends:\n${frontends.join('\n')}\nbackends:\n  - name: app\n    servers:\n${servers
          .map((p, i) => `      - { name: s${i}, address: "127.0.0.1:${p}" }`)
          .join('\n')}\n`;
      const web = `  - { name: web, listen: "127.0.0.1:${webPort}", backend: app }`;
      const extra = `  - { name: extra, listen: "127.0.0.1:${extraPort}", backend: app }`;
      const file = configFile(t, yaml([web], [a.port]));
      const cli = startCli(t, engine, ['--config', file, '--workers', String(workers)]);
      await cli.line(workers > 1 ? /workers ready$/ : /listening on/);
      const streams = await Promise.all([1, 2, 3].map(() => stream(webPort, 40, 40)));

      // 1. Invalid: two problems, each logged; the running config stays.
      writeFileSync(
        file,
        `${yaml([web], [a.port])}  - { name: bad, balance: nope, servers: [] }\nextra: 1\n`,
      );
      cli.child.kill('SIGHUP');
      await cli.line(/^config not reloaded \(\d+ problems\)/);
      const rejected = cli.lines.filter((l) => /^reload rejected: /.test(String(l.msg)));
      t.diagnostic(rejected.map((l) => String(l.msg)).join(' | '));
      assert.ok(rejected.some((l) => /backends\.1\.balance/.test(String(l.msg))));
      assert.ok(rejected.some((l) => /extra: unknown key/.test(String(l.msg))));
      assert.equal(await tryEcho(webPort), 'ok', 'still forwarding');

      // 2. Valid: a server and a frontend added.
      writeFileSync(file, yaml([web, extra], [a.port, b.port]));
      cli.child.kill('SIGHUP');
      await waitFor(() => count(cli, /^config reloaded$/) === workers, 5_000, 'reloaded');
      for (let i = 0; i < 8; i++) assert.equal(await tryEcho(webPort), 'ok');
      assert.ok(bHits > 0, `the added server takes traffic (${bHits} of 8)`);
      assert.equal(await tryEcho(extraPort), 'ok', 'the added frontend listens');

      // 3. Valid: the frontend the streams came in on removed; they drain, it takes no more.
      writeFileSync(file, yaml([extra], [a.port, b.port]));
      cli.child.kill('SIGHUP');
      await waitFor(() => count(cli, /^config reloaded$/) === 2 * workers, 5_000, 'reloaded');
      assert.equal(await tryEcho(webPort), 'ECONNREFUSED', 'removed frontend stops accepting');
      for (const s of streams) assert.equal(await s.got, s.sent, 'stream intact across reloads');
      assert.equal(await tryEcho(extraPort), 'ok');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0);
    });
  }

  test(`${engine}, --workers 2: kill -9 of a worker: restarted, no failed connection once it is up`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const cli = startCli(t, engine, [
      ...['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${echo.port}`],
      ...['--workers', '2'],
    ]);
    await cli.line(/workers ready$/);
    const pids = workerPids(cli);
    const victim = pids.get(1) as number;
    const survivor = pids.get(2) as number;
    // Long-lived connections; the ones on the surviving worker must not notice.
    const held = await Promise.all(Array.from({ length: 8 }, () => connect(port)));
    t.after(() => {
      for (const s of held) s.destroy();
    });
    for (const s of held) s.on('error', () => {});
    await sleep(50);
    const onSurvivor = held.filter((s) => ownerOf(s, port, [victim, survivor]) === survivor);
    t.diagnostic(`${onSurvivor.length} of 8 held connections on the surviving worker`);

    // A client loop: one connection every 5 ms, each must echo.
    const results: { at: number; ok: boolean }[] = [];
    let looping = true;
    const loop = (async () => {
      for (let i = 0; looping && i < 2_000; i++) {
        const at = Date.now();
        tryEcho(port, 1_000).then((r) => results.push({ at, ok: r === 'ok' }));
        await sleep(5);
      }
    })();
    await sleep(300);
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const restart = await cli.line(/^worker 1 restarted$/, 5_000);
    const upAt = Date.now();
    await sleep(700);
    looping = false;
    await loop;
    await sleep(1_100); // the last attempts settle
    const failed = results.filter((r) => !r.ok);
    const afterUp = failed.filter((r) => r.at >= upAt);
    const window = failed.length > 0 ? Math.max(...failed.map((r) => r.at)) - killedAt : 0;
    t.diagnostic(
      `${results.length} connections; ${failed.length} failed, the last ${window} ms after the kill; ` +
        `replacement (pid ${restart.workerPid}) up ${upAt - killedAt} ms after the kill; ${afterUp.length} failed after`,
    );
    assert.equal(afterUp.length, 0, 'no failed connection once the replacement is up');
    assert.notEqual(restart.workerPid, victim);
    for (const s of onSurvivor) {
      s.write('still here');
      const [data] = await once(s, 'data');
      assert.equal(String(data), 'still here', 'a connection on the other worker is untouched');
    }
    assert.match(String((await cli.line(/^worker 1 died/)).msg), /SIGKILL/);
    cli.child.kill('SIGTERM');
    for (const s of held) s.destroy();
    assert.equal(await cli.exited, 0);
  });
}
