// The access log against a running proxy (a child process on each engine): one JSON line per
// finished connection with the termination cause, for each way a connection can end; the TLS
// fields of a terminated connection.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { createProxy } from '../../src/api.ts';
import { createLogger } from '../../src/log.ts';
import { makeCa, makeCert, writePem } from '../support/certs.ts';
import { closedWithin, connect, readAll, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { closedPort, startEchoServer, startNamedServer, startServer } from '../support/servers.ts';

interface Line {
  time: string;
  id?: number;
  client: string | null;
  frontend: string;
  backend: string | null;
  server: string | null;
  connect_ms: number | null;
  duration_ms: number;
  bytes_in: number;
  bytes_out: number;
  cause: string;
  fin: 'client' | 'server' | null;
  /** TLS: the client's server name (also from the ClientHello of an SNI-routed one). */
  sni?: string | null;
  /** A terminated TLS connection's negotiated parameters. */
  alpn?: string | null;
  tls_version?: string | null;
  tls_cipher?: string | null;
}

function readLines(file: string): Line[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

for (const engine of ENGINES) {
  describe(`access log (${engine} engine)`, () => {
    test('one line per connection with the termination cause', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'switchyard-access-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'logs', 'access.log');
      const echo = await startEchoServer(t);
      const named = await startNamedServer(t, 'hello');
      const hold = await startNamedServer(t, 'held', { hold: true });
      const resetter = await startServer(t, (socket) => {
        setTimeout(() => socket.resetAndDestroy(), 50);
      });
      const dead = await closedPort();
      const one = (name: string, port: number) => ({
        name,
        retries: 0,
        servers: [{ name: `${name}-1`, address: `127.0.0.1:${port}` }],
      });
      const p = await startBalancer(
        t,
        {
          frontends: [
            { name: 'echo', listen: '127.0.0.1:0', backend: 'echo' },
            { name: 'named', listen: '127.0.0.1:0', backend: 'named' },
            { name: 'hold', listen: '127.0.0.1:0', backend: 'hold', maxConnections: 1 },
            { name: 'reset', listen: '127.0.0.1:0', backend: 'reset' },
            { name: 'dead', listen: '127.0.0.1:0', backend: 'dead' },
          ],
          backends: [
            one('echo', echo.port),
            one('named', named.port),
            one('hold', hold.port),
            one('reset', resetter.port),
            one('dead', dead),
          ],
          timeouts: { idle: '300ms' },
          accessLog: file,
        },
        engine,
      );
      const port = (name: string) => p.ports[name] as number;
      const expected: {
        local: number | null;
        frontend: string;
        cause: string;
        fin?: 'client' | 'server' | null;
      }[] = [];

      // done, fin client: the client sends and finishes first; the echo server follows.
      const c1 = await connect(port('echo'));
      const c1Port = c1.localPort as number;
      c1.end('ping!');
      assert.equal((await readAll(c1)).toString(), 'ping!');
      expected.push({ local: c1Port, frontend: 'echo', cause: 'done', fin: 'client' });

      // done, fin server: the server says its name and finishes first.
      const c2 = await connect(port('named'));
      const c2Port = c2.localPort as number;
      assert.equal((await readAll(c2)).toString(), 'hello');
      c2.end();
      expected.push({ local: c2Port, frontend: 'named', cause: 'done', fin: 'server' });

      // client_reset, then rejected_at_cap while it is the one connection allowed.
      const c3 = await connect(port('hold'));
      const c3Port = c3.localPort as number;
      await once(c3, 'data');
      const c4 = await connect(port('hold'));
      await closedWithin(c4, 2000);
      expected.push({ local: null, frontend: 'hold', cause: 'rejected_at_cap' });
      c3.resetAndDestroy();
      expected.push({ local: c3Port, frontend: 'hold', cause: 'client_reset' });

      // server_reset: the server resets an established pair.
      const c5 = await connect(port('reset'));
      const c5Port = c5.localPort as number;
      c5.on('error', () => {});
      await closedWithin(c5, 2000);
      expected.push({ local: c5Port, frontend: 'reset', cause: 'server_reset' });

      // connect_failed: nothing listens where the server should be (refused).
      const c6 = await connect(port('dead'));
      const c6Port = c6.localPort as number;
      await closedWithin(c6, 2000);
      expected.push({ local: c6Port, frontend: 'dead', cause: 'connect_failed' });

      // idle_timeout: a pair where nobody says anything (after the server's greeting).
      await waitFor(async () => (await p.stats()).frontends.hold?.active === 0, 2000, 'hold free');
      const c7 = await connect(port('hold'));
      const c7Port = c7.localPort as number;
      await once(c7, 'data');
      await closedWithin(c7, 3000);
      expected.push({ local: c7Port, frontend: 'hold', cause: 'idle_timeout' });

      let lines: Line[] = [];
      await waitFor(
        () => {
          lines = readLines(file);
          return lines.length >= expected.length;
        },
        5000,
        `${expected.length} access log lines`,
      );
      t.diagnostic(JSON.stringify(lines));
      assert.equal(lines.length, expected.length);
      for (const e of expected) {
        const line =
          e.local === null
            ? lines.find((l) => l.cause === e.cause)
            : lines.find((l) => l.client === `127.0.0.1:${e.local}`);
        assert.ok(line, `a line for ${e.frontend} ${e.cause}`);
        assert.equal(line.cause, e.cause, `cause of the ${e.frontend} connection`);
        if (e.fin !== undefined)
          assert.equal(line.fin, e.fin, `fin of the ${e.frontend} connection`);
        assert.equal(line.frontend, e.frontend);
        assert.ok(!Number.isNaN(Date.parse(line.time)), 'an ISO time');
        assert.ok(line.duration_ms >= 0);
      }
      const echoLine = lines.find((l) => l.frontend === 'echo') as Line;
      assert.equal(echoLine.backend, 'echo');
      assert.equal(echoLine.server, 'echo-1');
      assert.equal(echoLine.bytes_in, 5);
      assert.equal(echoLine.bytes_out, 5);
      assert.equal(typeof echoLine.connect_ms, 'number');
      const namedLine = lines.find((l) => l.frontend === 'named') as Line;
      assert.deepEqual([namedLine.bytes_in, namedLine.bytes_out], [0, 5]);
      const refused = lines.find((l) => l.cause === 'connect_failed') as Line;
      assert.equal(refused.server, 'dead-1');
      assert.equal(refused.connect_ms, null);
      const idle = lines.find((l) => l.cause === 'idle_timeout') as Line;
      assert.ok(idle.duration_ms >= 250, `idle line lasted ${idle.duration_ms} ms`);
    });

    test('a terminated TLS connection: its SNI, ALPN, TLS version and cipher; a plain one: none', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'switchyard-access-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'access.log');
      const ca = await makeCa();
      const cert = writePem(dir, 'a', await makeCert(ca, ['a.example.com']));
      const echo = await startEchoServer(t);
      const p = await startBalancer(
        t,
        {
          frontends: [
            {
              name: 'https',
              listen: '127.0.0.1:0',
              backend: 'echo',
              tls: {
                certificates: [{ cert: cert.certFile, key: cert.keyFile }],
                alpn: ['h2', 'http/1.1'],
              },
            },
            { name: 'plain', listen: '127.0.0.1:0', backend: 'echo' },
          ],
          backends: [{ name: 'echo', servers: [{ name: 'e', address: `127.0.0.1:${echo.port}` }] }],
          accessLog: file,
        },
        engine,
      );
      const client = tls.connect({
        host: '127.0.0.1',
        port: p.ports.https as number,
        ca: ca.cert,
        servername: 'a.example.com',
        ALPNProtocols: ['h2'],
      });
      t.after(() => client.destroy());
      await once(client, 'secureConnect');
      assert.ok(client.authorized);
      const local = client.localPort as number;
      const negotiated = { version: client.getProtocol(), cipher: client.getCipher().name };
      client.end('ping!');
      assert.equal((await readAll(client)).toString(), 'ping!');
      const c = await connect(p.ports.plain as number);
      const plainLocal = c.localPort as number;
      c.end('ping!');
      await readAll(c);

      let lines: Line[] = [];
      await waitFor(
        () => {
          lines = readLines(file);
          return lines.length === 2;
        },
        5000,
        'two access log lines',
      );
      const terminated = lines.find((l) => l.client === `127.0.0.1:${local}`);
      assert.ok(terminated, JSON.stringify(lines));
      assert.equal(terminated.frontend, 'https');
      assert.equal(terminated.cause, 'done');
      assert.deepEqual(
        {
          sni: terminated.sni,
          alpn: terminated.alpn,
          version: terminated.tls_version,
          cipher: terminated.tls_cipher,
        },
        { sni: 'a.example.com', alpn: 'h2', ...negotiated },
      );
      assert.match(String(terminated.tls_version), /^TLSv1\.[23]$/);
      const plain = lines.find((l) => l.client === `127.0.0.1:${plainLocal}`);
      assert.ok(plain, JSON.stringify(lines));
      for (const key of ['sni', 'alpn', 'tls_version', 'tls_cipher']) {
        assert.ok(!(key in plain), `no ${key} on a plain TCP line`);
      }
    });

    for (const workers of [1, 2]) {
      test(`SIGUSR1 reopens the file (--workers ${workers}): after a rename (logrotate), new lines go to the path`, async (t) => {
        const dir = mkdtempSync(join(tmpdir(), 'switchyard-access-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        const file = join(dir, 'access.log');
        const echo = await startEchoServer(t);
        const child = spawn(
          process.execPath,
          [
            `${ROOT}bin/switchyard.js`,
            '--engine',
            engine,
            '--listen',
            `127.0.0.1:${workers > 1 ? await closedPort() : 0}`,
            '--workers',
            String(workers),
            '--backend',
            `127.0.0.1:${echo.port}`,
            '--access-log',
            file,
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        t.after(() => child.kill('SIGKILL'));
        const stderr = createInterface({ input: child.stderr as NodeJS.ReadableStream });
        let port = 0;
        let listening = 0;
        for await (const line of stderr) {
          const m = /listening on 127\.0\.0\.1:(\d+)$/.exec(JSON.parse(line).msg);
          if (m) port = Number(m[1]);
          if (m && ++listening === workers) break; // every worker listens
        }
        const echoOnce = async (text: string) => {
          const c = await connect(port);
          c.end(text);
          assert.equal((await readAll(c)).toString(), text);
        };
        // Enough connections that every worker has written (and opened the file) before the
        // rename: the kernel spreads them, 20 of them miss a worker about once in 500,000 runs.
        const first = workers === 1 ? 1 : 20;
        for (let i = 0; i < first; i++) await echoOnce('one');
        await waitFor(() => readLines(file).length === first, 5000, 'the first lines');
        renameSync(file, `${file}.1`);
        await echoOnce('two');
        await waitFor(
          () => readLines(`${file}.1`).length === first + 1,
          5000,
          'a line in the renamed file',
        );
        child.kill('SIGUSR1');
        await waitFor(
          async () => {
            // Connections until one lands in a new file at the path (the signal is asynchronous).
            await echoOnce('three');
            return readLines(file).length > 0;
          },
          5000,
          'a line in a new file at the path',
        );
        const [exit] = await Promise.all([once(child, 'exit'), child.kill('SIGTERM')]);
        assert.equal(exit[0], 0);
        assert.ok(
          readLines(file).every((l) => l.bytes_in === 5),
          'only "three" at the new path',
        );
        if (workers === 1) {
          // One process: every line before the signal is in the renamed file. (With workers, the
          // one that has not reopened yet may still write a "three" there.)
          assert.ok(readLines(`${file}.1`).every((l) => l.bytes_in === 3));
        }
      });
    }
  });
}

test('close(true): the connections it kills are logged before the file is closed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-access-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const hold = await startNamedServer(t, 'held', { hold: true });
  const handle = await createProxy(
    {
      frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
      backends: [{ name: 'app', servers: [{ name: 'a', address: `127.0.0.1:${hold.port}` }] }],
      accessLog: file,
    },
    { log: createLogger('warn') },
  );
  const c = await connect(handle.addresses().web?.port as number);
  c.on('error', () => {});
  await once(c, 'data');
  await handle.close(true);
  c.destroy();
  await waitFor(() => readLines(file).length === 1, 2000, 'the killed connection logged');
  assert.equal(readLines(file)[0]?.cause, 'killed');
});
