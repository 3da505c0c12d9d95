// Choosing servers on real loopback sockets: weights, leastconn, source, random, retries,
// backups, no server up, and the per-server connection limit with its queue.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { closedWithin, holdOpen, inParallel, sleep, tally, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import {
  balancerConfig,
  closedPort,
  server,
  startNamedServer,
  whoAnswers,
} from '../support/servers.ts';

for (const engine of ENGINES) {
  describe(`balancing (${engine} engine)`, { timeout: 60_000 }, () => {
    test('roundrobin weights 1:2:3 over 4,000 connections: smooth, each within ±5 points', async (t) => {
      const servers = await Promise.all(['a', 'b', 'c'].map((n) => startNamedServer(t, n)));
      const weights: Record<string, number> = { a: 1, b: 2, c: 3 };
      const proxy = await startBalancer(
        t,
        balancerConfig(servers, {}, { a: { weight: 1 }, b: { weight: 2 }, c: { weight: 3 } }),
        engine,
      );
      // One at a time, the order is the balancer's: interleaved, no run longer than needed.
      let order = '';
      for (let i = 0; i < 12; i++) order += await whoAnswers(proxy.port);
      assert.equal(order, 'cbacbccbacbc');
      const answers = await inParallel(3988, 50, () => whoAnswers(proxy.port));
      const counts = tally(answers);
      assert.equal(counts[''], undefined, 'every client got an answer');
      for (const [name, weight] of Object.entries(weights)) {
        const share: number = ((counts[name] ?? 0) + (order.split(name).length - 1)) / 4000;
        assert.ok(Math.abs(share - weight / 6) <= 0.05, `${name}: ${share} vs ${weight / 6}`);
      }
    });

    test('leastconn: a new connection goes to the server with the fewest active', async (t) => {
      const servers = await Promise.all(
        ['a', 'b', 'c'].map((n) => startNamedServer(t, n, { hold: true })),
      );
      const proxy = await startBalancer(
        t,
        balancerConfig(servers, { balance: 'leastconn' }),
        engine,
      );
      const held = [];
      for (let i = 0; i < 6; i++) held.push(await holdOpen(proxy.port));
      assert.deepEqual(tally(held.map((h) => h.name)), { a: 2, b: 2, c: 2 });
      // A reset, so the proxy closes both sides (a FIN would leave the pair half-closed).
      for (const h of held.filter((x) => x.name === 'a')) h.socket.resetAndDestroy();
      await waitFor(async () => server(await proxy.stats(), 'a').active === 0, 2000, 'a drained');
      const next = [await holdOpen(proxy.port), await holdOpen(proxy.port)];
      assert.deepEqual(
        next.map((h) => h.name),
        ['a', 'a'],
      );
      for (const h of [...held, ...next]) h.socket.destroy();
    });

    test('source: a client address stays on one server; different clients spread', async (t) => {
      const servers = await Promise.all(['a', 'b', 'c'].map((n) => startNamedServer(t, n)));
      const proxy = await startBalancer(t, balancerConfig(servers, { balance: 'source' }), engine);
      const chosen = new Set<string>();
      for (let c = 2; c < 14; c++) {
        const localAddress = `127.0.0.${c}`;
        const answers = [];
        for (let i = 0; i < 4; i++) answers.push(await whoAnswers(proxy.port, { localAddress }));
        assert.equal(new Set(answers).size, 1, `${localAddress} stuck: ${answers}`);
        assert.notEqual(answers[0], '');
        chosen.add(answers[0] as string);
      }
      assert.ok(chosen.size >= 2, `12 clients on ${chosen.size} server(s)`);
    });

    test('random: power of two choices keeps held connections even', async (t) => {
      const servers = await Promise.all(
        ['a', 'b', 'c'].map((n) => startNamedServer(t, n, { hold: true })),
      );
      const proxy = await startBalancer(t, balancerConfig(servers, { balance: 'random' }), engine);
      const held = [];
      for (let i = 0; i < 30; i++) held.push(await holdOpen(proxy.port));
      const counts = Object.values(tally(held.map((h) => h.name)));
      assert.equal(counts.length, 3);
      // Simulated, the spread of 30 over 3 exceeds 5 once in ~20,000 runs (uniform random:
      // about 40% of runs).
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 5, `spread ${counts}`);
      for (const h of held) h.socket.destroy();
    });

    test('retries: a refused connect goes to another server; no client notices', async (t) => {
      const b = await startNamedServer(t, 'b');
      const c = await startNamedServer(t, 'c');
      const dead = { name: 'a', port: await closedPort() };
      const proxy = await startBalancer(t, balancerConfig([dead, b, c], { retries: 2 }), engine);
      const answers = await inParallel(60, 10, () => whoAnswers(proxy.port));
      const counts = tally(answers);
      assert.equal(counts[''], undefined, `every client answered: ${JSON.stringify(counts)}`);
      assert.equal((counts.b ?? 0) + (counts.c ?? 0), 60);
      const stats = await proxy.stats();
      assert.ok(server(stats, 'a').failures >= 10, 'a was tried and failed');
      assert.equal(stats.frontends.web?.closed.connect_failed, undefined);
    });

    test('retries used up: the client is closed, counted as connect_failed', async (t) => {
      const dead = [
        { name: 'a', port: await closedPort() },
        { name: 'b', port: await closedPort() },
      ];
      const proxy = await startBalancer(t, balancerConfig(dead, { retries: 1 }), engine);
      assert.equal(await whoAnswers(proxy.port), '');
      const stats = await proxy.stats();
      assert.equal(server(stats, 'a').failures + server(stats, 'b').failures, 2);
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.closed.connect_failed === 1,
        1000,
        'counted',
      );
    });

    test('no server up: the client is closed at once, reason no_server', async (t) => {
      const dead = { name: 'a', port: await closedPort() };
      const proxy = await startBalancer(
        t,
        balancerConfig([dead], { healthCheck: { interval: '100ms', fall: 1 } }),
        engine,
      );
      await waitFor(async () => !server(await proxy.stats(), 'a').up, 2000, 'a down');
      const socket = net.connect({ port: proxy.port, host: '127.0.0.1' });
      socket.on('error', () => {});
      await once(socket, 'connect');
      const started = Date.now();
      await closedWithin(socket, 1000);
      assert.ok(Date.now() - started < 200, `closed after ${Date.now() - started} ms`);
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.closed.no_server === 1,
        1000,
        'counted',
      );
      const stats = await proxy.stats();
      assert.equal(server(stats, 'a').connections, 0, 'no connect was even tried');
    });

    test('backup: takes traffic only while no regular server is up', async (t) => {
      const a = await startNamedServer(t, 'a');
      const spare = await startNamedServer(t, 'spare');
      const proxy = await startBalancer(
        t,
        balancerConfig(
          [a, spare],
          { healthCheck: { interval: '100ms', rise: 1, fall: 1 } },
          { spare: { backup: true } },
        ),
        engine,
      );
      const some = async () => tally(await inParallel(10, 5, () => whoAnswers(proxy.port)));
      assert.deepEqual(await some(), { a: 10 });
      await a.kill();
      await waitFor(async () => !server(await proxy.stats(), 'a').up, 2000, 'a down');
      assert.deepEqual(await some(), { spare: 10 });
      await a.restart();
      await waitFor(async () => server(await proxy.stats(), 'a').up, 2000, 'a up');
      assert.deepEqual(await some(), { a: 10 });
    });

    test('per-server maxConnections: the excess waits, proceeds when a slot frees; a full queue closes at once', async (t) => {
      const a = await startNamedServer(t, 'a', { hold: true });
      const proxy = await startBalancer(
        t,
        balancerConfig([a], { queueTimeout: '2s', maxQueued: 1 }, { a: { maxConnections: 1 } }),
        engine,
      );
      const first = await holdOpen(proxy.port);
      assert.equal(first.name, 'a');
      // The second waits: connected to the proxy, nothing from the server, not closed.
      const second = net.connect({ port: proxy.port, host: '127.0.0.1' });
      second.on('error', () => {});
      const secondData = once(second, 'data');
      await once(second, 'connect');
      await waitFor(async () => (await proxy.stats()).backends.app?.queued === 1, 1000, 'queued');
      const stats = await proxy.stats();
      assert.equal(stats.frontends.web?.states.QUEUED, 1);
      assert.deepEqual((await proxy.connections()).map((c) => [c.state, c.server]).sort(), [
        ['QUEUED', null],
        ['READING', 'a'],
      ]);
      assert.equal(a.hits, 1, 'the server saw one connection only');
      // The queue holds one: a third client is closed at once.
      const third = net.connect({ port: proxy.port, host: '127.0.0.1' });
      third.on('error', () => {});
      await closedWithin(third, 1000);
      await sleep(200);
      assert.equal(second.readableEnded, false, 'the waiting client is still open');
      first.socket.resetAndDestroy();
      const [data] = await secondData;
      assert.equal(String(data), 'a');
      const after = await proxy.stats();
      assert.equal(after.frontends.web?.closed.queue_full, 1);
      assert.equal(after.backends.app?.queued, 0);
      second.destroy();
    });

    test('queue timeout: a client that waits too long is closed, reason queue_timeout', async (t) => {
      const a = await startNamedServer(t, 'a', { hold: true });
      const proxy = await startBalancer(
        t,
        balancerConfig([a], { queueTimeout: '300ms' }, { a: { maxConnections: 1 } }),
        engine,
      );
      const first = await holdOpen(proxy.port);
      const waiting = net.connect({ port: proxy.port, host: '127.0.0.1' });
      waiting.on('error', () => {});
      let got = 0;
      waiting.on('data', (c: Buffer) => {
        got += c.length;
      });
      await once(waiting, 'connect');
      const started = Date.now();
      await closedWithin(waiting, 2000);
      const waited = Date.now() - started;
      assert.ok(waited >= 250 && waited < 1000, `closed after ${waited} ms`);
      assert.equal(got, 0);
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.closed.queue_timeout === 1,
        1000,
        'counted',
      );
      const stats = await proxy.stats();
      assert.equal(stats.backends.app?.queueTimeouts, 1);
      assert.equal(a.hits, 1);
      first.socket.destroy();
    });
  });
}
