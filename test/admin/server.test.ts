// The admin HTTP server against a running proxy (a child process on each engine): probes, the
// token, metrics, the live connections (and closing one), servers and their health.
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { type Declarations, FRONTEND_STATS, SERVER_STATS } from '../../src/stats.ts';
import { closedWithin, connect, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startNamedServer, startServer, whoAnswers } from '../support/servers.ts';

const TOKEN = 's3cret-token';

/** A server that sends `bytes` on connect and keeps the connection open. */
function startFloodServer(t: TestContext, bytes: number) {
  return startServer(t, (socket) => {
    socket.write(Buffer.alloc(bytes, 0x61));
  });
}

async function get(base: string, path: string, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, {
    headers: token === null ? {} : { Authorization: `Bearer ${token}` },
  });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: await res.text(),
  };
}

/** The value of one sample line of a Prometheus text, or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

for (const engine of ENGINES) {
  describe(`admin server (${engine} engine)`, () => {
    test('probes, token, metrics, live connections, closing one, servers', async (t) => {
      const flood = await startFloodServer(t, 16 * 1024 * 1024);
      const b = await startNamedServer(t, 'b', { hold: true });
      const c = await startNamedServer(t, 'c', { hold: true });
      const p = await startBalancer(
        t,
        {
          frontends: [
            { name: 'web', listen: '127.0.0.1:0', backend: 'bulk' },
            { name: 'api', listen: '127.0.0.1:0', backend: 'app' },
          ],
          backends: [
            { name: 'bulk', servers: [{ name: 'flood', address: `127.0.0.1:${flood.port}` }] },
            {
              name: 'app',
              balance: 'leastconn',
              healthCheck: { interval: '100ms', rise: 1, fall: 1 },
              servers: [
                { name: 'b', address: `127.0.0.1:${b.port}` },
                { name: 'c', address: `127.0.0.1:${c.port}`, weight: 2 },
              ],
            },
          ],
          admin: { listen: '0', token: TOKEN },
        },
        engine,
      );
      assert.ok(p.admin, 'the fixture reports the admin port');
      const base = `http://127.0.0.1:${p.admin}`;

      // Every route with data wants the token: none, a wrong one, and ?token= are 401.
      for (const path of [
        '/healthz',
        '/readyz',
        '/metrics',
        '/api/connections',
        '/api/backends',
        '/api/history',
      ]) {
        assert.equal((await get(base, path, null)).status, 401, `${path} without a token`);
        assert.equal((await get(base, path, 'wrong')).status, 401, `${path} with a wrong token`);
      }
      assert.equal((await get(base, `/api/connections?token=${TOKEN}`, null)).status, 401);
      // The page and its charting library hold no data: served without the token, which the
      // page then takes from its URL or asks for.
      for (const path of ['/', '/assets/uplot.js', '/assets/uplot.css']) {
        assert.equal((await get(base, path, null)).status, 200, `${path} without a token`);
      }

      assert.deepEqual(await get(base, '/healthz'), {
        status: 200,
        type: 'text/plain',
        body: 'ok\n',
      });
      assert.equal((await get(base, '/readyz')).status, 200);

      // Traffic: a client of `web` that does not read (the flood backs up into the proxy), and
      // two clients of `api` that send bytes.
      const slow = await connect(p.ports.web as number);
      t.after(() => slow.destroy());
      slow.pause();
      const talkers = [await connect(p.ports.api as number), await connect(p.ports.api as number)];
      t.after(() => {
        for (const s of talkers) s.destroy();
      });
      for (const s of talkers) {
        s.on('data', () => {});
        s.write('hello');
      }

      type Live = {
        id: number;
        client: string;
        frontend: string;
        server: string | null;
        state: string;
        bytesIn: number;
        bytesOut: number;
        ageMs: number;
        blocked: string | null;
      };
      let live: Live[] = [];
      await waitFor(
        async () => {
          live = JSON.parse((await get(base, '/api/connections')).body) as Live[];
          const blocked = live.find((x) => x.frontend === 'web')?.blocked === 'client';
          const sent = live.filter((x) => x.frontend === 'api' && x.bytesIn === 5).length === 2;
          return live.length === 3 && blocked && sent;
        },
        5000,
        'three live connections, the web one blocked on its client',
      );
      const web = live.find((x) => x.frontend === 'web') as Live;
      assert.equal(web.server, 'flood');
      assert.equal(web.state, 'WRITING');
      assert.ok(web.bytesOut > 0);
      assert.match(web.client, /^127\.0\.0\.1:\d+$/);
      assert.equal(web.client, `127.0.0.1:${slow.localPort}`);
      assert.ok(web.ageMs >= 0);
      const api = live.filter((x) => x.frontend === 'api');
      assert.deepEqual(api.map((x) => x.server).sort(), ['b', 'c']);
      for (const x of api) assert.equal(x.blocked, null);

      // The first health check of b runs 100 ms after start: wait until it has been counted.
      const passes = (text: string) =>
        sample(text, 'switchyard_health_checks_total', 'backend="app",server="b",result="pass"') ??
        0;
      await waitFor(
        async () => passes((await get(base, '/metrics')).body) > 0,
        5000,
        'a passed health check of b',
      );
      const metrics = await get(base, '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
      const m = metrics.body;
      assert.equal(sample(m, 'switchyard_connections', 'frontend="web",state="WRITING"'), 1);
      assert.equal(sample(m, 'switchyard_connections', 'frontend="api",state="READING"'), 2);
      assert.equal(sample(m, 'switchyard_connections_accepted_total', 'frontend="api"'), 2);
      assert.equal(
        sample(
          m,
          'switchyard_connections_rejected_total',
          'frontend="api",reason="rejected_at_cap"',
        ),
        0,
      );
      assert.equal(sample(m, 'switchyard_bytes_total', 'frontend="api",direction="in"'), 10);
      assert.ok((sample(m, 'switchyard_bytes_total', 'frontend="web",direction="out"') ?? 0) > 0);
      assert.equal(sample(m, 'switchyard_server_up', 'backend="app",server="b"'), 1);
      assert.equal(
        sample(m, 'switchyard_server_active_connections', 'backend="app",server="c"'),
        1,
      );
      assert.equal(sample(m, 'switchyard_server_weight', 'backend="app",server="c"'), 2);
      assert.equal(sample(m, 'switchyard_backend_queue_length', 'backend="app"'), 0);
      assert.ok(
        (sample(m, 'switchyard_health_checks_total', 'backend="app",server="b",result="pass"') ??
          0) > 0,
      );
      assert.match(m, /^# TYPE switchyard_connect_duration_seconds histogram$/m);
      assert.match(
        m,
        /^switchyard_frontend_info\{frontend="api",backend="app",listen="127\.0\.0\.1:\d+"\} 1$/m,
      );

      // Filtered and sorted on the server: one page of the matching rows, their count in
      // X-Total-Count.
      const page = async (query: string) => {
        const res = await fetch(`${base}/api/connections?${query}`, {
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
        const rows = res.status === 200 ? ((await res.json()) as Live[]) : [];
        return { status: res.status, total: res.headers.get('X-Total-Count'), rows };
      };
      const onApi = await page('frontend=api');
      assert.equal(onApi.total, '2');
      assert.deepEqual(
        onApi.rows.map((x) => x.frontend),
        ['api', 'api'],
      );
      assert.deepEqual(
        (await page('server=flood')).rows.map((x) => x.id),
        [web.id],
      );
      assert.equal((await page('state=READING&frontend=web')).total, '0');
      const byBytes = await page('sort=bytes&limit=1');
      assert.equal(byBytes.total, '3');
      assert.deepEqual(
        byBytes.rows.map((x) => x.id),
        [web.id],
        'the flood is the largest',
      );
      const byAge = await page('sort=age');
      assert.deepEqual(
        byAge.rows.map((x) => x.id),
        [...live].sort((x, y) => x.id - y.id).map((x) => x.id),
        'oldest first (accepted in id order)',
      );
      assert.equal((await page('sort=size')).status, 400);
      assert.equal((await page('state=OPEN')).status, 400);

      // The history the page's graphs draw: sampled every second by the admin server.
      type History = {
        t: number[];
        states: Record<string, number[]>;
        servers: Record<string, (number | null)[]>;
        accepted: number[];
      };
      let history = {} as History;
      await waitFor(
        async () => {
          history = JSON.parse((await get(base, '/api/history')).body) as History;
          return history.t.length >= 1 && history.states.WRITING?.at(-1) === 1;
        },
        5000,
        'a sample with the live connections',
      );
      assert.equal(history.states.READING?.at(-1), 2);
      assert.equal(history.servers['app/c']?.at(-1), 1);
      assert.equal(history.accepted.length, history.t.length);

      // DELETE closes one connection; an unknown id is 404.
      const victim = api[0] as Live;
      const victimSocket = talkers.find((s) => victim.client === `127.0.0.1:${s.localPort}`);
      assert.ok(victimSocket, 'the live view names the client socket');
      const del = await fetch(`${base}/api/connections/${victim.id}`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(del.status, 200);
      await closedWithin(victimSocket, 2000);
      const again = await fetch(`${base}/api/connections/${victim.id}`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(again.status, 404);
      await waitFor(
        async () => (await p.stats()).frontends.api?.closed.killed === 1,
        2000,
        'the close counted as killed',
      );

      // A server that goes away shows down in /api/backends and in the metrics.
      await c.kill();
      type Backends = {
        name: string;
        servers: { name: string; up: boolean; weight: number; active: number }[];
      }[];
      await waitFor(
        async () => {
          const list = JSON.parse((await get(base, '/api/backends')).body) as Backends;
          return (
            list.find((x) => x.name === 'app')?.servers.find((s) => s.name === 'c')?.up === false
          );
        },
        3000,
        'server c down in /api/backends',
      );
      const list = JSON.parse((await get(base, '/api/backends')).body) as Backends;
      const app = list.find((x) => x.name === 'app');
      assert.deepEqual(
        app?.servers.map((s) => [s.name, s.up, s.weight]),
        [
          ['b', true, 1],
          ['c', false, 2],
        ],
      );
      const m2 = (await get(base, '/metrics')).body;
      assert.equal(sample(m2, 'switchyard_server_up', 'backend="app",server="c"'), 0);
      assert.ok(
        (sample(m2, 'switchyard_health_checks_total', 'backend="app",server="c",result="fail"') ??
          0) > 0,
      );

      // Not ready (draining): /readyz 503, /healthz still 200.
      await p.ask('unready');
      assert.equal((await get(base, '/readyz')).status, 503);
      assert.equal((await get(base, '/healthz')).status, 200);
      assert.equal((await get(base, '/nope')).status, 404);
    });

    test('/api/connections in pages: ?limit= and ?offset=, the total in X-Total-Count', async (t) => {
      const b = await startNamedServer(t, 'b', { hold: true });
      const p = await startBalancer(
        t,
        {
          frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
          backends: [{ name: 'app', servers: [{ name: 'b', address: `127.0.0.1:${b.port}` }] }],
          admin: { listen: 0 },
        },
        engine,
      );
      const base = `http://127.0.0.1:${p.admin}`;
      const clients = await Promise.all(
        Array.from({ length: 7 }, () => connect(p.ports.web as number)),
      );
      t.after(() => {
        for (const c of clients) c.destroy();
      });
      const page = async (query: string) => {
        const res = await fetch(`${base}/api/connections${query}`);
        return {
          status: res.status,
          total: res.headers.get('x-total-count'),
          ids: res.status === 200 ? ((await res.json()) as { id: number }[]).map((x) => x.id) : [],
        };
      };
      await waitFor(async () => (await page('')).total === '7', 5000, 'seven live connections');
      const all = await page('');
      assert.equal(all.ids.length, 7, 'the default page holds them all');
      const first = await page('?limit=3');
      assert.deepEqual(first, { status: 200, total: '7', ids: all.ids.slice(0, 3) });
      const last = await page('?limit=3&offset=6');
      assert.deepEqual(last, { status: 200, total: '7', ids: all.ids.slice(6) });
      assert.deepEqual((await page('?offset=100')).ids, []);
      assert.equal((await page('?limit=5000')).status, 200);
      for (const bad of ['?limit=0', '?limit=5001', '?limit=ten', '?offset=-1', '?limit=1.5']) {
        assert.equal((await page(bad)).status, 400, bad);
      }
    });

    test('names that are JavaScript object keys show in /api/stats, /api/backends, /metrics', async (t) => {
      const b = await startNamedServer(t, 'b');
      const p = await startBalancer(
        t,
        {
          frontends: [
            { name: 'constructor', listen: '127.0.0.1:0', backend: '__proto__' },
            { name: 'toString', listen: '127.0.0.1:0', backend: '__proto__' },
          ],
          backends: [
            { name: '__proto__', servers: [{ name: '__proto__', address: `127.0.0.1:${b.port}` }] },
          ],
          admin: { listen: 0 },
        },
        engine,
      );
      assert.equal(await whoAnswers(p.port), 'b', 'through the frontend named constructor');
      const base = `http://127.0.0.1:${p.admin}`;
      const stats = JSON.parse((await get(base, '/api/stats', null)).body);
      assert.deepEqual(Object.keys(stats.frontends), ['constructor', 'toString']);
      assert.equal(stats.frontends.constructor.accepted, 1);
      assert.equal(stats.frontends.constructor.backend, '__proto__');
      assert.deepEqual(Object.keys(stats.backends), ['__proto__']);
      assert.equal(
        Object.getOwnPropertyDescriptor(stats.backends, '__proto__')?.value.name,
        '__proto__',
      );
      const backends = JSON.parse((await get(base, '/api/backends', null)).body);
      assert.deepEqual(
        backends.map((x: { name: string; servers: { name: string }[] }) => [
          x.name,
          x.servers.map((s) => s.name),
        ]),
        [['__proto__', ['__proto__']]],
      );
      const m = (await get(base, '/metrics', null)).body;
      assert.equal(sample(m, 'switchyard_connections_accepted_total', 'frontend="constructor"'), 1);
      assert.equal(sample(m, 'switchyard_connections_accepted_total', 'frontend="toString"'), 0);
      assert.equal(
        sample(m, 'switchyard_server_connections_total', 'backend="__proto__",server="__proto__"'),
        1,
      );
      assert.equal(sample(m, 'switchyard_backend_queue_length', 'backend="__proto__"'), 0);
    });

    test('without a token, no header is needed', async (t) => {
      const b = await startNamedServer(t, 'b');
      const p = await startBalancer(
        t,
        {
          frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
          backends: [{ name: 'app', servers: [{ name: 'b', address: `127.0.0.1:${b.port}` }] }],
          admin: { listen: 0 },
        },
        engine,
      );
      const base = `http://127.0.0.1:${p.admin}`;
      assert.equal((await get(base, '/healthz', null)).status, 200);
      const page = await get(base, '/', null);
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html/);
      assert.match(page.body, /<title>switchyard stats<\/title>/);
      assert.doesNotMatch(page.body, /https?:\/\//, 'the page loads nothing from elsewhere');
      // The tables' columns are the numbers src/stats.ts gives a page column, in its order.
      const heads = (id: string) =>
        [
          ...(
            new RegExp(`<table id="${id}"><thead><tr>(.*?)</tr>`).exec(page.body)?.[1] ?? ''
          ).matchAll(/<th[^>]*>([^<]*)<\/th>/g),
        ].map((m) => m[1]);
      const titles = (decls: Declarations) =>
        Object.values(decls).flatMap((d) => (d.page ? [d.page.title] : []));
      assert.deepEqual(heads('frontends'), ['frontend', ...titles(FRONTEND_STATS)]);
      assert.deepEqual(heads('backends'), titles(SERVER_STATS));
      assert.ok(heads('backends').includes('check failures'));
    });
  });
}
