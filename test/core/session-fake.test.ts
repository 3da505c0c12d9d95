// The Session's data path on a fake engine (test/support/fake-engine.ts), driven one event at a
// time: the orderings that real sockets produce only by chance (a read after pause, late events
// of an abandoned connect, a close while a write is held, FIN behind held bytes, a reset).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { singleServerBackend } from '../../src/config/single-server.ts';
import { Backend } from '../../src/core/backend.ts';
import { ProxyServer } from '../../src/core/proxy.ts';
import { createLogger } from '../../src/log.ts';
import { FakeEngine, type FakeSocket } from '../support/fake-engine.ts';

interface Pair {
  engine: FakeEngine;
  proxy: ProxyServer;
  client: FakeSocket;
  server: FakeSocket;
}

/** A proxy on the fake engine with one client accepted and (unless `open` is false) connected. */
async function pair(t: import('node:test').TestContext, open = true): Promise<Pair> {
  const engine = new FakeEngine();
  const log = createLogger((process.env.LOG ?? 'silent') as 'silent');
  // No timeouts: nothing happens unless the test plays it.
  const backend = new Backend(singleServerBackend({ host: '127.0.0.1', port: 9 }, 0), engine, log);
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    backend,
    engine,
    log,
    bufferSize: 1024,
    idleTimeoutMs: 0,
    halfClosedTimeoutMs: 0,
    strictStates: true,
  });
  await proxy.start();
  t.after(() => proxy.close(true));
  const client = engine.accept() as FakeSocket;
  const server = engine.connects[0] as FakeSocket;
  assert.ok(client && server, 'accept starts the backend connect');
  if (open) server.open();
  return { engine, proxy, client, server };
}

function state(proxy: ProxyServer): string | undefined {
  return proxy.connections()[0]?.state;
}

test('the pair forwards both ways through tryWrite when the peer takes everything', async (t) => {
  const { proxy, client, server } = await pair(t);
  assert.deepEqual(client.ops, ['resume'], 'the client is read from accept on');
  client.data('ping');
  server.data('pong');
  assert.equal(server.text(), 'ping');
  assert.equal(client.text(), 'pong');
  assert.equal(state(proxy), 'READING');
  assert.equal(proxy.stats().pool.inUse, 0, 'no pool buffer while nothing is held');
});

test('a read delivered after pause closes the pair as internal, and the buffer comes back', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  server.takes = 0;
  server.holdWrites = true;
  client.data('first');
  assert.deepEqual(server.ops, ['try 0', 'held 5']);
  assert.equal(client.ops.at(-1), 'pause', 'backpressure: the client is paused');
  assert.equal(proxy.stats().pool.inUse, 1);
  assert.equal(state(proxy), 'WRITING');

  client.data('second'); // a faulty engine: a read after pause would reorder bytes
  assert.equal(state(proxy), 'CLOSING');
  assert.ok(client.ops.includes('destroy') && server.ops.includes('destroy'));
  assert.equal(server.ops.filter((op) => op.startsWith('held')).length, 1, 'second never sent');
  engine.settle();
  const stats = proxy.stats();
  assert.deepEqual(stats.closed, { internal: 1 });
  assert.equal(stats.pool.inUse, 0, 'the held buffer went back when its socket closed');
  assert.equal(stats.active, 0);
});

test('events of an abandoned connect attempt are ignored; the retry carries the pair', async (t) => {
  const { engine, proxy, client } = await pair(t, false);
  const first = engine.connects[0] as FakeSocket;
  first.fail('ECONNREFUSED');
  assert.equal(engine.connects.length, 2, 'a refused connect is retried');
  assert.ok(first.ops.includes('destroy'), 'the failed attempt is given up');
  const second = engine.connects[1] as FakeSocket;

  // Late events of the first attempt: its close, then an open and a reset that should not be.
  engine.settle();
  first.events.onOpen();
  first.events.onError('ECONNRESET', 'late');
  first.events.onClose();
  assert.equal(state(proxy), 'CONNECTING', 'still waiting for the second attempt');
  assert.deepEqual(client.ops, ['resume'], 'the client is read (to see it leave), not closed');
  assert.deepEqual(proxy.stats().closed, {});

  second.open();
  assert.equal(state(proxy), 'READING');
  assert.deepEqual(client.ops, ['resume'], 'still reading; nothing was paused');
  client.data('hi');
  assert.equal(second.text(), 'hi');
  assert.equal(first.text(), '', 'nothing went to the abandoned socket');
});

test('close while a write is held: the pool buffer comes back (pool inUse 0)', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  client.takes = 0;
  client.holdWrites = true;
  server.data('reply');
  assert.equal(proxy.stats().pool.inUse, 1);
  assert.ok(client.held !== null, 'the client socket holds the pool buffer');

  const id = proxy.connections()[0]?.id as number;
  assert.ok(proxy.closeConnection(id));
  assert.equal(proxy.stats().pool.inUse, 1, 'kept until the socket reports closed');
  engine.settle();
  const stats = proxy.stats();
  assert.equal(stats.pool.inUse, 0);
  assert.deepEqual(stats.closed, { killed: 1 });
});

