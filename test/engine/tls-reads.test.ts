// The TLS socket's reads on Node (src/engine/tls-socket.ts, takeReads): once the handshake is
// done the engine reads from the TLSWrap handle itself. In-process, on real loopback sockets:
// bytes that come with the handshake's last flight wait, in order, until the core resumes; a
// pause in the middle of a stream loses and reorders nothing; the peer's FIN comes after every
// byte. (Both engines run this module through the proxy in tls-socket.test.ts.)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import tls from 'node:tls';
import type { EngineSocket, SocketEvents } from '../../src/engine/engine.ts';
import { connectTls, listenTls, type TlsEngineSocket } from '../../src/engine/tls-socket.ts';
import type { TlsServerMaterial } from '../../src/tls.ts';
import { makeCa, makeCert, type Pem } from '../support/certs.ts';
import { sleep, waitFor } from '../support/clients.ts';

const READ_SIZE = 16 * 1024;

interface Received {
  chunks: Buffer[];
  ended: boolean;
  /** Bytes received when onEnd came. */
  endedAt: number;
  socket: EngineSocket | null;
}

function bytes(r: Received): number {
  return r.chunks.reduce((n, c) => n + c.length, 0);
}

/**
 * A TLS listener whose core side records what arrives. `onChunk` may pause the socket; the
 * socket is resumed `resumeAfterMs` after accept (never resumed inside accept).
 */
async function listen(
  t: import('node:test').TestContext,
  pem: Pem,
  resumeAfterMs: number,
  onChunk?: (socket: EngineSocket, r: Received) => void,
): Promise<{ port: number; received: Received }> {
  const received: Received = { chunks: [], ended: false, endedAt: -1, socket: null };
  const material: TlsServerMaterial = {
    certificates: [
      {
        cert: pem.cert,
        key: pem.key,
        names: ['localhost'],
        notAfter: 0,
        serial: '1',
        file: 'test',
      },
    ],
    alpn: [],
    minVersion: 'TLSv1.2',
    clientCa: null,
    handshakeTimeoutMs: 5000,
  };
  const listener = await listenTls(
    { host: '127.0.0.1', port: 0, backlog: 16 },
    {
      admit: () => true,
      accept(socket) {
        received.socket = socket;
        setTimeout(() => socket.resume(), resumeAfterMs);
        const events: SocketEvents = {
          onOpen() {},
          onData(data, n) {
            // The engine's bytes are valid only during the call: copied, as the core does.
            received.chunks.push(Buffer.from(data.subarray(0, n)));
            onChunk?.(socket, received);
          },
          onDrain() {},
          onEnd() {
            received.ended = true;
            received.endedAt = bytes(received);
          },
          onError() {},
          onClose() {},
        };
        return events;
      },
      acceptError() {},
      handshakeFailed() {},
    },
    material,
    READ_SIZE,
    (err) => err,
  );
  t.after(async () => {
    received.socket?.destroy();
    await listener.close();
  });
  return { port: listener.port, received };
}

async function client(port: number, ca: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  return socket;
}

