// TLS termination end to end on both engines: a node:tls client -> switchyard (child process,
// TLS frontend) -> a plain backend. Certificates are made by the test (test/support/certs.ts).
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { type CertFiles, makeCa, makeCert, type Pem, tempDir, writePem } from '../support/certs.ts';
import { closedWithin, sha256, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startEchoServer, startServer } from '../support/servers.ts';

const MiB = 1024 * 1024;

interface Pki {
  ca: Pem;
  dir: string;
  files: Record<string, CertFiles>;
}

/** A CA and certificates for a.example.com, *.w.example.com and default.example.com. */
async function pki(t: Parameters<typeof tempDir>[0]): Promise<Pki> {
  const ca = await makeCa();
  const dir = tempDir(t);
  const files: Pki['files'] = {};
  for (const [name, names] of [
    ['default', ['default.example.com']],
    ['a', ['a.example.com']],
    ['w', ['*.w.example.com']],
  ] as const) {
    files[name] = writePem(dir, name, await makeCert(ca, [...names]));
  }
  return { ca, dir, files };
}

function tlsFrontend(p: Pki, backendPort: number, extra: Record<string, unknown> = {}) {
  const cert = (n: string) => ({
    cert: p.files[n]?.certFile as string,
    key: p.files[n]?.keyFile as string,
  });
  return {
    frontends: [
      {
        name: 'https',
        listen: '127.0.0.1:0',
        backend: 'app',
        tls: { certificates: [cert('default'), cert('a'), cert('w')], ...extra },
      },
    ],
    backends: [{ name: 'app', servers: [{ name: 'b', address: `127.0.0.1:${backendPort}` }] }],
  };
}

/** A TLS client verifying the proxy's certificate against `ca` for `servername`. */
async function tlsConnect(
  port: number,
  ca: string,
  servername: string | undefined,
  extra: tls.ConnectionOptions = {},
): Promise<tls.TLSSocket> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca,
    ...(servername !== undefined ? { servername } : {}),
    checkServerIdentity: servername
      ? (_h, cert) => tls.checkServerIdentity(servername, cert)
      : () => undefined,
    allowHalfOpen: true,
    ...extra,
  } as tls.ConnectionOptions);
  await once(socket, 'secureConnect');
  return socket;
}

/** Writes `total` bytes in random sizes (1 B to 256 KiB), honouring backpressure. */
async function writeRandom(socket: net.Socket, total: number, source: Buffer): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const size = Math.min(total - sent, Math.max(1, Math.floor(2 ** (Math.random() * 18))));
    const offset = Math.floor(Math.random() * (source.length - size));
    const chunk = source.subarray(offset, offset + size);
    hash.update(chunk);
    sent += size;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  return hash.digest('hex');
}

function hashUntilEnd(socket: net.Socket): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  return once(socket, 'end').then(() => ({ hash: hash.digest('hex'), bytes }));
}

