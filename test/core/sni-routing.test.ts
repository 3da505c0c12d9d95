// SNI routing without decrypting, on real sockets and both engines: node:tls servers with their
// own certificates (from a CA the test makes), reached through the proxy by the ClientHello's
// server name, each client verifying the server's own certificate end to end. A ClientHello in
// 1-byte writes, a 14 KiB one in one record and in four, one too large; garbage and a slow
// ClientHello closed with the servers never contacted; a PROXY header first; the access log;
// a reload of the rules; 200 clients at once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { makeCa, makeCert, type Pem, tempDir } from '../support/certs.ts';
import { captureHello, longAlpn } from '../support/client-hello.ts';
import { closedWithin, connect, inParallel, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';

/** A TLS server that greets each client with its name, then echoes. */
interface TlsServer {
  name: string;
  port: number;
  /** TCP connections it accepted (a rejected client must never reach one). */
  connections: number;
  /** Handshakes completed, with the SNI each asked for. */
  served: (string | false)[];
}

async function startTlsServer(t: TestContext, name: string, pem: Pem): Promise<TlsServer> {
  const s: TlsServer = { name, port: 0, connections: 0, served: [] };
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: pem.cert, key: pem.key }, (socket) => {
    s.served.push(socket.servername ?? false);
    socket.on('error', () => {});
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });
  server.on('connection', (socket: net.Socket) => {
    s.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  s.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return s;
}

interface Setup {
  ca: Pem;
  a: TlsServer;
  b: TlsServer;
  d: TlsServer;
  config: (frontend?: Record<string, unknown>) => Record<string, unknown>;
}

/** Three TLS servers: a.example.com, the wildcard *.b.example.com, and the default. */
async function setup(t: TestContext): Promise<Setup> {
  const ca = await makeCa();
  const a = await startTlsServer(t, 'A', await makeCert(ca, ['a.example.com']));
  const b = await startTlsServer(t, 'B', await makeCert(ca, ['*.b.example.com']));
  const d = await startTlsServer(t, 'D', await makeCert(ca, ['default.example.com']));
  const config = (frontend: Record<string, unknown> = {}) => ({
    frontends: [
      {
        name: 'sni',
        listen: '127.0.0.1:0',
        backend: 'default_pool',
        maxConnections: 1000,
        sni: [
          { match: '*.b.example.com', backend: 'pool_b' },
          { match: 'a.example.com', backend: 'pool_a' },
        ],
        ...frontend,
      },
    ],
    backends: [
      { name: 'default_pool', servers: [{ name: 'd', address: `127.0.0.1:${d.port}` }] },
      { name: 'pool_a', servers: [{ name: 'a', address: `127.0.0.1:${a.port}` }] },
      { name: 'pool_b', servers: [{ name: 'b', address: `127.0.0.1:${b.port}` }] },
    ],
  });
  return { ca, a, b, d, config };
}

interface Hello {
  /** `servername` (SNI) to send; null: none. */
  servername: string | null;
  /** The name the server's certificate must be valid for. */
  verifyAs: string;
  /** A connected socket to run TLS over (PROXY header sent, byte-by-byte writes); default: a new one. */
  socket?: Duplex;
}

/**
 * A TLS client through the proxy that verifies the server's certificate against the test CA and
 * `verifyAs`, reads the server's greeting, and checks an echo. Resolves with the greeting.
 */
async function tlsExchange(port: number, ca: Pem, h: Hello): Promise<string> {
  const client = tls.connect({
    ...(h.socket ? { socket: h.socket } : { port, host: '127.0.0.1' }),
    ca: ca.cert,
    // An IP host sends no SNI unless told: `servername` only when the test wants one.
    ...(h.servername !== null ? { servername: h.servername } : {}),
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(h.verifyAs, cert),
  });
  try {
    await once(client, 'secureConnect');
    assert.ok(client.authorized, 'the server certificate verified against the test CA');
    let text = '';
    const payload = `ping ${h.servername}`;
    await new Promise<void>((resolve, reject) => {
      client.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.endsWith(payload)) resolve();
      });
      client.on('close', () => reject(new Error(`closed after ${JSON.stringify(text)}`)));
      client.write(payload);
    });
    return text.slice(0, text.indexOf('\n'));
  } finally {
    client.destroy();
  }
}

/**
 * A duplex over a TCP connection to `port`, for a TLS client: its first write is preceded by
 * `prefix` (a PROXY header in the same write); with `oneByte` every byte is a write of its own
 * (Nagle off, 1 ms apart), so the ClientHello reaches the proxy in many segments; with
 * `recordBytes` the first write (the ClientHello's record) is re-framed as records of at most
 * that many bytes, each written 5 ms apart (TLS allows a handshake message over several records).
 */
