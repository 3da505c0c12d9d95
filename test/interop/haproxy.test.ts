// HAProxy as the real peer of the PROXY protocol, both ways, both engines:
//   client (127.0.0.5) -> HAProxy send-proxy-v2 -> switchyard accept v2 -> sendProxy v1 -> a backend
//   client (127.0.0.6) -> switchyard sendProxy v2 -> HAProxy accept-proxy -> send-proxy -> a backend
// and each backend, parsing the header it gets, sees the client's own address and port.
// Runs under `npm run test:interop` (which installs haproxy); skipped in `npm test`, which must
// not need a system package.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startHeaderServer } from '../support/proxy-headers.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { closedPort } from '../support/servers.ts';
import { HAPROXY } from './install.ts';

const enabled = process.env.SWITCHYARD_INTEROP === '1';

/** Runs HAProxy in the foreground with `body` after a tcp-mode defaults section. */
async function startHaproxy(t: TestContext, body: string, port: number): Promise<ChildProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-haproxy-'));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n${body}`,
  );
  const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'inherit', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' });
        s.on('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    5000,
    'haproxy to listen',
  );
  return child;
}

/** Connects from `localAddress`, sends `text`, resolves with the echo and the client's port. */
async function roundTrip(port: number, localAddress: string, text: string) {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  const localPort = socket.localPort as number;
  let got = '';
  const done = new Promise<void>((resolve) => {
    socket.on('data', (c: Buffer) => {
      got += c;
      if (got.length >= text.length) resolve();
    });
  });
  socket.write(text);
  await done;
  socket.destroy();
  return { got, localPort };
}

for (const engine of ENGINES) {
  describe(`HAProxy interop (${engine} engine)`, {
    skip: enabled ? false : 'npm run test:interop',
  }, () => {
    test('HAProxy send-proxy-v2 -> switchyard accept v2 -> sendProxy v1: the backend sees the client', async (t) => {
      const backend = await startHeaderServer(t, 'v1');
      const sy = await startBalancer(
        t,
        {
          frontends: [
            {
              name: 'lb',
              listen: '127.0.0.1:0',
              backend: 'app',
              proxyProtocol: { accept: 'v2', from: ['127.0.0.1'] },
            },
          ],
          backends: [
            {
              name: 'app',
              servers: [{ name: 'a', address: `127.0.0.1:${backend.port}`, sendProxy: 'v1' }],
            },
          ],
        },
        engine,
      );
      const port = await closedPort();
      await startHaproxy(
        t,
        `frontend f\n  bind 127.0.0.1:${port}\n  default_backend b\nbackend b\n  server s 127.0.0.1:${sy.port} send-proxy-v2\n`,
        port,
      );
      const { got, localPort } = await roundTrip(port, '127.0.0.5', 'through haproxy');
      assert.equal(got, 'through haproxy');
      const seen = backend.seen.find((s) => s.payload === 'through haproxy');
      assert.ok(seen, JSON.stringify(backend.seen));
      assert.equal(seen.source, '127.0.0.5');
      assert.equal(seen.sourcePort, localPort);
      // (The probe that waited for HAProxy to listen left before HAProxy sent a header: that one
      // counts as a proxy_header rejection, as a client that closes before its header should.)
      assert.ok(((await sy.stats()).frontends.lb?.accepted ?? 0) >= 1);
    });

    test('switchyard sendProxy v2 -> HAProxy accept-proxy (-> send-proxy): HAProxy sees the client', async (t) => {
      const backend = await startHeaderServer(t, 'v1');
      const port = await closedPort();
      await startHaproxy(
        t,
        `frontend f\n  bind 127.0.0.1:${port} accept-proxy\n  default_backend b\nbackend b\n  server s 127.0.0.1:${backend.port} send-proxy\n`,
        port,
      );
      const sy = await startBalancer(
        t,
        {
          frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'hap' }],
          backends: [
            {
              name: 'hap',
              servers: [{ name: 'h', address: `127.0.0.1:${port}`, sendProxy: 'v2' }],
            },
          ],
        },
        engine,
      );
      const { got, localPort } = await roundTrip(sy.port, '127.0.0.6', 'to haproxy');
      assert.equal(got, 'to haproxy');
      const seen = backend.seen.find((s) => s.payload === 'to haproxy');
      assert.ok(seen, JSON.stringify(backend.seen));
      assert.equal(seen.source, '127.0.0.6');
      assert.equal(seen.sourcePort, localPort);
    });
  });
}
