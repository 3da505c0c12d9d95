// The preamble with a ClientHello stage (after a PROXY header) on the fake engine, one read at a
// time: which bytes reach the server (the ClientHello unchanged, never the header), the backend
// the SNI picks, what the route hook sees, the pause/resume around the first write, and that the
// pool buffer comes back on every path (done, backpressure, oversized, timeout).
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { singleServerBackend } from '../../src/config/single-server.ts';
import { Backend, type RouteInfo } from '../../src/core/backend.ts';
import { ProxyServer } from '../../src/core/proxy.ts';
import { createLogger } from '../../src/log.ts';
import { captureHello } from '../support/client-hello.ts';
import { FakeEngine, type FakeSocket } from '../support/fake-engine.ts';

const HEADER = Buffer.from('PROXY TCP4 198.51.100.7 203.0.113.1 50000 443\r\n');

async function sniProxy(
  t: TestContext,
  options: { bufferSize?: number; proxyProtocol?: boolean; timeoutMs?: number } = {},
) {
  const engine = new FakeEngine();
  const log = createLogger((process.env.LOG ?? 'silent') as 'silent');
  const backend = (name: string) =>
    new Backend({ ...singleServerBackend({ host: '127.0.0.1', port: 9 }, 0), name }, engine, log);
  const routed: RouteInfo[] = [];
  const pools = new Map([['pool_a', backend('pool_a')]]);
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    backend: backend('default_pool'),
    engine,
    log,
    bufferSize: options.bufferSize ?? 16 * 1024,
    idleTimeoutMs: 0,
    halfClosedTimeoutMs: 0,
    strictStates: true,
    route: (info) => {
      routed.push(info);
      return undefined;
    },
    ...(options.proxyProtocol ? { proxyProtocol: { accept: 'any' as const, timeout: 3_000 } } : {}),
    sni: {
      rules: [{ match: 'a.example.com', backend: 'pool_a' }],
      backends: pools,
      timeoutMs: options.timeoutMs ?? 5_000,
    },
  });
  await proxy.start();
  t.after(() => proxy.close(true));
  return { engine, proxy, routed };
}

function send(client: FakeSocket, bytes: Buffer): void {
  client.events.onData(bytes, bytes.length);
}

test('PROXY header with half a ClientHello in one read, the rest byte by byte: the ClientHello alone reaches pool_a', async (t) => {
  const { engine, proxy, routed } = await sniProxy(t, { proxyProtocol: true });
  const hello = await captureHello('a.example.com');
  const client = engine.accept() as FakeSocket;
  const half = hello.length >> 1;
  send(client, Buffer.concat([HEADER, hello.subarray(0, half)]));
  assert.equal(engine.connects.length, 0, 'no server before the whole ClientHello');
  assert.equal(proxy.stats().pool.inUse, 1, 'one pool buffer while reading');
  for (let i = half; i < hello.length; i++) {
    assert.equal(engine.connects.length, 0, `byte ${i}`);
    send(client, hello.subarray(i, i + 1));
  }
  assert.equal(engine.connects.length, 1);
  assert.equal(routed[0]?.backend, 'pool_a');
  assert.equal(routed[0]?.sni, 'a.example.com');
  assert.equal(routed[0]?.tls, null);
  assert.equal(routed[0]?.clientAddress, '198.51.100.7');
  assert.equal(client.ops.at(-1), 'pause', 'paused until the ClientHello is written');
  const server = engine.connects[0] as FakeSocket;
  server.open();
  assert.ok(
    Buffer.concat(server.sent).equals(hello),
    'the ClientHello, unchanged, without the header',
  );
  assert.equal(client.ops.at(-1), 'resume');
  assert.equal(proxy.stats().pool.inUse, 0);
  assert.equal(proxy.connections()[0]?.sni, 'a.example.com');
});

test('no SNI, and an unmatched one: the frontend backend; a held first write keeps the client paused', async (t) => {
  const { engine, proxy, routed } = await sniProxy(t);
  for (const name of [undefined, 'c.example.com']) {
    const hello = await captureHello(name);
    const client = engine.accept() as FakeSocket;
    send(client, hello);
    const server = engine.connects.at(-1) as FakeSocket;
    assert.equal(routed.at(-1)?.backend, 'default_pool');
    assert.equal(routed.at(-1)?.sni, name ?? null);
    server.holdWrites = true;
    server.open();
    assert.equal(client.ops.at(-1), 'pause', 'backpressure: still paused behind the held write');
    assert.equal(proxy.stats().pool.inUse, 1, 'the preamble buffer is the held one');
    server.drain();
    assert.equal(client.ops.at(-1), 'resume');
    assert.equal(proxy.stats().pool.inUse, 0);
    assert.ok(Buffer.concat(server.sent).equals(hello));
  }
});

test('a ClientHello larger than the buffer, garbage, and a timeout: rejected, buffer back, no server', async (t) => {
  const { engine, proxy } = await sniProxy(t, { bufferSize: 1024, timeoutMs: 1_000 });
  const big = await captureHello('a.example.com', [
    'x'.repeat(200),
    'y'.repeat(200),
    'z'.repeat(200),
    'w'.repeat(200),
    'v'.repeat(200),
  ]);
  assert.ok(big.length > 1024);
  const a = engine.accept() as FakeSocket;
  // The engine's reads are at most a buffer: two reads, the buffer fills, refused.
  send(a, big.subarray(0, 1024));
  send(a, big.subarray(1024));
  assert.ok(a.ops.includes('destroy'));
  const b = engine.accept() as FakeSocket;
  send(b, Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'));
  assert.ok(b.ops.includes('destroy'));
  const c = engine.accept() as FakeSocket;
  send(c, big.subarray(0, 100));
  assert.equal(proxy.stats().pool.inUse, 1);
  proxy.wheel.tick(proxy.wheel.now + 2_000);
  assert.ok(c.ops.includes('destroy'));
  engine.settle();
  const stats = proxy.stats();
  assert.deepEqual(stats.rejected, { client_hello: 2, client_hello_timeout: 1 });
  assert.equal(stats.pool.inUse, 0);
  assert.equal(engine.connects.length, 0);
});

test('a ClientHello whose last read brings more than the buffer holds: refused as client_hello', async (t) => {
  const { engine, proxy } = await sniProxy(t, { bufferSize: 2048 });
  const hello = await captureHello('a.example.com');
  assert.ok(hello.length < 2048, `a ${hello.length}-byte ClientHello`);
  const client = engine.accept() as FakeSocket;
  send(client, hello.subarray(0, 10));
  // The rest and (0-RTT-like) data after it, together more than the buffer's room.
  send(client, Buffer.concat([hello.subarray(10), Buffer.alloc(2048 - hello.length + 1)]));
  assert.ok(client.ops.includes('destroy'));
  engine.settle();
  assert.deepEqual(proxy.stats().rejected, { client_hello: 1 });
  assert.equal(proxy.stats().pool.inUse, 0);
  assert.equal(engine.connects.length, 0);
});
