// The library API in-process: createProxy, the route hook, reload, stats.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import tls from 'node:tls';
import pino from 'pino';
import { ErrorCode } from '../src/errors.ts';
import { createProxy, type ProxyHandle, type RouteInfo } from '../src/index.ts';
import { createLogger } from '../src/log.ts';
import { makeCa, makeCert, tempDir, writePem } from './support/certs.ts';
import { connect, inParallel, tally, waitFor } from './support/clients.ts';
import { ENGINES } from './support/proc.ts';
import { tlv, v2WithTlvs } from './support/proxy-headers.ts';
import { startBalancer } from './support/proxy-process.ts';
import {
  balancerConfig,
  closedPort,
  startEchoServer,
  startNamedServer,
  whoAnswers,
} from './support/servers.ts';

const log = createLogger('silent');

async function start(
  t: TestContext,
  config: Parameters<typeof createProxy>[0],
  route?: (info: RouteInfo) => string | undefined,
): Promise<ProxyHandle> {
  const proxy = await createProxy(config, { log, strictStates: true, ...(route ? { route } : {}) });
  t.after(() => proxy.close(true));
  return proxy;
}

test('route hook: picks the server from the connection facts; undefined, an unknown name or a throw falls back to the balancer', async (t) => {
  const a = await startNamedServer(t, 'a');
  const b = await startNamedServer(t, 'b');
  const seen: RouteInfo[] = [];
  const proxy = await start(
    t,
    {
      frontends: [
        { name: 'web', listen: '127.0.0.1:0', backend: 'app' },
        { name: 'admin', listen: '127.0.0.1:0', backend: 'app' },
      ],
      backends: [
        {
          name: 'app',
          servers: [
            { name: 'a', address: `127.0.0.1:${a.port}` },
            { name: 'b', address: `127.0.0.1:${b.port}` },
            { name: 'gone', address: `127.0.0.1:${await closedPort()}`, weight: 0 },
          ],
        },
      ],
    },
    (info) => {
      seen.push(info);
      if (info.frontend === 'admin') return 'b';
      if (info.clientAddress === '127.0.0.3') return 'nonexistent';
      if (info.clientAddress === '127.0.0.4') throw new Error('a bug in the hook');
      return undefined;
    },
  );
  const ports = proxy.addresses();
  const admin = ports.admin?.port as number;
  const web = ports.web?.port as number;
  assert.deepEqual(tally(await inParallel(10, 5, () => whoAnswers(admin))), { b: 10 });
  assert.deepEqual(tally(await inParallel(10, 5, () => whoAnswers(web))), { a: 5, b: 5 });
  assert.deepEqual(
    tally(await inParallel(4, 2, () => whoAnswers(web, { localAddress: '127.0.0.3' }))),
    { a: 2, b: 2 },
  );
  // A hook that throws costs the connection nothing: the balancer picks.
  assert.deepEqual(
    tally(await inParallel(2, 1, () => whoAnswers(web, { localAddress: '127.0.0.4' }))),
    { a: 1, b: 1 },
  );
  const info = seen.find((i) => i.frontend === 'admin') as RouteInfo;
  assert.equal(info.clientAddress, '127.0.0.1');
  assert.equal(info.localPort, admin);
  assert.equal(info.backend, 'app');
  assert.deepEqual(
    info.servers.map((s) => [s.name, s.up, s.weight]),
    [
      ['a', true, 1],
      ['b', true, 1],
      ['gone', true, 0],
    ],
  );
});