for (const engine of ENGINES) {
  describe(`TLS termination (${engine} engine)`, { timeout: 60_000 }, () => {
    test('8 MiB each way, random write sizes: sha256-equal; half-close passes as FIN', async (t) => {
      const p = await pki(t);
      const received: Promise<{ hash: string; bytes: number }>[] = [];
      const backend = await startServer(t, (socket) => {
        received.push(hashUntilEnd(socket));
        socket.pipe(socket);
      });
      const proxy = await startBalancer(t, tlsFrontend(p, backend.port), engine);
      const client = await tlsConnect(proxy.port, p.ca.cert, 'a.example.com');
      t.after(() => client.destroy());
      const echoed = hashUntilEnd(client);
      const sent = await writeRandom(client, 8 * MiB, randomBytes(MiB));
      client.end(); // close_notify + FIN: the backend sees FIN, echoes it back
      const back = await echoed;
      const [atBackend] = await Promise.all(received);
      assert.equal(back.bytes, 8 * MiB);
      assert.equal(back.hash, sent, 'the client got back exactly what it sent');
      assert.equal(atBackend?.hash, sent, 'the backend got exactly what the client sent');
      await waitFor(async () => (await proxy.stats()).frontends.https?.active === 0, 5000, 'close');
      const stats = (await proxy.stats()).frontends.https;
      assert.equal(stats?.closed.done, 1, JSON.stringify(stats?.closed));
      assert.equal(stats?.pool.inUse, 0);
      assert.equal(stats?.states.illegal, 0);
      assert.equal(stats?.bytesIn, 8 * MiB);
    });

    test('SNI picks the certificate: exact, wildcard, default; ALPN and SNI in the live table', async (t) => {
      const p = await pki(t);
      const backend = await startServer(t, (socket) => socket.resume());
      const proxy = await startBalancer(
        t,
        tlsFrontend(p, backend.port, { alpn: ['h2', 'http/1.1'] }),
        engine,
      );
      const served: Record<string, string> = {};
      for (const name of ['a.example.com', 'x.w.example.com', 'other.example.org', undefined]) {
        const c = await tlsConnect(proxy.port, p.ca.cert, undefined, {
          ...(name ? { servername: name } : {}),
          ALPNProtocols: ['h2'],
        });
        served[name ?? '(none)'] = c.getPeerCertificate().subject.CN as string;
        assert.equal(c.alpnProtocol, 'h2');
        if (name === 'a.example.com') {
          await waitFor(async () => (await proxy.connections()).length === 1, 5000, 'the row');
          const [row] = await proxy.connections();
          assert.equal(row?.tls?.sni, 'a.example.com');
          assert.equal(row?.tls?.alpn, 'h2');
          assert.match(row?.tls?.version ?? '', /^TLSv1\.[23]$/);
          assert.ok(row?.tls?.cipher, 'a cipher name');
        }
        c.destroy();
      }
      assert.deepEqual(served, {
        'a.example.com': 'a.example.com',
        'x.w.example.com': '*.w.example.com',
        'other.example.org': 'default.example.com',
        '(none)': 'default.example.com',
      });
    });

    test('mTLS: a client certificate from clientCa passes; none, or a foreign one, is refused and counted', async (t) => {
      const p = await pki(t);
      const clientCa = await makeCa('client CA');
      const caFile = writePem(p.dir, 'client-ca', clientCa).certFile;
      const good = await makeCert(clientCa, ['client.example.com']);
      const foreign = await makeCert(await makeCa('other CA'), ['client.example.com']);
      const backend = await startServer(t, (socket) => socket.end('hello'));
      const proxy = await startBalancer(
        t,
        tlsFrontend(p, backend.port, { clientCa: caFile }),
        engine,
      );
      const ok = await tlsConnect(proxy.port, p.ca.cert, 'a.example.com', {
        cert: good.cert,
        key: good.key,
      });
      const [reply] = await once(ok, 'data');
      assert.equal(String(reply), 'hello');
      ok.destroy();
      for (const creds of [{}, { cert: foreign.cert, key: foreign.key }]) {
        // TLS 1.3: the client finishes first; the refusal arrives as an alert or a close.
        const c = tls.connect({
          host: '127.0.0.1',
          port: proxy.port,
          ca: p.ca.cert,
          servername: 'a.example.com',
          ...creds,
        });
        let data = '';
        c.on('data', (d) => {
          data += d;
        });
        c.on('error', () => {}); // the refusal: an alert, or a reset
        await new Promise((resolve) => c.on('close', resolve));
        assert.equal(data, '', 'nothing from the backend reached a refused client');
      }
      const stats = (await proxy.stats()).frontends.https;
      assert.equal(stats?.rejected.tls_handshake, 2, JSON.stringify(stats?.rejected));
      assert.equal(stats?.accepted, 1);
    });

    test('garbage instead of a ClientHello, and a silent client: closed in time, counted', async (t) => {
      const p = await pki(t);
      const backend = await startEchoServer(t);
      const proxy = await startBalancer(
        t,
        tlsFrontend(p, backend.port, { handshakeTimeout: '300ms' }),
        engine,
      );
      const garbage = net.connect(proxy.port, '127.0.0.1');
      garbage.on('error', () => {});
      garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await closedWithin(garbage, 5000);
      const silent = net.connect(proxy.port, '127.0.0.1');
      silent.on('error', () => {});
      await closedWithin(silent, 5000);
      const stats = (await proxy.stats()).frontends.https;
      assert.equal(stats?.rejected.tls_handshake, 1, JSON.stringify(stats?.rejected));
      assert.equal(stats?.rejected.tls_handshake_timeout, 1, JSON.stringify(stats?.rejected));
      assert.equal(stats?.accepted, 0, 'neither became a session');
      assert.equal(backend.sockets.size, 0, 'nothing was forwarded');
    });

    test('a slow reader through TLS: the proxy holds a bounded amount, then everything arrives', async (t) => {
      const p = await pki(t);
      const total = 64 * MiB;
      const payload = randomBytes(MiB);
      const backend = await startServer(t, async (socket) => {
        for (let sent = 0; sent < total; sent += payload.length) {
          if (!socket.write(payload)) await once(socket, 'drain');
        }
        socket.end();
      });
      const proxy = await startBalancer(t, tlsFrontend(p, backend.port), engine);
      const client = await tlsConnect(proxy.port, p.ca.cert, 'a.example.com');
      t.after(() => client.destroy());
      client.pause(); // the slow reader: reads nothing for a while
      await sleep(300);
      const rssBefore = (await proxy.stats()).frontends.https?.pool.inUse;
      const { rssOf } = await import('../support/proc.ts');
      const rssPaused = rssOf(proxy.pid);
      await sleep(700);
      const rssLater = rssOf(proxy.pid);
      assert.ok(rssBefore !== undefined && rssBefore <= 2, `pool buffers held: ${rssBefore}`);
      // 64 MiB are waiting at the backend: the proxy must not have read them in.
      assert.ok(rssLater - rssPaused < 16 * MiB, `RSS grew by ${rssLater - rssPaused} bytes`);
      const got = hashUntilEnd(client);
      client.resume();
      const r = await got;
      assert.equal(r.bytes, total);
      assert.equal(r.hash, sha256(Buffer.concat(Array.from({ length: 64 }, () => payload))));
    });
  });
}

