// PROXY protocol in and out on real sockets, both engines: headers built by proxy-protocol-js
// accepted, the header's client sent on with sendProxy and parsed by proxy-protocol-js at the
// server, the bad-header corpus closed in time with the server never contacted and no
// descriptor left, trusted senders, health checks to sendProxy servers, 200 clients at once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import pp from 'proxy-protocol-js';
import { closedWithin, connect, inParallel, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { BAD_HEADERS, startHeaderServer } from '../support/proxy-headers.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startServer } from '../support/servers.ts';

function v2Header(src: number[], sport: number, data?: Uint8Array): Buffer {
  return Buffer.from(
    new pp.V2ProxyProtocol(
      pp.Command.PROXY,
      pp.TransportProtocol.STREAM,
      new pp.IPv4ProxyAddress(
        pp.IPv4Address.createFrom(src),
        sport,
        pp.IPv4Address.createFrom([10, 0, 0, 1]),
        443,
      ),
      data,
    ).build(),
  );
}

function ppConfig(
  serverPort: number,
  frontend: Record<string, unknown>,
  server: Record<string, unknown> = {},
) {
  return {
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app', ...frontend }],
    backends: [
      { name: 'app', servers: [{ name: 'a', address: `127.0.0.1:${serverPort}`, ...server }] },
    ],
  };
}

/** Sends `bytes` and resolves with what came back before the proxy closed (or '' on timeout). */
async function exchange(
  port: number,
  bytes: Buffer,
  ms = 3000,
  localAddress?: string,
): Promise<string> {
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    allowHalfOpen: true,
    ...(localAddress ? { localAddress } : {}),
  });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  let text = '';
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
  });
  const over = new Promise<void>((resolve) => {
    socket.on('end', resolve);
    socket.on('close', resolve);
    socket.on('error', () => resolve());
  });
  socket.write(bytes);
  await Promise.race([over, sleep(ms)]);
  // A FIN after data: let the rest arrive.
  await sleep(20);
  socket.destroy();
  return text;
}

