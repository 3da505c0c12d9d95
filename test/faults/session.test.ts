// Faults around a session's setup and endings, each reproduced on real loopback sockets:
// a client that leaves while it waits, a half-closed pair with `halfClosed: 0`, and the proxy's
// own descriptor shortage (which must not be blamed on a healthy server).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { closedWithin, holdOpen, inParallel, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import {
  balancerConfig,
  server,
  startNamedServer,
  startServer,
  whoAnswers,
} from '../support/servers.ts';

/** A client that connects and waits for its server (sending nothing). */
async function waiting(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

for (const engine of ENGINES) {
  describe(`session faults (${engine} engine)`, { timeout: 60_000 }, () => {
    for (const how of ['reset', 'close'] as const) {
      test(`a queued client that leaves (${how}) frees its place in the queue`, async (t) => {
        const a = await startNamedServer(t, 'a', { hold: true });
        const proxy = await startBalancer(
          t,
          balancerConfig([a], { queueTimeout: '30s', maxQueued: 1 }, { a: { maxConnections: 1 } }),
          engine,
        );
        const { socket: first } = await holdOpen(proxy.port);
        const second = await waiting(proxy.port);
        await waitFor(async () => (await proxy.stats()).backends.app?.queued === 1, 5000, 'queued');
        if (how === 'reset') second.resetAndDestroy();
        else second.destroy();
        // Noticed while it waits (not only when a slot frees): the queue is empty again.
        await waitFor(
          async () => (await proxy.stats()).backends.app?.queued === 0,
          5000,
          'the queue to forget the client that left',
        );
        const stats = await proxy.stats();
        assert.equal(stats.frontends.web?.active, 1, 'only the connected client is left');
        // Its place is free: the next client queues instead of being turned away as queue_full.
        const third = await waiting(proxy.port);
        const thirdData = once(third, 'data');
        await waitFor(async () => (await proxy.stats()).backends.app?.queued === 1, 5000, 'queued');
        first.resetAndDestroy(); // the held server keeps a half-closed pair (and its slot) open
        const [data] = await thirdData;
        assert.equal(String(data), 'a');
        assert.equal((await proxy.stats()).frontends.web?.closed.queue_full ?? 0, 0);
        assert.equal(a.hits, 2, 'the client that left never reached the server');
        third.destroy();
      });
    }

    test('a queued client that sent bytes and FIN still reaches the server with them', async (t) => {
      let firstServer: net.Socket | null = null;
      const got: Buffer[] = [];
      const { port } = await startServer(t, (socket) => {
        if (firstServer === null) {
          firstServer = socket;
          socket.on('end', () => socket.end());
          socket.write('x');
          return;
        }
        socket.on('data', (c: Buffer) => got.push(c));
        socket.on('end', () => socket.end('bye'));
      });
      const proxy = await startBalancer(
        t,
        balancerConfig(
          [{ name: 'a', port }],
          { queueTimeout: '30s' },
          { a: { maxConnections: 1 } },
        ),
        engine,
      );
      const { socket: first } = await holdOpen(proxy.port);
      const second = await waiting(proxy.port);
      const reply: Buffer[] = [];
      second.on('data', (c: Buffer) => reply.push(c));
      second.end('request');
      await waitFor(async () => (await proxy.stats()).backends.app?.queued === 1, 5000, 'queued');
      await sleep(200);
      assert.equal((await proxy.stats()).backends.app?.queued, 1, 'a half-close is not leaving');
      first.destroy();
      await once(second, 'end');
      assert.equal(Buffer.concat(got).toString(), 'request');
      assert.equal(Buffer.concat(reply).toString(), 'bye');
    });

    test('halfClosed: 0 leaves the idle timeout in force for a half-closed pair', async (t) => {
      // The server never answers FIN with FIN: the pair stays half-closed.
      const { port } = await startServer(t, () => {});
      const config = {
        ...balancerConfig([{ name: 'a', port }]),
        timeouts: { idle: '300ms', halfClosed: 0 },
      };
      const proxy = await startBalancer(t, config, engine);
      const client = await waiting(proxy.port);
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.states.READING === 1,
        5000,
        'connected',
      );
      client.end();
      await closedWithin(client, 10_000);
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.closed.idle_timeout === 1,
        5000,
        'closed as idle',
      );
    });

    test('descriptor shortage (ulimit -n 256, 300 clients) is the proxy’s, not the server’s', async (t) => {
      const a = await startNamedServer(t, 'a', { hold: true });
      const config = balancerConfig([a], {
        healthCheck: { interval: '50ms', timeout: '1s', fall: 1, rise: 100 },
      });
      const proxy = await startBalancer(t, config, engine, { nofile: 256 });
      const clients: net.Socket[] = [];
      await inParallel(300, 50, async () => {
        const socket = net.connect({ port: proxy.port, host: '127.0.0.1' });
        socket.on('error', () => {});
        clients.push(socket);
        await Promise.race([once(socket, 'data'), once(socket, 'close'), sleep(3000)]);
      });
      // Long enough for several checks to run (and fail) while the descriptors are gone.
      await sleep(500);
      const during = await proxy.stats();
      for (const c of clients) c.resetAndDestroy(); // the held server would keep a FIN'd pair open
      await waitFor(
        async () => (await proxy.stats()).frontends.web?.active === 0,
        10_000,
        'clients gone',
      );
      assert.equal(server(during, 'a').up, true, 'a healthy server is not marked down');
      assert.equal(server(await proxy.stats(), 'a').up, true);
      assert.ok(
        (during.backends.app?.localErrors ?? 0) > 0,
        'the shortage is counted as a local error',
      );
      assert.equal(await whoAnswers(proxy.port), 'a');
    });
  });
}