test('FIN while bytes are held is passed on only after the held write drains', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  server.takes = 0;
  server.holdWrites = true;
  client.data('last words');
  client.end();
  assert.ok(!server.ops.includes('fin'), 'no FIN ahead of the held bytes');
  assert.equal(state(proxy), 'WRITING');

  server.drain();
  assert.deepEqual(server.ops.slice(-2), ['drained', 'fin'], 'FIN right after the bytes');
  assert.equal(server.text(), 'last words');
  assert.equal(state(proxy), 'HALF_CLOSED');
  assert.equal(proxy.stats().pool.inUse, 0);
  assert.equal(client.ops.at(-1), 'pause', 'a client that finished is not read again');

  // The server answers and finishes too: a clean ending, the client having finished first.
  server.data('ok');
  assert.equal(client.text(), 'ok');
  server.end();
  assert.ok(client.ops.includes('fin'));
  engine.settle();
  assert.deepEqual(proxy.stats().closed, { done: 1 });
});

test('a client ECONNRESET resets the server side (RST), not just a close', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  client.data('x');
  client.fail('ECONNRESET');
  assert.deepEqual(
    server.ops.slice(-2),
    ['reset', 'destroy'],
    'RST first; destroy is a no-op after',
  );
  engine.settle();
  assert.deepEqual(proxy.stats().closed, { client_reset: 1 });
});

test('a server ECONNRESET resets the client side', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  server.fail('ECONNRESET');
  assert.deepEqual(client.ops.slice(-2), ['reset', 'destroy'], `client ops: ${client.ops}`);
  engine.settle();
  assert.deepEqual(proxy.stats().closed, { server_reset: 1 });
});

test('a server that fails abnormally (ETIMEDOUT) resets the client: truncated data never ends in FIN', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  server.data('part of a reply');
  server.fail('ETIMEDOUT');
  assert.equal(client.text(), 'part of a reply');
  assert.ok(!client.ops.includes('fin'), 'no FIN after the truncated reply');
  assert.deepEqual(client.ops.slice(-2), ['reset', 'destroy'], `client ops: ${client.ops}`);
  engine.settle();
  assert.deepEqual(proxy.stats().closed, { server_error: 1 });
});

test('an exception inside one pair’s event ends that pair as internal; the next pair flows', async (t) => {
  const { engine, proxy, client, server } = await pair(t);
  // An engine fault: the server socket throws from tryWrite.
  server.tryWrite = () => {
    throw new Error('engine bug');
  };
  assert.doesNotThrow(() => client.data('boom'), 'the throw stays inside the pair');
  assert.deepEqual(client.ops.slice(-2), ['reset', 'destroy']);
  engine.settle();
  assert.deepEqual(proxy.stats().closed, { internal: 1 });
  const other = engine.accept() as FakeSocket;
  const otherServer = engine.connects.at(-1) as FakeSocket;
  otherServer.open();
  other.data('ping');
  assert.equal(otherServer.text(), 'ping');
  assert.equal(proxy.stats().active, 1);
});

test('a client that sends and half-closes before its server is up: bytes, then FIN, reach the server', async (t) => {
  const { engine, proxy, client, server } = await pair(t, false);
  client.data('request');
  assert.equal(client.ops.at(-1), 'pause', 'one chunk is kept while waiting; reading stops');
  assert.equal(proxy.stats().pool.inUse, 1);
  client.events.onEnd();
  assert.equal(state(proxy), 'CONNECTING', 'a half-close after a request is not leaving');
  server.open();
  assert.equal(server.text(), 'request');
  assert.ok(server.ops.includes('fin'), 'the FIN follows the bytes');
  assert.equal(proxy.stats().pool.inUse, 0);
  assert.equal(state(proxy), 'HALF_CLOSED');
  engine.settle();
});

test('a client that half-closes having sent nothing while connecting: the FIN reaches the server', async (t) => {
  const { proxy, client, server } = await pair(t, false);
  client.events.onEnd();
  assert.equal(state(proxy), 'CONNECTING', 'not abandoned: a server may speak first');
  server.open();
  assert.deepEqual(server.ops, ['fin']);
  assert.equal(state(proxy), 'HALF_CLOSED');
  server.data('banner');
  assert.equal(client.text(), 'banner');
});

test('a whole read longer than a pool buffer (wholeReads) is passed on in one write; its rest is held as it is, never copied', async (t) => {
  const waiting = await pair(t, false);
  assert.equal(waiting.client.wholeReadsAsked, false, 'not while the server connects');
  const { engine, proxy, client, server } = await pair(t);
  assert.ok(client.wholeReadsAsked && server.wholeReadsAsked, 'asked of both once connected');
  // 5,000 bytes against 1,024-byte pool buffers; the server takes 1,000 now, the rest later.
  const chunk = Buffer.alloc(5000);
  for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
  server.takes = 1000;
  server.holdWrites = true;
  client.data(chunk);
  assert.deepEqual(server.ops, ['try 1000', 'held 4000']);
  assert.equal(server.held?.buffer, chunk.buffer, 'the held rest is the read itself');
  assert.equal(proxy.stats().pool.inUse, 0, 'no pool buffer taken');
  assert.equal(client.paused, true, 'the client waits for the held write');
  server.drain();
  assert.ok(Buffer.concat(server.sent).equals(chunk), 'every byte, in order');
  assert.equal(client.paused, false, 'resumed after the drain');
  assert.equal(state(proxy), 'READING', 'the drain gave nothing back to the pool');

  // Closed while such a rest is held: dropped, not released to the pool.
  client.data(chunk);
  assert.ok(server.held !== null);
  const id = proxy.connections()[0]?.id as number;
  assert.ok(proxy.closeConnection(id));
  engine.settle();
  const stats = proxy.stats();
  assert.equal(stats.pool.inUse, 0);
  assert.deepEqual(stats.closed, { killed: 1 });
});