/** A TLS server with `pem` that answers every connection with `name`, then FIN. */
async function startTlsNamedServer(
  t: Parameters<typeof tempDir>[0],
  pem: Pem,
  name: string,
): Promise<{ port: number; hits: () => number }> {
  let hits = 0;
  const server = tls.createServer({ cert: pem.cert, key: pem.key, allowHalfOpen: true }, (s) => {
    hits++;
    s.on('error', () => {});
    s.end(name);
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, hits: () => hits };
}

/** Connects with plain TCP and resolves with all the proxy sent before closing. */
async function plainRead(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (d) => {
    text += d;
  });
  await new Promise((resolve) => socket.on('close', resolve));
  return text;
}

for (const engine of ENGINES) {
  describe(`TLS origination (${engine} engine)`, { timeout: 60_000 }, () => {
    test('verified against the CA and servername; a wrong servername is a connect failure', async (t) => {
      const p = await pki(t);
      const caFile = writePem(p.dir, 'ca', p.ca).certFile;
      const upstream = await startTlsNamedServer(t, await makeCert(p.ca, ['api.internal']), 'u1');
      const server = (servername: string) => ({
        name: 'u1',
        address: `127.0.0.1:${upstream.port}`,
        tls: { ca: caFile, servername },
      });
      const proxy = await startBalancer(
        t,
        {
          frontends: [
            { name: 'good', listen: '127.0.0.1:0', backend: 'good' },
            { name: 'bad', listen: '127.0.0.1:0', backend: 'bad' },
          ],
          backends: [
            { name: 'good', servers: [server('api.internal')] },
            { name: 'bad', retries: 1, servers: [server('wrong.internal')] },
          ],
        },
        engine,
      );
      assert.equal(await plainRead(proxy.ports.good as number), 'u1');
      assert.equal(await plainRead(proxy.ports.bad as number), '', 'refused: nothing forwarded');
      const stats = await proxy.stats();
      assert.equal(
        stats.frontends.bad?.closed.connect_failed,
        1,
        JSON.stringify(stats.frontends.bad?.closed),
      );
      assert.equal(stats.backends.bad?.servers[0]?.failures, 2, 'the attempt and its retry');
      assert.equal(stats.backends.good?.servers[0]?.failures, 0);
    });

    test('health checks handshake too: an unverifiable server goes down, a good one stays up', async (t) => {
      const p = await pki(t);
      const caFile = writePem(p.dir, 'ca', p.ca).certFile;
      const foreign = await makeCert(await makeCa('other CA'), ['api.internal']);
      const good = await startTlsNamedServer(t, await makeCert(p.ca, ['api.internal']), 'ok');
      const bad = await startTlsNamedServer(t, foreign, 'bad');
      const proxy = await startBalancer(
        t,
        {
          frontends: [{ name: 'f', listen: '127.0.0.1:0', backend: 'app' }],
          backends: [
            {
              name: 'app',
              healthCheck: { interval: '100ms', rise: 1, fall: 1 },
              servers: ['good', 'bad'].map((name) => ({
                name,
                address: `127.0.0.1:${(name === 'good' ? good : bad).port}`,
                tls: { ca: caFile, servername: 'api.internal' },
              })),
            },
          ],
        },
        engine,
      );
      await waitFor(
        async () => (await proxy.stats()).backends.app?.servers[1]?.up === false,
        5000,
        'the unverifiable server to go down',
      );
      const servers = (await proxy.stats()).backends.app?.servers;
      assert.equal(servers?.[0]?.up, true);
      assert.ok((servers?.[0]?.checks ?? 0) > 0);
      for (let i = 0; i < 4; i++) assert.equal(await plainRead(proxy.port), 'ok');
    });
  });
}

