// Service discovery through a DNS server the test runs (test/support/dns-server.ts), on both
// engines: A records, SRV records, servers joining and leaving (draining), DNS going away,
// answering garbage, slowly, or too much, and a name that resolves only after start.
// Servers found through A records share a port, so they listen on 127.0.0.2, 127.0.0.3, ...
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import pino from 'pino';
import { createProxy } from '../../src/api.ts';
import type { SwitchyardStats } from '../../src/stats.ts';
import { inParallel, sleep, tally, waitFor } from '../support/clients.ts';
import { type DnsServer, startDnsServer } from '../support/dns-server.ts';
import { ENGINES } from '../support/proc.ts';
import { type BalancerProcess, startBalancer } from '../support/proxy-process.ts';
import { closedPort, type NamedServer, startNamedServer, whoAnswers } from '../support/servers.ts';

/** A config of one frontend and backend "app" discovering `discover` through `dns`. */
function discoveryConfig(dns: DnsServer, discover: Record<string, unknown>, backend = {}) {
  return {
    logLevel: 'error',
    resolvers: [dns.address],
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
    backends: [{ name: 'app', discover: { every: '1s', ...discover }, ...backend }],
  };
}

/** Named servers on 127.0.0.N:port (one port, several loopback addresses), as A records give. */
async function serversOn(t: TestContext, names: string[]): Promise<NamedServer[]> {
  const port = await closedPort();
  return Promise.all(
    names.map((name, i) => startNamedServer(t, name, { host: `127.0.0.${i + 2}`, port })),
  );
}

const serversOf = (stats: SwitchyardStats) => stats.backends.app?.servers ?? [];
const namesOf = (stats: SwitchyardStats) => serversOf(stats).map((s) => s.name);

/** Waits until the proxy lists exactly `names` (sorted) as servers of "app". */
async function waitForServers(proxy: BalancerProcess, names: string[], what: string) {
  const want = [...names].sort().join(',');
  await waitFor(
    async () =>
      namesOf(await proxy.stats())
        .sort()
        .join(',') === want,
    10_000,
    what,
  );
}

/** Opens a connection and reads the server's name; the connection stays open. */
async function holdOpen(port: number): Promise<{ socket: net.Socket; name: string }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  const [data] = await once(socket, 'data');
  return { socket, name: String(data) };
}