for (const engine of ENGINES) {
  describe(`PROXY protocol (${engine} engine)`, () => {
    test('v2 in (proxy-protocol-js) -> v1 out: the server sees the header client, bytes after the header follow', async (t) => {
      const server = await startHeaderServer(t, 'v1');
      const p = await startBalancer(
        t,
        ppConfig(server.port, { proxyProtocol: { accept: 'v2' } }, { sendProxy: 'v1' }),
        engine,
      );
      // Header and first data in one write, then more data once connected.
      const socket = await connect(p.port);
      socket.write(v2Header([192, 0, 2, 33], 45678, Buffer.from('hello ')));
      const echoed = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c: Buffer) => {
          text += c.toString();
          if (text === 'hello world') resolve(text);
        });
      });
      await waitFor(() => server.seen.length === 1, 3000, 'the server to get the header');
      const rows = await p.connections();
      assert.equal(rows[0]?.client, '192.0.2.33:45678', 'the live table shows the header client');
      socket.write('world');
      assert.equal(await echoed, 'hello world');
      assert.deepEqual(server.seen[0], {
        header: 'v1',
        source: '192.0.2.33',
        sourcePort: 45678,
        payload: 'hello world',
      });
      socket.end();
      await closedWithin(socket, 3000);
      const stats = (await p.stats()).frontends.web;
      assert.equal(stats?.accepted, 1);
      assert.deepEqual(stats?.rejected, {});
    });

    test('v1 in, one byte at a time -> v2 out, and a client that waits for the server to speak', async (t) => {
      const server = await startHeaderServer(t, 'v2');
      const p = await startBalancer(
        t,
        ppConfig(server.port, { proxyProtocol: { accept: 'v1' } }, { sendProxy: 'v2' }),
        engine,
      );
      const socket = await connect(p.port);
      const header = Buffer.from('PROXY TCP4 198.51.100.7 203.0.113.1 50000 443\r\n');
      for (const byte of header) {
        socket.write(Buffer.from([byte]));
        await sleep(2);
      }
      await waitFor(() => server.seen.length === 1, 3000, 'the server to get the header');
      assert.deepEqual(server.seen[0], {
        header: 'v2',
        source: '198.51.100.7',
        sourcePort: 50000,
        payload: '',
      });
      socket.write('ping');
      const [reply] = await once(socket, 'data');
      assert.equal(String(reply), 'ping');
      socket.destroy();
    });

    test('health checks to a sendProxy server send v2 LOCAL', async (t) => {
      const server = await startHeaderServer(t, 'v2');
      const config = ppConfig(server.port, {}, { sendProxy: 'v2' });
      (config.backends[0] as Record<string, unknown>).healthCheck = {
        interval: '100ms',
        send: 'PING',
      };
      await startBalancer(t, config, engine);
      await waitFor(
        () => server.seen.some((s) => s.header === 'v2 local' && s.payload.startsWith('PING')),
        3000,
        'a LOCAL check',
      );
    });

    test('the bad-header corpus: each closed in time, the server never contacted, no descriptor left', async (t) => {
      let contacted = 0;
      const server = await startServer(t, () => {
        contacted++;
      });
      const p = await startBalancer(
        t,
        ppConfig(server.port, { proxyProtocol: { accept: 'any', timeout: '1s' } }),
        engine,
      );
      const fdBefore = fdCount(p.pid);
      const corpus = [
        ...BAD_HEADERS.filter((b) => b.accept === undefined).map((b) => ({ ...b, accept: 'any' })),
      ];
      const outcomes: string[] = [];
      for (const bad of corpus) {
        const started = Date.now();
        const reply = await exchange(p.port, bad.bytes, 3000);
        const ms = Date.now() - started;
        assert.equal(reply, '', bad.name);
        assert.ok(ms < 2500, `${bad.name}: closed after ${ms} ms`);
        outcomes.push(`${bad.name}: closed after ${ms} ms`);
      }
      // One byte every 100 ms of a valid header: still incomplete at the 1 s timeout.
      const slow = net.connect({ port: p.port, host: '127.0.0.1' });
      slow.on('error', () => {});
      await once(slow, 'connect');
      const started = Date.now();
      const header = Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n');
      let closedAt = 0;
      slow.on('close', () => {
        closedAt = Date.now();
      });
      for (const byte of header) {
        if (closedAt > 0 || slow.destroyed) break;
        slow.write(Buffer.from([byte]));
        await sleep(100);
      }
      await waitFor(() => closedAt > 0, 3000, 'the slow client to be closed');
      outcomes.push(`one byte every 100 ms: closed after ${closedAt - started} ms`);
      assert.ok(
        closedAt - started >= 900 && closedAt - started < 2000,
        `slow client closed after ${closedAt - started} ms`,
      );
      const stats = (await p.stats()).frontends.web;
      assert.equal(stats?.rejected.proxy_header, corpus.length + 1);
      assert.equal(stats?.accepted, 0);
      assert.equal(contacted, 0, 'no server connection');
      await waitFor(() => fdCount(p.pid) <= fdBefore, 3000, 'descriptors back to where they were');
      if (process.env.SHOW_CORPUS) console.log(`${engine}:\n${outcomes.join('\n')}`);
    });

    test('a v1 header to a v2-only frontend (and v2 to v1-only) is refused', async (t) => {
      const server = await startHeaderServer(t);
      const p2 = await startBalancer(
        t,
        ppConfig(server.port, { proxyProtocol: { accept: 'v2' } }),
        engine,
      );
      assert.equal(
        await exchange(p2.port, Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhi')),
        '',
      );
      const p1 = await startBalancer(
        t,
        ppConfig(server.port, { proxyProtocol: { accept: 'v1' } }),
        engine,
      );
      assert.equal(await exchange(p1.port, v2Header([1, 2, 3, 4], 1, Buffer.from('hi'))), '');
      assert.equal((await p2.stats()).frontends.web?.rejected.proxy_header, 1);
      assert.equal((await p1.stats()).frontends.web?.rejected.proxy_header, 1);
      assert.equal(server.seen.length, 0);
    });

    test('from: a sender outside the trusted blocks is closed unread', async (t) => {
      const server = await startHeaderServer(t);
      const p = await startBalancer(
        t,
        ppConfig(
          server.port,
          { proxyProtocol: { from: ['127.0.0.5/32', '10.0.0.0/8'] } },
          { sendProxy: 'v1' },
        ),
        engine,
      );
      const header = Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhi');
      assert.equal(await exchange(p.port, header, 3000, '127.0.0.6'), '');
      assert.equal(await exchange(p.port, header, 1000, '127.0.0.5'), 'hi');
      assert.equal((await p.stats()).frontends.web?.rejected.proxy_header, 1);
      assert.equal(server.seen.length, 1);
    });

    test('200 clients at once with headers, and 200 silent ones closed at the timeout', async (t) => {
      const server = await startHeaderServer(t, 'v1');
      const p = await startBalancer(
        t,
        ppConfig(
          server.port,
          { proxyProtocol: { timeout: '1s' }, maxConnections: 1000 },
          { sendProxy: 'v1' },
        ),
        engine,
      );
      const silent = await Promise.all(Array.from({ length: 200 }, () => connect(p.port)));
      for (const s of silent) s.on('error', () => {});
      const replies = await inParallel(200, 200, (i) =>
        exchangeUntil(
          p.port,
          Buffer.from(`PROXY TCP4 10.0.${i >> 8}.${i & 255} 5.6.7.8 ${1000 + i} 80\r\nclient ${i}`),
          `client ${i}`,
        ),
      );
      assert.deepEqual(
        replies,
        replies.map((_, i) => `client ${i}`),
      );
      const sources = new Set(server.seen.map((s) => `${s.source}:${s.sourcePort}`));
      assert.equal(sources.size, 200);
      await Promise.all(silent.map((s) => closedWithin(s, 3000)));
      const stats = (await p.stats()).frontends.web;
      assert.equal(stats?.rejected.proxy_header, 200);
      assert.equal(stats?.accepted, 200);
    });
  });
}

/** Sends `bytes`, resolves once `expect` came back. */
async function exchangeUntil(port: number, bytes: Buffer, expect: string): Promise<string> {
  const socket = await connect(port);
  let text = '';
  const done = new Promise<string>((resolve) => {
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.length >= expect.length) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  socket.write(bytes);
  const out = await done;
  socket.destroy();
  return out;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