for (const engine of ENGINES) {
  describe(`TLS certificate reload (${engine} engine)`, { timeout: 60_000 }, () => {
    test('a reload serves the new certificate to new connections; open ones are untouched; a bad key is refused', async (t) => {
      const p = await pki(t);
      const backend = await startEchoServer(t);
      const config = tlsFrontend(p, backend.port);
      const proxy = await startBalancer(t, config, engine);
      const serial = async () => {
        const c = await tlsConnect(proxy.port, p.ca.cert, 'a.example.com');
        const s = c.getPeerCertificate().serialNumber;
        return { c, s };
      };
      const first = await serial();
      t.after(() => first.c.destroy());
      assert.equal(
        first.s.toUpperCase(),
        new X509Certificate(p.files.a?.cert as string).serialNumber,
      );
      const renewed = writePem(p.dir, 'a', await makeCert(p.ca, ['a.example.com']));
      await proxy.reload(config);
      const second = await serial();
      second.c.destroy();
      assert.equal(second.s.toUpperCase(), new X509Certificate(renewed.cert).serialNumber);
      assert.notEqual(second.s, first.s);
      // The connection made before the reload still works, on its old session.
      first.c.write('still here');
      const [echo] = await once(first.c, 'data');
      assert.equal(String(echo), 'still here');
      // A key that is no key: the reload is refused with the key named, the running one stays.
      writeFileSync(renewed.keyFile, 'garbage');
      await assert.rejects(
        proxy.reload(config),
        /frontends\.0\.tls\.certificates\.1\.key: .*a\.key holds no PEM private key/,
      );
      const third = await serial();
      third.c.destroy();
      assert.equal(third.s, second.s);
    });
  });
}