for (const engine of ENGINES) {
  describe(`DNS discovery (${engine} engine)`, { timeout: 60_000 }, () => {
    test('one A record: every connection goes to it; it is listed as ADDRESS:PORT', async (t) => {
      const dns = await startDnsServer(t);
      const [a] = (await serversOn(t, ['a'])) as [NamedServer];
      dns.set('app.test', { A: ['127.0.0.2'] });
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { dns: 'app.test', port: a.port }),
        engine,
      );
      await waitForServers(proxy, [`127.0.0.2:${a.port}`], 'the A record as a server');
      const answers = await inParallel(20, 5, () => whoAnswers(proxy.port));
      assert.deepEqual(tally(answers), { a: 20 });
      const app = (await proxy.stats()).backends.app;
      assert.equal(app?.dnsFailures, 0);
      assert.equal(app?.servers[0]?.address, `127.0.0.2:${a.port}`);
    });

    test('two A records: both take traffic; one leaves: new connections avoid it, a held one keeps working, and it goes once drained', async (t) => {
      const dns = await startDnsServer(t);
      const [a] = (await serversOn(t, ['a'])) as [NamedServer];
      // b keeps its connections open, so one can be held through the drain.
      const hold = await startNamedServer(t, 'b', { host: '127.0.0.3', port: a.port, hold: true });
      dns.set('app.test', { A: ['127.0.0.2', '127.0.0.3'] });
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { dns: 'app.test', port: a.port }),
        engine,
      );
      const bName = `127.0.0.3:${a.port}`;
      await waitForServers(proxy, [`127.0.0.2:${a.port}`, bName], 'both A records');
      // Round-robin: a and b alternate; every b connection is held open.
      const held: { socket: net.Socket; name: string }[] = [];
      for (let i = 0; i < 4; i++) held.push(await holdOpen(proxy.port));
      assert.deepEqual(tally(held.map((h) => h.name)).b, 2, 'b takes its share');
      const toB = held.find((h) => h.name === 'b') as { socket: net.Socket };
      // A reset, not a FIN: b (hold) would keep its half of a half-closed pair open.
      for (const h of held) if (h.socket !== toB.socket) h.socket.resetAndDestroy();

      dns.set('app.test', { A: ['127.0.0.2'] });
      await waitFor(
        async () => serversOf(await proxy.stats()).find((s) => s.name === bName)?.weight === 0,
        10_000,
        'b leaves the answer and is drained (weight 0), still listed',
      );
      const answers = await inParallel(20, 5, () => holdOpen(proxy.port));
      assert.deepEqual(tally(answers.map((h) => h.name)), { a: 20 }, 'new connections avoid b');
      for (const h of answers) h.socket.destroy();
      await waitFor(
        async () =>
          hold.sockets.size === 1 &&
          serversOf(await proxy.stats()).find((s) => s.name === bName)?.active === 1,
        10_000,
        'b is listed while its one held connection lasts',
      );
      // The held connection to b still carries bytes both ways.
      const [serverSide] = [...hold.sockets];
      const got = once(toB.socket, 'data');
      serverSide?.write('still here');
      assert.equal(String((await got)[0]), 'still here');
      const back = once(serverSide as net.Socket, 'data');
      toB.socket.write('ping');
      assert.equal(String((await back)[0]), 'ping');
      toB.socket.resetAndDestroy();
      await waitForServers(proxy, [`127.0.0.2:${a.port}`], 'b goes from stats once drained');
    });

    test('SRV: targets, ports and weights; a lower priority is a backup', async (t) => {
      const dns = await startDnsServer(t);
      const a = await startNamedServer(t, 'a');
      const b = await startNamedServer(t, 'b');
      const c = await startNamedServer(t, 'c');
      dns.set('_app._tcp.svc.test', {
        SRV: [
          { target: 'one.svc.test', port: a.port, weight: 1, priority: 10 },
          { target: 'two.svc.test', port: b.port, weight: 3, priority: 10 },
          { target: 'three.svc.test', port: c.port, weight: 5, priority: 20 },
        ],
      });
      dns.set('one.svc.test', { A: ['127.0.0.1'] });
      dns.set('two.svc.test', { A: ['127.0.0.1'] });
      dns.set('three.svc.test', { A: ['127.0.0.1'] });
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { srv: '_app._tcp.svc.test' }),
        engine,
      );
      const names = [a, b, c].map((s) => `127.0.0.1:${s.port}`);
      await waitForServers(proxy, names, 'the three SRV targets');
      const byName = new Map(serversOf(await proxy.stats()).map((s) => [s.name, s]));
      assert.equal(byName.get(names[0] as string)?.weight, 1);
      assert.equal(byName.get(names[1] as string)?.weight, 3);
      assert.equal(byName.get(names[2] as string)?.backup, true, 'priority 20 is a backup');
      let order = '';
      for (let i = 0; i < 8; i++) order += await whoAnswers(proxy.port);
      assert.deepEqual(tally(order.split('')), { a: 2, b: 6 }, 'weights 1:3, backup unused');
    });

    test('the DNS server stops, answers garbage, SERVFAIL or too slowly: the last answer stays in use and failures are counted', async (t) => {
      const dns = await startDnsServer(t);
      const [a] = (await serversOn(t, ['a'])) as [NamedServer];
      dns.set('app.test', { A: ['127.0.0.2'] });
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { dns: 'app.test', port: a.port }),
        engine,
      );
      await waitForServers(proxy, [`127.0.0.2:${a.port}`], 'the first answer');
      let failures = 0;
      for (const mode of ['garbage', 'servfail', 'slow', 'silent'] as const) {
        dns.mode = mode;
        dns.delayMs = 10_000; // far past the resolver's timeout × tries
        await waitFor(
          async () => ((await proxy.stats()).backends.app?.dnsFailures ?? 0) > failures,
          15_000,
          `a failed resolution counted (${mode})`,
        );
        failures = (await proxy.stats()).backends.app?.dnsFailures ?? 0;
        assert.deepEqual(namesOf(await proxy.stats()), [`127.0.0.2:${a.port}`], mode);
        assert.equal(await whoAnswers(proxy.port), 'a', `traffic flows (${mode})`);
      }
      await dns.stop();
      await waitFor(
        async () => ((await proxy.stats()).backends.app?.dnsFailures ?? 0) > failures,
        15_000,
        'a failed resolution counted (server stopped)',
      );
      assert.equal(await whoAnswers(proxy.port), 'a', 'traffic flows (DNS server gone)');
    });

    test('a name that resolves only after start: no server (clients closed) until DNS answers', async (t) => {
      const dns = await startDnsServer(t);
      const [a] = (await serversOn(t, ['a'])) as [NamedServer];
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { dns: 'late.test', port: a.port }),
        engine,
      );
      await waitFor(
        async () => ((await proxy.stats()).backends.app?.dnsFailures ?? 0) > 0,
        10_000,
        'NXDOMAIN counted',
      );
      assert.deepEqual(namesOf(await proxy.stats()), []);
      assert.equal(await whoAnswers(proxy.port), '', 'no server: the client is closed');
      assert.equal((await proxy.stats()).frontends.web?.closed.no_server, 1);
      dns.set('late.test', { A: ['127.0.0.2'] });
      await waitForServers(proxy, [`127.0.0.2:${a.port}`], 'the late answer');
      assert.equal(await whoAnswers(proxy.port), 'a');
    });

    test('an answer of 300 addresses (TCP fallback): the first 256 are used', async (t) => {
      const dns = await startDnsServer(t);
      const port = await closedPort();
      const many = Array.from({ length: 300 }, (_, i) => `10.255.${i >> 8}.${i & 255}`);
      dns.set('many.test', { A: many });
      const proxy = await startBalancer(
        t,
        discoveryConfig(dns, { dns: 'many.test', port }, { healthCheck: { interval: '1h' } }),
        engine,
      );
      await waitFor(
        async () => serversOf(await proxy.stats()).length > 0,
        10_000,
        'the big answer',
      );
      const names = namesOf(await proxy.stats());
      assert.equal(names.length, 256);
      assert.ok(dns.tcpQueries > 0, 'the truncated UDP answer was asked again over TCP');
      assert.equal(new Set(names).size, 256);
    });

    test('a joining server with health checks takes traffic once they pass', async (t) => {
      const dns = await startDnsServer(t);
      const [a, b] = (await serversOn(t, ['a', 'b'])) as [NamedServer, NamedServer];
      dns.set('app.test', { A: ['127.0.0.2'] });
      const proxy = await startBalancer(
        t,
        discoveryConfig(
          dns,
          { dns: 'app.test', port: a.port },
          { healthCheck: { interval: '200ms', rise: 2 } },
        ),
        engine,
      );
      await waitFor(
        async () => serversOf(await proxy.stats())[0]?.up === true,
        10_000,
        'a comes up',
      );
      dns.set('app.test', { A: ['127.0.0.2', '127.0.0.3'] });
      const bName = `127.0.0.3:${b.port}`;
      await waitFor(async () => namesOf(await proxy.stats()).includes(bName), 10_000, 'b joins');
      await waitFor(
        async () => serversOf(await proxy.stats()).find((s) => s.name === bName)?.up === true,
        10_000,
        'b rises',
      );
      const answers = await inParallel(10, 1, () => whoAnswers(proxy.port));
      assert.deepEqual(tally(answers), { a: 5, b: 5 });
    });

    test('a static server given by hostname: resolved in core (the engine gets an IP); one that does not resolve is no_server and counted', async (t) => {
      const a = await startNamedServer(t, 'a');
      const proxy = await startBalancer(
        t,
        {
          logLevel: 'error',
          frontends: [
            { name: 'web', listen: '127.0.0.1:0', backend: 'app' },
            { name: 'nowhere', listen: '127.0.0.1:0', backend: 'nowhere' },
          ],
          backends: [
            { name: 'app', servers: [{ name: 'a', address: `localhost:${a.port}` }] },
            {
              name: 'nowhere',
              servers: [{ name: 'x', address: 'no-such-host.invalid:9000' }],
            },
          ],
        },
        engine,
      );
      await waitFor(
        async () => (await proxy.stats()).backends.app?.servers[0]?.up === true,
        10_000,
        'localhost resolves',
      );
      // localhost may resolve to ::1 first; a listens on 127.0.0.1 only, so retries may try again.
      const answers = await inParallel(6, 1, () => whoAnswers(proxy.port));
      assert.ok(answers.includes('a'), `a answers through localhost: ${answers}`);
      await waitFor(
        async () => ((await proxy.stats()).backends.nowhere?.dnsFailures ?? 0) > 0,
        15_000,
        'the unresolvable name is counted',
      );
      assert.equal(await whoAnswers(proxy.ports.nowhere as number), '');
      assert.equal((await proxy.stats()).frontends.nowhere?.closed.no_server, 1);
    });
  });
}