function digest(chunks: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

test('node: the TLSWrap handle reads for the engine; bytes sent with the handshake wait, in order, for resume', async (t) => {
  const ca = await makeCa();
  const pem = await makeCert(ca, ['localhost']);
  const { port, received } = await listen(t, pem, 300);
  const payload = randomBytes(200 * 1024);
  const c = await client(port, ca.cert);
  t.after(() => c.destroy());
  c.end(payload); // right behind the client's Finished: decrypted before the core resumes
  await sleep(150);
  assert.equal(bytes(received), 0, 'nothing is delivered before resume');
  await waitFor(() => received.ended, 5000, 'the FIN after the bytes');
  assert.equal(received.endedAt, payload.length, 'onEnd comes after the last byte');
  assert.equal(digest(received.chunks), digest([payload]), 'bytes intact and in order');
  assert.ok(
    received.chunks.every((ch) => ch.length <= READ_SIZE),
    'no chunk longer than readSize',
  );
  assert.notEqual(
    (received.socket as TlsEngineSocket).handle,
    null,
    'the engine reads from the TLSWrap handle, not the stream',
  );
});

test('node: a pause inside the first chunk: the rest of that read and the FIN wait for resume', async (t) => {
  const ca = await makeCa();
  const pem = await makeCert(ca, ['localhost']);
  // Not resumed for 300 ms, so the records and the close_notify all wait in the kernel and
  // TLSWrap decrypts them in one pass: the core's pause in the first chunk leaves the others,
  // and the end, to come after its resume.
  let endedWhilePaused = false;
  const { port, received } = await listen(t, pem, 300, (socket, r) => {
    if (r.chunks.length !== 1) return;
    socket.pause();
    setTimeout(() => {
      endedWhilePaused = r.ended;
      socket.resume();
    }, 50);
  });
  const payload = randomBytes(40 * 1024);
  const c = await client(port, ca.cert);
  t.after(() => c.destroy());
  c.end(payload);
  await waitFor(() => received.ended, 5000, 'the FIN after the bytes');
  assert.equal(endedWhilePaused, false, 'no end while the core had paused');
  assert.equal(received.endedAt, payload.length, 'onEnd comes after the last byte');
  assert.equal(digest(received.chunks), digest([payload]), 'bytes intact and in order');
});

test('node: pauses in the middle of a TLS stream lose and reorder nothing', async (t) => {
  const ca = await makeCa();
  const pem = await makeCert(ca, ['localhost']);
  // Every third chunk pauses the socket for a moment, as a full peer would.
  const { port, received } = await listen(t, pem, 0, (socket, r) => {
    if (r.chunks.length % 3 !== 0) return;
    socket.pause();
    setTimeout(() => socket.resume(), 5);
  });
  const payload = randomBytes(4 * 1024 * 1024);
  const c = await client(port, ca.cert);
  t.after(() => c.destroy());
  for (let off = 0; off < payload.length; ) {
    const n = 1 + Math.floor(Math.random() * 100_000);
    if (!c.write(payload.subarray(off, off + n))) await once(c, 'drain');
    off += n;
  }
  c.end();
  await waitFor(() => received.ended, 15_000, 'the FIN after the bytes');
  assert.equal(received.endedAt, payload.length, 'onEnd comes after the last byte');
  assert.equal(digest(received.chunks), digest([payload]), 'bytes intact and in order');
});

test('node: writes to a TLS socket keep their order across the handshake, a write in flight and a FIN', async (t) => {
  const ca = await makeCa();
  const pem = await makeCert(ca, ['localhost']);
  const got: Buffer[] = [];
  let serverEndedAt = -1;
  const server = tls.createServer({ cert: pem.cert, key: pem.key, allowHalfOpen: true }, (s) => {
    let stopped = false;
    s.on('data', (c: Buffer) => {
      got.push(c);
      if (stopped || got.length < 2) return;
      stopped = true;
      s.pause();
      setTimeout(() => s.resume(), 300);
    });
    s.on('end', () => {
      serverEndedAt = got.reduce((n, c) => n + c.length, 0);
      s.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as import('node:net').AddressInfo;
  let opened = false;
  let drains = 0;
  const events: SocketEvents = {
    onOpen() {
      opened = true;
    },
    onData() {},
    onDrain() {
      drains++;
    },
    onEnd() {},
    onError() {},
    onClose() {},
  };
  const material = { ca: ca.cert, servername: 'localhost', verify: true, cert: null, key: null };
  const socket = connectTls('127.0.0.1', port, events, material, READ_SIZE) as TlsEngineSocket;
  t.after(() => socket.destroy());
  // The last part is large: still in flight (the server stops reading for a moment) when the
  // FIN is asked for.
  const payload = randomBytes(3 * READ_SIZE + 32 * 1024 * 1024);
  // Parts 0-2 are a read each; part 3 is the rest.
  const part = (i: number) =>
    payload.subarray(i * READ_SIZE, i < 3 ? (i + 1) * READ_SIZE : undefined);
  // 1. While connecting: held by the stream until the handshake is done.
  assert.equal(socket.writeHeld(Buffer.from(part(0)), part(0).length), false);
  await waitFor(() => opened && drains === 1, 5000, 'the connect and the first drain');
  assert.notEqual(socket.handle, null, 'reads and writes go to the TLSWrap handle now');
  // 2. Tried: taken whole; 3. a held write while it is in flight waits for it; 4. tried again,
  // then FIN while that write is in flight.
  assert.equal(socket.tryWrite(Buffer.from(part(1)), part(1).length), part(1).length);
  assert.equal(socket.tryWrite(Buffer.from(part(2)), part(2).length), 0, 'one write at a time');
  assert.equal(socket.writeHeld(Buffer.from(part(2)), part(2).length), false);
  await waitFor(() => drains === 2, 5000, 'the drain of the held write');
  assert.equal(socket.tryWrite(Buffer.from(part(3)), part(3).length), part(3).length);
  socket.shutdown(); // while part 3 is in flight: the FIN goes after it
  assert.notEqual(socket.handleWrite, null, 'the last write is still in flight');
  await waitFor(() => serverEndedAt >= 0, 10_000, 'the FIN at the server');
  assert.equal(serverEndedAt, payload.length, 'the FIN came after every byte');
  assert.equal(digest(got), digest([payload]), 'bytes intact and in order');
});
