// How long a DNS change takes to reach traffic: a record moves from server a to server b, a
// client connects every 10 ms, and the time from the change to b's first connection is taken.
// Not a test (nothing passes or fails); prints min / median / max per engine and schedule.
//
//   node bench/discovery.ts [--engines node,bun] [--changes 8]
//
// The proxy runs in a child process (the tests' fixture) with `resolvers` pointing at a DNS
// server in this process (test/support/dns-server.ts).
import type { TestContext } from 'node:test';
import { startDnsServer } from '../test/support/dns-server.ts';
import { startBalancer } from '../test/support/proxy-process.ts';
import { closedPort, startNamedServer, whoAnswers } from '../test/support/servers.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const engines = arg('engines', 'node,bun').split(',') as ('node' | 'bun')[];
const changes = Number(arg('changes', '8'));

/** The `after` of a TestContext, for helpers written for tests. */
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const schedules = [
  { every: '1s', ttl: 30, label: 'every 1s, TTL 30 s' },
  { every: '5s', ttl: 2, label: 'every 5s, TTL 2 s (the TTL wins)' },
  { every: '5s', ttl: 30, label: 'every 5s, TTL 30 s' },
];

const port = await closedPort();
const a = await startNamedServer(t, 'a', { host: '127.0.0.2', port });
const b = await startNamedServer(t, 'b', { host: '127.0.0.3', port });
const servers = { '127.0.0.2': a, '127.0.0.3': b };
const rows: string[] = [];
try {
  for (const engine of engines) {
    for (const s of schedules) {
      const dns = await startDnsServer(t);
      dns.set('app.test', { A: ['127.0.0.2'], ttl: s.ttl });
      const proxy = await startBalancer(
        t,
        {
          logLevel: 'error',
          resolvers: [dns.address],
          frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
          backends: [{ name: 'app', discover: { dns: 'app.test', port, every: s.every } }],
        },
        engine,
      );
      while ((await whoAnswers(proxy.port)) !== 'a') await sleep(50);
      let running = true;
      const client = (async () => {
        while (running) {
          await whoAnswers(proxy.port, { ms: 1000 });
          await sleep(10);
        }
      })();
      const ms: number[] = [];
      let current: keyof typeof servers = '127.0.0.2';
      for (let i = 0; i < changes; i++) {
        // A random phase against the resolution schedule.
        await sleep(Math.random() * 1000);
        const next: keyof typeof servers = current === '127.0.0.2' ? '127.0.0.3' : '127.0.0.2';
        const target = servers[next];
        const hits = target.hits;
        const changed = performance.now();
        dns.set('app.test', { A: [next], ttl: s.ttl });
        while (target.hits === hits) await sleep(2);
        ms.push(performance.now() - changed);
        current = next;
      }
      running = false;
      await client;
      ms.sort((x, y) => x - y);
      const f = (n: number) => `${Math.round(n)} ms`;
      const row = `| ${engine} | ${s.label} | ${changes} | ${f(ms[0] ?? 0)} | ${f(ms[Math.floor(ms.length / 2)] ?? 0)} | ${f(ms[ms.length - 1] ?? 0)} |`;
      console.log(row);
      rows.push(row);
      proxy.child.kill('SIGKILL');
      await dns.stop();
    }
  }
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
console.log(
  '\n| engine | schedule | changes | min | median | max |\n| --- | --- | --- | --- | --- | --- |',
);
console.log(rows.join('\n'));
process.exit(0);
