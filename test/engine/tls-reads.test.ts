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
import { listenTls, type TlsEngineSocket } from '../../src/engine/tls-socket.ts';
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
