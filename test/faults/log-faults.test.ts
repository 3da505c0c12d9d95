// A failing log (full disk, closed pipe) must never stall the data path or the shutdown: the CLI
// runs with its access log or its own process log on /dev/full or on a pipe whose reader left,
// and many sequential and concurrent connections still echo intact, then SIGTERM exits 0.
import assert from 'node:assert/strict';
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { inParallel, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;
const DRAIN = '2s';
/** How long one round trip may take before the test calls it hung (generous: a shared machine). */
const ROUND_TRIP_MS = 10_000;
/** How long SIGTERM may take (the drain timeout, plus a start of the runtime's exit). */
const EXIT_MS = 20_000;

/** Runs the CLI on `engine` with `stdio`; killed in t.after. Resolves once its port accepts. */
async function startCli(
  t: TestContext,
  engine: 'node' | 'bun',
  backendPort: number,
  args: string[],
  stdio: StdioOptions,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await closedPort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--engine',
      engine,
      '--listen',
      `127.0.0.1:${port}`,
      '--backend',
      `127.0.0.1:${backendPort}`,
      '--drain-timeout',
      DRAIN,
      ...args,
    ],
    { stdio, cwd: ROOT },
  );
  t.after(() => {
    child.kill('SIGKILL');
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code} before listening`))),
  );
  exited.catch(() => {});
  await Promise.race([waitFor(() => accepts(port), 15_000, `the proxy on port ${port}`), exited]);
  return { child, port };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Sends `payload`, half-closes, and resolves with what came back; rejects when it hangs. */
function roundTrip(port: number, payload: Buffer, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what} hung for ${ROUND_TRIP_MS} ms`));
    }, ROUND_TRIP_MS);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${err.message}`));
    });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.once('connect', () => socket.end(payload));
  });
}

/**
 * `sequential` round trips one after the other and 100 concurrent (25 at a time), each echoed
 * intact, with a client reset every tenth sequential one (a debug line in the process log).
 */
async function traffic(port: number, sequential = 200): Promise<void> {
  for (let i = 0; i < sequential; i++) {
    const payload = randomBytes(1024 + i);
    const back = await roundTrip(port, payload, `sequential connection ${i}`);
    assert.ok(back.equals(payload), `sequential connection ${i} echoed intact`);
    if (i % 10 === 0) await resetAfterWrite(port);
  }
  await inParallel(100, 25, async (i) => {
    const payload = randomBytes(64 * 1024);
    const back = await roundTrip(port, payload, `concurrent connection ${i}`);
    assert.ok(back.equals(payload), `concurrent connection ${i} echoed intact`);
  });
}

/** A client that writes and then resets: a line in the debug log, none of the echo. */
async function resetAfterWrite(port: number): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('x'.repeat(100));
  await new Promise((resolve) => setTimeout(resolve, 5));
  socket.resetAndDestroy();
}

/** SIGTERM, then the exit code; SIGKILL and a failure when it does not exit in time. */
async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), EXIT_MS);
  });
  const first = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (first === 'late') {
    child.kill('SIGKILL');
    assert.fail(`still running ${EXIT_MS} ms after SIGTERM (drain timeout ${DRAIN})`);
  }
  return first;
}

function devFull(t: TestContext): number {
  const fd = openSync('/dev/full', 'w');
  t.after(() => closeSync(fd));
  return fd;
}

for (const engine of ENGINES) {
  describe(`a failing log never stalls the proxy (${engine} engine)`, () => {
    test('access log on /dev/full: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--access-log', '/dev/full'],
        ['ignore', 'ignore', 'inherit'],
      );
      await traffic(port);
      assert.equal(await stop(child), 0);
    });

    test('access log on stdout, a pipe whose reader left: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--access-log', 'stdout'],
        ['ignore', 'pipe', 'inherit'],
      );
      child.stdout?.destroy();
      await traffic(port);
      assert.equal(await stop(child), 0);
    });

    test('access log on stdout, a pipe nobody reads: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--access-log', 'stdout'],
        ['ignore', 'pipe', 'inherit'],
      );
      // Never read: once the pipe's buffers are full (the kernel's socket buffer and the
      // parent's stream, some 300 KiB), every write of the child would wait. 2,000 lines fill it.
      child.stdout?.pause();
      await traffic(port, 2000);
      assert.equal(await stop(child), 0);
    });

    test('process log (stderr) on /dev/full: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--log-level', 'debug'],
        ['ignore', 'ignore', devFull(t)],
      );
      await traffic(port);
      assert.equal(await stop(child), 0);
    });

    test('process log (stderr), a pipe whose reader left: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--log-level', 'debug'],
        ['ignore', 'ignore', 'pipe'],
      );
      child.stderr?.destroy();
      await traffic(port);
      assert.equal(await stop(child), 0);
    });

    test('process log (stderr), a pipe nobody reads: traffic flows, SIGTERM exits 0', async (t) => {
      const echo = await startEchoServer(t);
      const { child, port } = await startCli(
        t,
        engine,
        echo.port,
        ['--log-level', 'trace'],
        ['ignore', 'ignore', 'pipe'],
      );
      child.stderr?.pause();
      await traffic(port, 2000);
      assert.equal(await stop(child), 0);
    });
  });
}