async function rawDuplex(
  port: number,
  options: { prefix?: Buffer; oneByte?: boolean; recordBytes?: number } = {},
): Promise<{ duplex: Duplex; writes: () => number; records: () => number }> {
  const raw = await connect(port);
  raw.setNoDelay(true);
  raw.on('error', () => {});
  let prefix = options.prefix ?? null;
  let writes = 0;
  let records = 0;
  const duplex = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      const data = prefix ? Buffer.concat([prefix, chunk]) : chunk;
      prefix = null;
      if (options.recordBytes !== undefined && writes === 0) {
        const pieces = reframe(data, options.recordBytes);
        records = pieces.length / 2;
        (async () => {
          for (const piece of pieces) {
            writes++;
            raw.write(piece);
            await sleep(5);
          }
        })().then(() => callback(), callback);
        return;
      }
      if (!options.oneByte) {
        writes++;
        raw.write(data, callback);
        return;
      }
      (async () => {
        for (const byte of data) {
          writes++;
          raw.write(Buffer.from([byte]));
          await sleep(1);
        }
      })().then(() => callback(), callback);
    },
    final(callback) {
      raw.end(callback);
    },
    destroy(err, callback) {
      raw.destroy();
      callback(err);
    },
  });
  raw.on('data', (c: Buffer) => {
    if (!duplex.push(c)) raw.pause();
  });
  raw.on('end', () => duplex.push(null));
  raw.on('close', () => duplex.destroy());
  return { duplex, writes: () => writes, records: () => records };
}

/** One TLS record (`data` starts with it, and holds all of it) as records of at most `size` bytes. */
function reframe(data: Buffer, size: number): Buffer[] {
  assert.equal(data[0], 22, 'a handshake record');
  const length = data.readUInt16BE(3);
  assert.equal(data.length, 5 + length, 'one whole record in the write');
  const out: Buffer[] = [];
  for (let at = 5; at < data.length; at += size) {
    const piece = data.subarray(at, Math.min(at + size, data.length));
    const header = Buffer.from([22, data[1] as number, data[2] as number, 0, 0]);
    header.writeUInt16BE(piece.length, 3);
    out.push(header, piece);
  }
  return out;
}

/** Sends `bytes` on a plain socket; resolves with how long the proxy took to close it (ms). */
async function sendAndTimeClose(port: number, bytes: Buffer): Promise<number> {
  const socket = await connect(port);
  socket.on('error', () => {});
  const started = Date.now();
  socket.write(bytes);
  let received = 0;
  socket.on('data', (c: Buffer) => {
    received += c.length;
  });
  await closedWithin(socket, 15_000);
  socket.destroy();
  assert.equal(received, 0, 'nothing came back');
  return Date.now() - started;
}

