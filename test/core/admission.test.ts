// Admission control: allow/deny (by the PROXY header's address too), per-source connections and
// rates, the frontend's accept rate, maxLifetime; on real sockets with distinct loopback sources
// (127.0.0.5, 127.0.0.6), both engines. The per-address table's cap, in process.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { Admission } from '../../src/core/admission.ts';
import { closedWithin, connect, inParallel, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { balancerConfig, startNamedServer, startServer, whoAnswers } from '../support/servers.ts';

function withFrontend(config: ReturnType<typeof balancerConfig>, extra: Record<string, unknown>) {
  return { ...config, frontends: [{ ...config.frontends[0], ...extra }] };
}

/** Clients from `localAddress`, `concurrency` at a time, for `ms`: how many were served. */
async function hammer(port: number, localAddress: string, ms: number, concurrency: number) {
  const started = Date.now();
  let served = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() - started < ms) {
        const who = await whoAnswers(port, { localAddress, ms: 2000 });
        if (who === '') refused++;
        else served++;
      }
    }),
  );
  return { served, refused, seconds: (Date.now() - started) / 1000 };
}

for (const engine of ENGINES) {
  describe(`admission (${engine} engine)`, () => {
    test('deny by the PROXY header address; another header address is served', async (t) => {
      const a = await startNamedServer(t, 'a');
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), {
          proxyProtocol: { accept: 'v1' },
          deny: ['192.0.2.0/24'],
        }),
        engine,
      );
      const ask = async (src: string) => {
        const socket = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
        socket.on('error', () => {});
        let text = '';
        socket.on('data', (c: Buffer) => {
          text += c;
        });
        socket.write(`PROXY TCP4 ${src} 10.0.0.1 1234 443\r\n`);
        await closedWithin(socket, 3000);
        await sleep(20);
        socket.destroy();
        return text;
      };
      assert.equal(await ask('192.0.2.77'), '');
      assert.equal(await ask('198.51.100.1'), 'a');
      const stats = (await p.stats()).frontends.web;
      assert.equal(stats?.rejected.denied, 1);
      assert.equal(a.hits, 1, 'the denied client never reached the server');
    });

    test('allow-only: one source served, another refused', async (t) => {
      const a = await startNamedServer(t, 'a');
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), { allow: ['127.0.0.5'] }),
        engine,
      );
      assert.equal(await whoAnswers(p.port, { localAddress: '127.0.0.6' }), '');
      assert.equal(await whoAnswers(p.port, { localAddress: '127.0.0.5' }), 'a');
      assert.equal((await p.stats()).frontends.web?.rejected.denied, 1);
      assert.equal(a.hits, 1);
    });

    test('perSourceConnections: the 4th from one source is closed while another source is served', async (t) => {
      const a = await startNamedServer(t, 'a', { hold: true });
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), { limits: { perSourceConnections: 3 } }),
        engine,
      );
      const held = await Promise.all(
        [1, 2, 3].map(async () => {
          const s = net.connect({ port: p.port, host: '127.0.0.1', localAddress: '127.0.0.5' });
          s.on('error', () => {});
          await new Promise((r) => s.once('data', r));
          return s;
        }),
      );
      assert.equal(await whoAnswers(p.port, { localAddress: '127.0.0.5', ms: 2000 }), '');
      assert.equal(await whoAnswers(p.port, { localAddress: '127.0.0.6', ms: 2000 }), 'a');
      assert.equal((await p.stats()).frontends.web?.rejected.source_limit, 1);
      // One closes: the source may open one again.
      (held.pop() as net.Socket).resetAndDestroy(); // RST: the held server side goes too
      const fromFive = async () =>
        (await p.connections()).filter((c) => c.client.startsWith('127.0.0.5:')).length;
      await waitFor(async () => (await fromFive()) === 2, 3000, 'a freed slot');
      assert.equal(await whoAnswers(p.port, { localAddress: '127.0.0.5', ms: 2000 }), 'a');
      for (const s of held) s.destroy();
    });

    test('perSourceRate 20/s: one source gets 20/s (±20 %, after its 1 s burst), another is unaffected', async (t) => {
      const a = await startNamedServer(t, 'a');
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), {
          limits: { perSourceRate: '20/s' },
          maxConnections: 500,
        }),
        engine,
      );
      const [flood, other] = await Promise.all([
        hammer(p.port, '127.0.0.5', 3000, 8),
        (async () => {
          await sleep(1500);
          return whoAnswers(p.port, { localAddress: '127.0.0.6' });
        })(),
      ]);
      const expected = 20 + 20 * flood.seconds; // the burst (one second's worth), then the rate
      assert.ok(
        Math.abs(flood.served - expected) <= expected * 0.2,
        `served ${flood.served} in ${flood.seconds} s, expected ${expected.toFixed(0)} ±20 %`,
      );
      assert.ok(flood.refused > 0);
      assert.equal(other, 'a', 'the other source is served');
      const stats = (await p.stats()).frontends.web;
      assert.equal(stats?.rejected.source_rate, flood.refused);
    });

    test('acceptRate 50/s: the frontend takes 50/s (±20 %, after its burst)', async (t) => {
      const a = await startNamedServer(t, 'a');
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), { limits: { acceptRate: '50/s' }, maxConnections: 500 }),
        engine,
      );
      const [x, y] = await Promise.all([
        hammer(p.port, '127.0.0.5', 3000, 8),
        hammer(p.port, '127.0.0.6', 3000, 8),
      ]);
      const served = x.served + y.served;
      const seconds = Math.max(x.seconds, y.seconds);
      const expected = 50 + 50 * seconds;
      assert.ok(
        Math.abs(served - expected) <= expected * 0.2,
        `served ${served} in ${seconds} s, expected ${expected.toFixed(0)} ±20 %`,
      );
      assert.equal((await p.stats()).frontends.web?.rejected.accept_rate, x.refused + y.refused);
    });

    test('maxLifetime closes an active stream', async (t) => {
      const backend = await startServer(t, (socket) => socket.pipe(socket));
      const config = withFrontend(balancerConfig([{ name: 'a', port: backend.port }]), {
        limits: { maxLifetime: '1s' },
      });
      const p = await startBalancer(t, config, engine);
      const socket = await connect(p.port);
      socket.on('error', () => {});
      const started = Date.now();
      let echoed = 0;
      socket.on('data', (c: Buffer) => {
        echoed += c.length;
      });
      const writer = setInterval(() => socket.write('tick'), 50);
      t.after(() => clearInterval(writer));
      await closedWithin(socket, 4000);
      clearInterval(writer);
      const ms = Date.now() - started;
      assert.ok(ms >= 900, `closed after ${ms} ms`);
      assert.ok(echoed > 0, 'the stream was active');
      await waitFor(
        async () => (await p.stats()).frontends.web?.closed.max_lifetime === 1,
        2000,
        'closed as max_lifetime',
      );
    });

    test('200 sources at once, perSourceConnections 1: every source served once', async (t) => {
      const a = await startNamedServer(t, 'a');
      const p = await startBalancer(
        t,
        withFrontend(balancerConfig([a]), {
          limits: { perSourceConnections: 1 },
          maxConnections: 1000,
        }),
        engine,
      );
      const answers = await inParallel(200, 200, (i) =>
        whoAnswers(p.port, { localAddress: `127.0.${1 + (i >> 8)}.${1 + (i & 255)}` }),
      );
      assert.equal(answers.filter((x) => x === 'a').length, 200);
    });
  });
}

test('the per-address table is capped: the least recently seen idle address goes, open ones stay', () => {
  let now = 0;
  const admission = new Admission(
    { limits: { perSourceConnections: 1, perSourceRate: { perSecond: 1 }, maxLifetime: 0 } },
    10,
    () => now,
    100,
  );
  t_after(admission);
  assert.equal(admission.admit('10.0.0.1'), null); // stays open
  for (let i = 0; i < 10_000; i++) {
    now++;
    assert.equal(admission.admit(`10.1.${i >> 8}.${i & 255}`), null);
    admission.release(admission.keyOf(`10.1.${i >> 8}.${i & 255}`) as string);
  }
  assert.equal(admission.trackedSources, 100);
  assert.ok(admission.evicted >= 9_900);
  // 10.0.0.1 was not forgotten: its open connection is still counted.
  assert.equal(admission.admit('10.0.0.1'), 'source_limit');
  // The sweep forgets idle addresses once their bucket is full again.
  now += 60_000;
  admission.sweep();
  assert.equal(admission.trackedSources, 1);
  admission.stop();
});

function t_after(a: Admission) {
  process.once('exit', () => a.stop());
}