test('reload: new servers and frontends for new connections; established pairs untouched', async (t) => {
  const a = await startNamedServer(t, 'a');
  const b = await startNamedServer(t, 'b');
  const echo = await startEchoServer(t);
  const config = (servers: [string, number][], extra: boolean) => ({
    frontends: [
      { name: 'web', listen: '127.0.0.1:0', backend: 'app' },
      { name: 'echo', listen: '127.0.0.1:0', backend: 'echo' },
      ...(extra ? [{ name: 'extra', listen: '127.0.0.1:0', backend: 'app' }] : []),
    ],
    backends: [
      {
        name: 'app',
        servers: servers.map(([name, port]) => ({ name, address: `127.0.0.1:${port}` })),
      },
      { name: 'echo', servers: [{ name: 'e', address: `127.0.0.1:${echo.port}` }] },
    ],
  });
  const proxy = await start(t, config([['a', a.port]], false));
  const web = proxy.addresses().web?.port as number;
  const held = await connect(proxy.addresses().echo?.port as number);
  const echoes = async (text: string) => {
    const reply = once(held, 'data');
    held.write(text);
    assert.equal(String((await reply)[0]), text);
  };
  await echoes('before');
  assert.deepEqual(tally(await inParallel(4, 2, () => whoAnswers(web))), { a: 4 });

  await proxy.reload(
    config(
      [
        ['a', a.port],
        ['b', b.port],
      ],
      true,
    ),
  );
  assert.equal(proxy.addresses().web?.port, web, 'an unchanged frontend keeps its listener');
  assert.deepEqual(tally(await inParallel(4, 2, () => whoAnswers(web))), { a: 2, b: 2 });
  const extra = proxy.addresses().extra?.port as number;
  assert.ok(['a', 'b'].includes(await whoAnswers(extra)), 'the new frontend accepts');
  await echoes('during');

  await proxy.reload(config([['b', b.port]], false));
  assert.deepEqual(tally(await inParallel(4, 2, () => whoAnswers(web))), { b: 4 });
  assert.equal(proxy.addresses().extra, undefined);
  const refused = net.connect({ port: extra, host: '127.0.0.1' });
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED', 'the removed frontend stopped accepting');
  await echoes('after');

  // A bad config changes nothing.
  await assert.rejects(
    proxy.reload({ frontends: [{ name: 'web', listen: 'x', backend: 'nope' }], backends: [] }),
    (e: { code?: string; problems?: string[] }) => {
      assert.equal(e.code, ErrorCode.INVALID_CONFIG);
      assert.ok((e.problems?.length ?? 0) >= 3);
      return true;
    },
  );
  assert.deepEqual(tally(await inParallel(2, 2, () => whoAnswers(web))), { b: 2 });
  await echoes('still');
  held.destroy();
  await waitFor(() => proxy.stats().frontends.echo?.active === 0, 2000, 'echo pair closed');
});

test('createProxy rejects a bad config with every problem, and exposes stats per frontend and backend', async (t) => {
  await assert.rejects(createProxy({ frontends: [], backends: [] }, { log }), {
    code: ErrorCode.INVALID_CONFIG,
  });
  const a = await startNamedServer(t, 'a');
  const proxy = await start(t, {
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
    backends: [{ name: 'app', servers: [{ name: 'a', address: `127.0.0.1:${a.port}` }] }],
  });
  await whoAnswers(proxy.addresses().web?.port as number);
  await waitFor(() => proxy.stats().frontends.web?.active === 0, 2000, 'closed');
  const stats = proxy.stats();
  assert.equal(stats.frontends.web?.accepted, 1);
  assert.equal(stats.frontends.web?.backend, 'app');
  assert.equal(stats.backends.app?.servers[0]?.connections, 1);
  assert.equal(stats.backends.app?.servers[0]?.active, 0);
});

test('no server up: the client is closed at once and the reason is logged', async (t) => {
  const lines: string[] = [];
  const captured = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const proxy = await createProxy(
    {
      frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
      backends: [
        {
          name: 'app',
          healthCheck: { interval: '50ms', fall: 1 },
          servers: [{ name: 'a', address: `127.0.0.1:${await closedPort()}` }],
        },
      ],
    },
    { log: captured, strictStates: true },
  );
  t.after(() => proxy.close(true));
  await waitFor(() => proxy.stats().backends.app?.servers[0]?.up === false, 2000, 'a down');
  const started = Date.now();
  assert.equal(await whoAnswers(proxy.addresses().web?.port as number), '');
  assert.ok(Date.now() - started < 200);
  const entries = lines.map((l) => JSON.parse(l));
  assert.ok(entries.some((e) => e.msg === 'server a is down: check failed (ECONNREFUSED)'));
  const closed = entries.find((e) => e.code === ErrorCode.NO_SERVER);
  assert.ok(closed, lines.join(''));
  assert.match(closed.msg, /no server of backend app is up; client closed/);
});

for (const engine of ENGINES) {
  describe(`reload in a proxy process (${engine} engine)`, { timeout: 30_000 }, () => {
    test('a server added, then the first removed: new connections follow, held ones stay', async (t) => {
      const a = await startNamedServer(t, 'a', { hold: true });
      const b = await startNamedServer(t, 'b', { hold: true });
      const proxy = await startBalancer(t, balancerConfig([a]), engine);
      const held = net.connect({ port: proxy.port, host: '127.0.0.1' });
      held.on('error', () => {});
      const [first] = await once(held, 'data');
      assert.equal(String(first), 'a');
      const ports = await proxy.reload(balancerConfig([a, b]));
      assert.equal(ports.web, proxy.port, 'the frontend kept its listener');
      const next = [0, 1].map(() => net.connect({ port: proxy.port, host: '127.0.0.1' }));
      const names = await Promise.all(
        next.map(async (s) => {
          s.on('error', () => {});
          return String((await once(s, 'data'))[0]);
        }),
      );
      assert.deepEqual(names.sort(), ['a', 'b'], 'new connections use the new set');
      await proxy.reload(balancerConfig([b]));
      const third = net.connect({ port: proxy.port, host: '127.0.0.1' });
      third.on('error', () => {});
      const [answer] = await once(third, 'data');
      assert.equal(String(answer), 'b');
      // The pair on the removed server still works both ways.
      const [socket] = [...a.sockets];
      assert.ok(socket, 'a still holds its connection');
      const echoed = once(held, 'data');
      socket.write('still here');
      assert.equal(String((await echoed)[0]), 'still here');
      const stats = await proxy.stats();
      assert.deepEqual(
        stats.backends.app?.servers.map((s) => s.name),
        ['b'],
      );
      assert.equal(stats.frontends.web?.active, 4);
      for (const s of [held, ...next, third]) s.destroy();
    });
  });
}