test('an outage is logged once, its end once, and switchyard_dns_failures_total counts every failure', async (t) => {
  const dns = await startDnsServer(t);
  const a = await startNamedServer(t, 'a');
  dns.set('app.test', { A: ['127.0.0.1'] });
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const proxy = await createProxy(
    {
      resolvers: [dns.address],
      frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
      backends: [{ name: 'app', discover: { dns: 'app.test', port: a.port, every: '1s' } }],
    },
    { log },
  );
  t.after(() => proxy.close(true));
  await waitFor(() => (proxy.stats().backends.app?.servers.length ?? 0) === 1, 10_000, 'answer');
  dns.mode = 'servfail';
  await waitFor(() => (proxy.stats().backends.app?.dnsFailures ?? 0) >= 3, 15_000, '3 failures');
  dns.mode = 'answer';
  await waitFor(
    () => lines.some((l) => l.msg.startsWith('DNS answers again')),
    10_000,
    'the end of the outage is logged',
  );
  const failed = lines.filter((l) => l.msg.startsWith('DNS resolution of app.test failed'));
  assert.equal(failed.length, 1, 'one warning for the whole outage');
  const { formatMetrics } = await import('../../src/observability/metrics.ts');
  const metrics = formatMetrics(proxy.stats());
  const m = /^switchyard_dns_failures_total\{backend="app"\} (\d+)$/m.exec(metrics);
  assert.ok(m && Number(m[1]) >= 3, 'the metric counts each failure');
  await sleep(0);
});