for (const engine of ENGINES) {
  describe(`SNI routing (${engine} engine)`, () => {
    test('by SNI to two TLS servers, each verified end to end; wildcard; no SNI or no match: the default', async (t) => {
      const s = await setup(t);
      const accessLog = join(tempDir(t), 'access.log');
      const p = await startBalancer(t, { ...s.config(), accessLog }, engine);
      const cases: [Hello, string][] = [
        [{ servername: 'a.example.com', verifyAs: 'a.example.com' }, 'A'],
        [{ servername: 'x.b.example.com', verifyAs: 'x.b.example.com' }, 'B'],
        [{ servername: 'A.Example.COM', verifyAs: 'a.example.com' }, 'A'],
        [{ servername: null, verifyAs: 'default.example.com' }, 'D'],
        [{ servername: 'c.example.com', verifyAs: 'default.example.com' }, 'D'],
        [{ servername: 'y.x.b.example.com', verifyAs: 'default.example.com' }, 'D'],
      ];
      for (const [hello, expected] of cases) {
        assert.equal(await tlsExchange(p.port, s.ca, hello), expected, JSON.stringify(hello));
      }
      // The TLS was the servers' own: each saw the SNI the client sent, case and all (the
      // ClientHello is forwarded unchanged; the proxy matched it in lower case).
      assert.deepEqual(s.a.served, ['a.example.com', 'A.Example.COM']);
      assert.deepEqual(s.b.served, ['x.b.example.com']);
      assert.deepEqual(s.d.served, [false, 'c.example.com', 'y.x.b.example.com']);
      // The live table shows the SNI of an open connection (and no terminated TLS).
      const open = tls.connect({
        port: p.port,
        host: '127.0.0.1',
        servername: 'a.example.com',
        ca: s.ca.cert,
      });
      await once(open, 'secureConnect');
      const rows = await p.connections();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.sni, 'a.example.com');
      assert.equal(rows[0]?.tls, null);
      assert.equal(rows[0]?.server, 'a');
      open.destroy();
      await waitFor(async () => (await p.stats()).frontends.sni?.active === 0, 5000, 'close');
      const stats = (await p.stats()).frontends.sni;
      assert.equal(stats?.accepted, cases.length + 1);
      assert.deepEqual(stats?.rejected, {});
      assert.equal(stats?.pool.inUse, 0, 'every preamble and session buffer came back');
      // The access log names the SNI (lower case) of each, and none where none was sent.
      let lines: Record<string, unknown>[] = [];
      await waitFor(
        () => {
          lines = readFileSync(accessLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l));
          return lines.length === cases.length + 1;
        },
        5000,
        'the access log lines',
      );
      assert.deepEqual(
        lines.slice(0, cases.length).map((l) => [l.sni ?? null, l.backend]),
        [
          ['a.example.com', 'pool_a'],
          ['x.b.example.com', 'pool_b'],
          ['a.example.com', 'pool_a'],
          [null, 'default_pool'],
          ['c.example.com', 'default_pool'],
          ['y.x.b.example.com', 'default_pool'],
        ],
      );
    });

    test('a ClientHello in 1-byte writes, and one behind a PROXY header in the same write', async (t) => {
      const s = await setup(t);
      const p = await startBalancer(t, s.config({ handshakeTimeout: '30s' }), engine);
      const slow = await rawDuplex(p.port, { oneByte: true });
      const greeting = await tlsExchange(p.port, s.ca, {
        servername: 'a.example.com',
        verifyAs: 'a.example.com',
        socket: slow.duplex,
      });
      assert.equal(greeting, 'A');
      t.diagnostic(`ClientHello and the rest sent in ${slow.writes()} one-byte writes`);
      assert.ok(slow.writes() > 100);

      // PROXY header and ClientHello together: the header is dropped, the ClientHello forwarded.
      const pp = await startBalancer(
        t,
        s.config({ proxyProtocol: { accept: 'v1' }, handshakeTimeout: '30s' }),
        engine,
      );
      const header = Buffer.from('PROXY TCP4 198.51.100.7 203.0.113.1 50000 443\r\n');
      const together = await rawDuplex(pp.port, { prefix: header });
      assert.equal(
        await tlsExchange(pp.port, s.ca, {
          servername: 'x.b.example.com',
          verifyAs: 'x.b.example.com',
          socket: together.duplex,
        }),
        'B',
      );
      // The header alone first, then the ClientHello one byte at a time.
      const raw = await rawDuplex(pp.port, { prefix: header, oneByte: true });
      const open = tls.connect({
        socket: raw.duplex,
        servername: 'a.example.com',
        ca: s.ca.cert,
      });
      await once(open, 'secureConnect');
      const rows = await pp.connections();
      assert.equal(rows[0]?.client, '198.51.100.7:50000', 'the header names the client');
      assert.equal(rows[0]?.sni, 'a.example.com');
      open.destroy();
      const stats = (await pp.stats()).frontends.sni;
      assert.deepEqual(stats?.rejected, {});
      assert.equal(stats?.accepted, 2);
    });

    test('a 14 KiB ClientHello in one record, and in four records written apart, is forwarded whole; one over 16 KiB is refused', async (t) => {
      const s = await setup(t);
      const p = await startBalancer(t, s.config(), engine);
      const alpn = longAlpn(12 * 1024);
      const hello = await captureHello('a.example.com', alpn);
      t.diagnostic(`large ClientHello: ${hello.length} bytes`);
      assert.ok(hello.length > 12 * 1024 && hello.length < 16 * 1024);
      const client = tls.connect({
        port: p.port,
        host: '127.0.0.1',
        servername: 'a.example.com',
        ca: s.ca.cert,
        ALPNProtocols: alpn,
      });
      await once(client, 'secureConnect');
      assert.ok(client.authorized);
      const [greeting] = await once(client, 'data');
      assert.equal(String(greeting), 'A\n');
      client.destroy();
      assert.deepEqual(s.a.served, ['a.example.com']);
      // The same ClientHello as four records, in separate writes: the server's TLS reassembles it.
      const framed = await rawDuplex(p.port, { recordBytes: 4000 });
      const split = tls.connect({
        socket: framed.duplex,
        servername: 'a.example.com',
        ca: s.ca.cert,
        ALPNProtocols: alpn,
      });
      await once(split, 'secureConnect');
      const [again] = await once(split, 'data');
      assert.equal(String(again), 'A\n');
      split.destroy();
      t.diagnostic(`re-framed as ${framed.records()} records, header and payload written apart`);
      assert.equal(framed.records(), 4);

      const huge = await captureHello('a.example.com', longAlpn(20 * 1024));
      t.diagnostic(`oversized ClientHello: ${huge.length} bytes`);
      assert.ok(huge.length > 16 * 1024);
      await sendAndTimeClose(p.port, huge);
      const stats = (await p.stats()).frontends.sni;
      assert.equal(stats?.rejected.client_hello, 1);
      assert.equal(s.a.connections, 2, 'the oversized one never reached a server');
      await waitFor(async () => (await p.stats()).frontends.sni?.pool.inUse === 0, 5000, 'pool');
    });

    test('garbage and a slow ClientHello are closed, counted, and never reach a server', async (t) => {
      const s = await setup(t);
      const p = await startBalancer(t, s.config({ handshakeTimeout: '1s' }), engine);
      const garbage = [
        Buffer.from('GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n'),
        Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), // a header where none is taken
        Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0]), // a handshake, not a ClientHello
        Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00]), // application data first
      ];
      const timings: string[] = [];
      for (const bytes of garbage) {
        timings.push(`garbage: closed after ${await sendAndTimeClose(p.port, bytes)} ms`);
      }
      // Half a real ClientHello, then silence: closed at the 1 s handshakeTimeout.
      const hello = await captureHello('a.example.com');
      const slowMs = await sendAndTimeClose(p.port, hello.subarray(0, hello.length >> 1));
      timings.push(`half a ClientHello, then silence: closed after ${slowMs} ms`);
      // A client that leaves halfway.
      const leaving = await connect(p.port);
      leaving.write(hello.subarray(0, 10));
      leaving.end();
      await closedWithin(leaving, 5000);
      t.diagnostic(timings.join('; '));
      await waitFor(
        async () => (await p.stats()).frontends.sni?.rejected.client_hello === garbage.length + 1,
        5000,
        'the rejections to be counted',
      );
      const stats = (await p.stats()).frontends.sni;
      assert.deepEqual(stats?.rejected, {
        client_hello: garbage.length + 1,
        client_hello_timeout: 1,
      });
      assert.equal(stats?.accepted, 0);
      assert.equal(stats?.pool.inUse, 0);
      assert.equal(s.a.connections + s.b.connections + s.d.connections, 0, 'no server contacted');
    });

    test('a reload changes the rules for new clients, and turns SNI routing off and on', async (t) => {
      const s = await setup(t);
      const config = s.config();
      const p = await startBalancer(t, config, engine);
      const a = { servername: 'a.example.com', verifyAs: 'a.example.com' };
      assert.equal(await tlsExchange(p.port, s.ca, a), 'A');
      const frontend = (config.frontends as Record<string, unknown>[])[0] as Record<
        string,
        unknown
      >;
      // a.example.com now goes to the wildcard's pool: B's certificate does not cover it.
      await p.reload({
        ...config,
        frontends: [{ ...frontend, sni: [{ match: 'a.example.com', backend: 'pool_b' }] }],
      });
      const toB = await tlsExchange(p.port, s.ca, { ...a, verifyAs: 'x.b.example.com' });
      assert.equal(toB, 'B');
      const { sni: _, ...plain } = frontend;
      await p.reload({ ...config, frontends: [plain] });
      assert.equal(
        await tlsExchange(p.port, s.ca, { ...a, verifyAs: 'default.example.com' }),
        'D',
        'no sni: every client to the frontend backend',
      );
      await p.reload(config);
      assert.equal(await tlsExchange(p.port, s.ca, a), 'A');
      assert.deepEqual((await p.stats()).frontends.sni?.rejected, {});
    });

    test('200 clients at once, by SNI over three backends, each verified', async (t) => {
      const s = await setup(t);
      const p = await startBalancer(t, s.config(), engine);
      const names: [string | null, string, string][] = [
        ['a.example.com', 'a.example.com', 'A'],
        ['n.b.example.com', 'n.b.example.com', 'B'],
        [null, 'default.example.com', 'D'],
      ];
      const started = Date.now();
      const replies = await inParallel(200, 200, (i) => {
        const [servername, verifyAs] = names[i % 3] as [string | null, string, string];
        return tlsExchange(p.port, s.ca, { servername, verifyAs });
      });
      t.diagnostic(`200 concurrent TLS clients through the proxy in ${Date.now() - started} ms`);
      assert.deepEqual(
        replies,
        replies.map((_, i) => (names[i % 3] as string[])[2]),
      );
      await waitFor(async () => (await p.stats()).frontends.sni?.active === 0, 10_000, 'close');
      const stats = (await p.stats()).frontends.sni;
      assert.equal(stats?.accepted, 200);
      assert.deepEqual(stats?.rejected, {});
      assert.equal(stats?.pool.inUse, 0);
    });
  });
}