test('route hook: a terminated TLS client, its SNI, ALPN, version and cipher', async (t) => {
  const a = await startNamedServer(t, 'a');
  const b = await startNamedServer(t, 'b');
  const ca = await makeCa();
  const cert = writePem(tempDir(t), 'a', await makeCert(ca, ['a.example.com']));
  const seen: RouteInfo[] = [];
  const proxy = await start(
    t,
    {
      frontends: [
        {
          name: 'https',
          listen: '127.0.0.1:0',
          backend: 'app',
          tls: {
            certificates: [{ cert: cert.certFile, key: cert.keyFile }],
            alpn: ['h2', 'http/1.1'],
          },
        },
      ],
      backends: [
        {
          name: 'app',
          servers: [
            { name: 'a', address: `127.0.0.1:${a.port}` },
            { name: 'b', address: `127.0.0.1:${b.port}` },
          ],
        },
      ],
    },
    (info) => {
      seen.push(info);
      return info.tls?.alpn === 'h2' ? 'b' : 'a';
    },
  );
  const ask = async (alpn: string) => {
    const client = tls.connect({
      host: '127.0.0.1',
      port: proxy.addresses().https?.port as number,
      ca: ca.cert,
      servername: 'a.example.com',
      ALPNProtocols: [alpn],
    });
    t.after(() => client.destroy());
    await once(client, 'secureConnect');
    let text = '';
    client.on('data', (c: Buffer) => {
      text += c;
    });
    await once(client, 'end');
    return { text, version: client.getProtocol(), cipher: client.getCipher().name };
  };
  const h2 = await ask('h2');
  assert.equal(h2.text, 'b');
  assert.deepEqual(seen[0]?.tls, {
    sni: 'a.example.com',
    alpn: 'h2',
    version: h2.version,
    cipher: h2.cipher,
  });
  assert.equal(seen[0]?.sni, 'a.example.com');
  assert.equal((await ask('http/1.1')).text, 'a');
  assert.equal(seen[1]?.tls?.alpn, 'http/1.1');
});

test('route hook: a PROXY header client, its TLVs, and `source` balancing on the header address', async (t) => {
  const a = await startNamedServer(t, 'a');
  const b = await startNamedServer(t, 'b');
  const seen: RouteInfo[] = [];
  const proxy = await createProxy(
    {
      frontends: [
        { name: 'web', listen: '127.0.0.1:0', backend: 'app', proxyProtocol: { accept: 'v2' } },
      ],
      backends: [
        {
          name: 'app',
          balance: 'source',
          servers: [
            { name: 'a', address: `127.0.0.1:${a.port}` },
            { name: 'b', address: `127.0.0.1:${b.port}` },
          ],
        },
      ],
    },
    {
      log,
      strictStates: true,
      route(info) {
        seen.push(info);
        return info.proxyHeader?.tlvs?.alpn === 'h2' ? 'b' : undefined;
      },
    },
  );
  t.after(() => proxy.close(true));
  const port = proxy.addresses().web?.port as number;
  const ask = async (header: Buffer) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c;
    });
    socket.write(header);
    await new Promise((resolve) => socket.on('end', resolve));
    socket.destroy();
    return text;
  };
  const h2 = v2WithTlvs(
    Buffer.concat([tlv(0x01, Buffer.from('h2')), tlv(0x02, Buffer.from('api.example'))]),
  );
  assert.equal(await ask(h2), 'b');
  assert.equal(seen[0]?.clientAddress, '192.0.2.1');
  assert.equal(seen[0]?.clientPort, 1000);
  assert.equal(seen[0]?.proxyHeader?.tlvs?.authority, 'api.example');
  assert.equal(seen[0]?.proxyHeader?.destinationAddress, '192.0.2.2');
  // Without ALPN the balancer picks by the header's address: the same one every time.
  const plain = v2WithTlvs(Buffer.alloc(0));
  const answers = new Set<string>();
  for (let i = 0; i < 5; i++) answers.add(await ask(plain));
  assert.equal(answers.size, 1);
});
