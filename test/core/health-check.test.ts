// Active health checks on real sockets: rise and fall, send/expect, and a server killed and
// restarted in the middle of 2,000 connections.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';
import { inParallel, sleep, tally, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import {
  balancerConfig,
  server,
  startNamedServer,
  startServer,
  whoAnswers,
} from '../support/servers.ts';

const INTERVAL = 100;

for (const engine of ENGINES) {
  describe(`health checks (${engine} engine)`, { timeout: 60_000 }, () => {
    test('fall checks in a row take a server down, rise bring it back; no traffic meanwhile', async (t) => {
      const a = await startNamedServer(t, 'a');
      const b = await startNamedServer(t, 'b');
      const rise = 3;
      const fall = 2;
      const proxy = await startBalancer(
        t,
        balancerConfig([a, b], {
          healthCheck: { interval: `${INTERVAL}ms`, timeout: `${INTERVAL}ms`, rise, fall },
          retries: 0,
        }),
        engine,
      );
      await waitFor(async () => server(await proxy.stats(), 'a').checks >= 2, 2000, 'checks run');
      assert.equal(server(await proxy.stats(), 'a').checkFailures, 0);

      await a.kill();
      const killedAt = Date.now();
      await waitFor(async () => !server(await proxy.stats(), 'a').up, 3000, 'a down');
      const downAfter = Date.now() - killedAt;
      // fall checks, the first one interval away at most; plus slack for polling and load.
      assert.ok(downAfter <= fall * INTERVAL + 400, `down after ${downAfter} ms`);
      const attempts = server(await proxy.stats(), 'a').connections;
      const answers = tally(await inParallel(40, 8, () => whoAnswers(proxy.port)));
      assert.deepEqual(answers, { b: 40 }, 'no client failed, none sent to a');
      assert.equal(server(await proxy.stats(), 'a').connections, attempts);

      await a.restart();
      const restartedAt = Date.now();
      await waitFor(async () => server(await proxy.stats(), 'a').up, 3000, 'a up');
      const upAfter = Date.now() - restartedAt;
      assert.ok(upAfter <= rise * INTERVAL + 400, `up after ${upAfter} ms`);
      const later = tally(await inParallel(40, 8, () => whoAnswers(proxy.port)));
      assert.deepEqual(later, { a: 20, b: 20 });
    });

    test('passive evidence: failed connects of real traffic take a server down between checks', async (t) => {
      const a = await startNamedServer(t, 'a');
      const b = await startNamedServer(t, 'b');
      // Checks far apart: only real traffic can notice within the test.
      const proxy = await startBalancer(
        t,
        balancerConfig([a, b], { retries: 1, healthCheck: { interval: '1m', fall: 2 } }),
        engine,
      );
      await a.kill();
      const answers = tally(await inParallel(20, 1, () => whoAnswers(proxy.port)));
      assert.deepEqual(answers, { b: 20 }, 'retries hid the failures');
      const stats = await proxy.stats();
      assert.equal(server(stats, 'a').up, false);
      assert.equal(server(stats, 'a').checks, 0, 'no active check ran');
      assert.equal(
        server(stats, 'a').failures,
        2,
        'down after fall failed connects, then left alone',
      );
    });

    test('send/expect: a server that answers wrongly goes down, the right one stays up', async (t) => {
      const respond = (reply: string) => (socket: net.Socket) => {
        socket.once('data', () => socket.end(reply));
      };
      const good = await startServer(t, respond('PONG ok\n'));
      const bad = await startServer(t, respond('NOPE\n'));
      const silent = await startServer(t, () => {});
      const proxy = await startBalancer(
        t,
        balancerConfig(
          [
            { name: 'good', port: good.port },
            { name: 'bad', port: bad.port },
            { name: 'silent', port: silent.port },
          ],
          {
            healthCheck: {
              interval: `${INTERVAL}ms`,
              timeout: `${INTERVAL}ms`,
              fall: 2,
              send: 'PING\n',
              expect: 'PONG',
            },
          },
        ),
        engine,
      );
      await waitFor(
        async () => {
          const stats = await proxy.stats();
          return !server(stats, 'bad').up && !server(stats, 'silent').up;
        },
        3000,
        'bad and silent down',
      );
      const stats = await proxy.stats();
      assert.equal(server(stats, 'good').up, true);
      assert.ok(server(stats, 'good').checks >= 2);
      assert.equal(server(stats, 'good').checkFailures, 0);
    });

    test('one of three killed during 2,000 connections: after detection no client fails or reaches it; restarted, it gets traffic within rise x interval', async (t) => {
      const servers = await Promise.all(['a', 'b', 'c'].map((n) => startNamedServer(t, n)));
      const [, b] = servers as [unknown, (typeof servers)[number], unknown];
      const rise = 2;
      const proxy = await startBalancer(
        t,
        balancerConfig(servers, {
          retries: 2,
          healthCheck: { interval: `${INTERVAL}ms`, timeout: `${INTERVAL}ms`, rise, fall: 2 },
        }),
        engine,
      );
      const answers: string[] = [];
      let killedAt = 0;
      let detectedAt = 0;
      let attemptsAtDetection = 0;
      let failedAfterDetection = 0;
      let restartedAt = 0;
      let attemptsAtRestart = 0;
      // 2,000 connections in batches of 10, with a short pause so detection and recovery happen
      // while the loop runs.
      for (let batch = 0; batch < 200; batch++) {
        if (batch === 30) {
          await b.kill();
          killedAt = Date.now();
        }
        if (killedAt && !detectedAt && !server(await proxy.stats(), 'b').up) {
          detectedAt = Date.now();
          attemptsAtDetection = server(await proxy.stats(), 'b').connections;
        }
        if (detectedAt && !restartedAt && batch >= 120) {
          attemptsAtRestart = server(await proxy.stats(), 'b').connections;
          await b.restart();
          restartedAt = Date.now();
        }
        const got = await inParallel(10, 10, () => whoAnswers(proxy.port));
        if (detectedAt) failedAfterDetection += got.filter((x) => x === '').length;
        answers.push(...got);
        await sleep(5);
      }
      assert.ok(detectedAt, 'the kill was detected');
      assert.ok(restartedAt, 'b was restarted during the loop');
      assert.equal(answers.length, 2000);
      assert.equal(failedAfterDetection, 0, 'no client failed after detection');
      // Retries cover even the detection window: no client failed at all.
      assert.equal(tally(answers)[''], undefined, `answers: ${JSON.stringify(tally(answers))}`);
      assert.equal(attemptsAtRestart, attemptsAtDetection, 'no connection sent to b while down');
      // Back: traffic within rise x interval (plus slack for timers and load).
      await waitFor(() => b.firstHitAt > 0, 3000, 'b gets traffic again');
      const back = b.firstHitAt - restartedAt;
      assert.ok(back <= rise * INTERVAL + 400, `b back after ${back} ms`);
      assert.ok(b.hits > 0);
    });
  });
}
