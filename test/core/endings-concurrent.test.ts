// Many connections ending at once, in every way a client can end: no session may be left behind.
// The sequential 5,000-endings test in proxy.test.ts never has two endings overlap, so it cannot
// see races between one side's FIN and the other side's reset; this one runs 200 at a time.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { inParallel, sha256, tally, waitFor } from '../support/clients.ts';
import { closeWaitAmong, ENGINES } from '../support/proc.ts';
import { startProxy } from '../support/proxy-process.ts';
import { startEchoServer } from '../support/servers.ts';

const CONCURRENCY = 200;
const KiB = 1024;
const payload = randomBytes(50 * KiB);
const payloadHash = sha256(payload);
/** How long one client may take before it counts as stuck (its outcome says so). */
const CLIENT_DEADLINE_MS = 10_000;

type Kind = 'finThenReset' | 'reset' | 'immediate' | 'halfClose' | 'echo';
const MIXED: readonly Kind[] = ['reset', 'immediate', 'halfClose', 'echo'];

/** Collects what the socket receives until it ends or closes. */
function received(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * Resolves at `event`, or when the socket closes without it. Unlike events.once, an 'error' does
 * not reject: an error is one of the endings under test.
 */
function settled(socket: net.Socket, event: string): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once(event, () => resolve());
    socket.once('close', () => resolve());
  });
}

/** Resolves at the first chunk received, or when the socket closes without one. */
function firstData(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('data', () => resolve());
    socket.once('close', () => resolve());
  });
}

/** One client ending in `kind`'s way; resolves with what it observed, or 'stuck'. */
async function oneEnding(port: number, kind: Kind, i: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`${kind} stuck`), CLIENT_DEADLINE_MS);
  });
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  try {
    return await Promise.race([stuck, endingOf(socket, kind, i)]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

async function endingOf(socket: net.Socket, kind: Kind, i: number): Promise<string> {
  await settled(socket, 'connect');
  if (socket.closed) return `${kind} closed before connect`;
  switch (kind) {
    case 'finThenReset': {
      // 50 KB and a FIN, then RST: the proxy is still passing the FIN on to the server (its
      // shutdown in flight) when writing the echo back meets the RST. The RST waits for our own
      // shutdown to complete: Node refuses (EINVAL) to reset a socket while its shutdown is in
      // flight, and then never closes it.
      const closed = settled(socket, 'close');
      const finished = settled(socket, 'finish');
      socket.end(payload);
      await finished;
      socket.resetAndDestroy();
      await closed;
      return 'fin then reset';
    }
    case 'reset': {
      // 50 KB on its way to the server, then RST; half the time once the echo has begun.
      const closed = settled(socket, 'close');
      socket.write(payload);
      if (i % 2 === 0) await firstData(socket);
      socket.resetAndDestroy();
      await closed;
      return 'reset';
    }
    case 'immediate': {
      const closed = settled(socket, 'close');
      socket.destroy();
      await closed;
      return 'closed';
    }
    case 'halfClose': {
      // Our FIN travels to the server while its echo is still coming back.
      const all = received(socket);
      socket.end(payload);
      const data = await all;
      return sha256(data) === payloadHash ? 'half-close intact' : `half-close got ${data.length}`;
    }
    case 'echo': {
      const all = received(socket);
      let got = 0;
      const echoed = new Promise<void>((resolve) => {
        socket.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= payload.length) resolve();
        });
        socket.once('close', () => resolve());
      });
      socket.write(payload);
      await echoed;
      socket.end();
      const data = await all;
      return sha256(data) === payloadHash ? 'echo intact' : `echo got ${data.length}`;
    }
  }
}

/**
 * Runs `total` clients, CONCURRENCY at a time, the i-th ending as `kindOf(i)`; then checks the
 * proxy let go of every one of them: no session in any state, descriptors back to the baseline.
 */
async function runEndings(
  t: TestContext,
  engine: 'node' | 'bun',
  total: number,
  kindOf: (i: number) => Kind,
): Promise<Record<string, number>> {
  const backend = await startEchoServer(t);
  const proxy = await startProxy(t, { backend: { host: '127.0.0.1', port: backend.port } }, engine);
  const baseline = proxy.fdCount();
  const outcomes = await inParallel(total, CONCURRENCY, (i) => oneEnding(proxy.port, kindOf(i), i));
  const seen = tally(outcomes);
  t.diagnostic(`outcomes ${JSON.stringify(seen)}`);

  let last = await proxy.stats();
  await waitFor(
    async () => {
      last = await proxy.stats();
      return last.active === 0;
    },
    10_000,
    'every session closed',
  ).catch(() => {});
  const left = Object.entries(last.states).filter(([, n]) => n > 0);
  assert.equal(
    last.active,
    0,
    `sessions left: ${JSON.stringify(left)}, fds ${baseline} -> ${proxy.fdCount()}`,
  );
  // Exactly the baseline, no slack: every socket of every pair is closed by now, and nothing else
  // in the proxy opens descriptors per connection.
  await waitFor(() => proxy.fdCount() <= baseline, 5000, 'descriptors released').catch(() => {});
  assert.equal(proxy.fdCount(), baseline, 'descriptors back to the baseline');
  assert.equal(closeWaitAmong(proxy.socketInodes()), 0, 'no socket left in CLOSE_WAIT');

  const stats = await proxy.stats();
  t.diagnostic(`closed ${JSON.stringify(stats.closed)}`);
  for (const [state, n] of Object.entries(stats.states)) assert.equal(n, 0, `sessions in ${state}`);
  assert.equal(stats.accepted, total);
  assert.equal(stats.pool.inUse, 0, 'every pool buffer returned');
  return seen;
}

for (const engine of ENGINES) {
  describe(`concurrent endings (${engine} engine)`, () => {
    // Each of these writes 50 KB and a FIN, then resets once its FIN is out. On Node this left
    // sessions in CLOSING for good (39 of these 1,000; 213 of 2,000 in a longer run): the proxy
    // was still passing the FIN on to the server, a shutdown in flight, when the echo it wrote
    // back met the RST.
    test('1,000 clients ending FIN then RST, 200 at a time: none left behind', {
      timeout: 60_000,
    }, async (t) => {
      const seen = await runEndings(t, engine, 1000, () => 'finThenReset');
      assert.equal(seen['fin then reset'], 1000);
    });

    test('2,000 clients ending every other way, 200 at a time: none left behind, echoes intact', {
      timeout: 60_000,
    }, async (t) => {
      const seen = await runEndings(t, engine, 2000, (i) => MIXED[i % MIXED.length] as Kind);
      // The echo and half-close clients hash what came back: it must be exactly what they sent.
      assert.equal(seen['echo intact'], 500, 'every echo came back whole');
      assert.equal(seen['half-close intact'], 500, 'every half-close echo came back whole');
    });
  });
}
