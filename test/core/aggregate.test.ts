import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SwitchyardStats } from '../../src/api.ts';
import { countersOf, keepConfigured, sumStats } from '../../src/core/aggregate.ts';
import { BACKEND_STATS, FRONTEND_STATS, SERVER_STATS } from '../../src/stats.ts';
import { emptyOf } from '../support/stats.ts';

function report(accepted: number, active: number, up: boolean): SwitchyardStats {
  return {
    frontends: {
      web: {
        ...emptyOf(FRONTEND_STATS),
        active,
        accepted,
        closed: { done: accepted - active },
        bytesIn: 10 * accepted,
        bytesOut: 20 * accepted,
        states: { illegal: 0 } as SwitchyardStats['frontends'][string]['states'],
        pool: { capacity: 2048, inUse: active * 2, highWater: 4, bufferSize: 16384 },
        listen: '127.0.0.1:8080',
        backend: 'app',
      },
    },
    backends: {
      app: {
        ...emptyOf(BACKEND_STATS),
        name: 'app',
        balance: 'roundrobin',
        servers: [
          {
            ...emptyOf(SERVER_STATS),
            name: 'a',
            address: '127.0.0.1:9001',
            up,
            weight: 3,
            active,
            connections: accepted,
            checks: 5,
            checkFailures: up ? 0 : 5,
          },
        ],
      },
    },
  };
}

test('worker stats sum: counters and gauges add up, settings and names do not', () => {
  const sum = sumStats([report(10, 2, true), report(5, 1, false)]);
  const web = sum.frontends.web;
  assert.ok(web);
  assert.equal(web.accepted, 15);
  assert.equal(web.active, 3);
  assert.equal(web.closed.done, 12);
  assert.equal(web.bytesIn, 150);
  assert.equal(web.pool.inUse, 6);
  assert.equal(web.pool.bufferSize, 16384, 'a setting, not summed');
  assert.equal(web.listen, '127.0.0.1:8080');
  const a = sum.backends.app?.servers[0];
  assert.ok(a);
  assert.equal(a.name, 'a');
  assert.equal(a.connections, 15);
  assert.equal(a.weight, 3);
  assert.equal(a.up, false, 'up only when every worker sees it up');
  assert.equal(a.checks, 10);
  assert.deepEqual(sumStats([]), { frontends: {}, backends: {} });
});

test('worker histograms sum bucket by bucket, bounds kept', () => {
  const withHistogram = (counts: number[], sumMs: number): SwitchyardStats => {
    const r = report(
      counts.reduce((a, b) => a + b, 0),
      0,
      true,
    );
    const web = r.frontends.web as SwitchyardStats['frontends'][string];
    web.histograms = {
      connectMs: { bounds: [1, 5, 25], counts, sumMs, count: counts.reduce((a, b) => a + b, 0) },
      durationMs: {
        bounds: [10, 100],
        counts: [counts[0] ?? 0, 0, 0],
        sumMs,
        count: counts[0] ?? 0,
      },
    };
    return r;
  };
  const sum = sumStats([withHistogram([1, 2, 3, 4], 20), withHistogram([10, 0, 1, 0], 7)]);
  const h = sum.frontends.web?.histograms;
  assert.deepEqual(h?.connectMs.bounds, [1, 5, 25]);
  assert.deepEqual(h?.connectMs.counts, [11, 2, 4, 4]);
  assert.equal(h?.connectMs.count, 21);
  assert.equal(h?.connectMs.sumMs, 27);
  assert.deepEqual(h?.durationMs.counts, [11, 0, 0]);
});

test("a dead worker's counters stay in the sum, its gauges and its health vote leave", () => {
  const dead = report(10, 2, false);
  (dead.frontends.web as SwitchyardStats['frontends'][string]).states.illegal = 1;
  // A per-state count (typed as any key: the table may drop a state, an older worker keep it).
  const deadStates = (dead.frontends.web as SwitchyardStats['frontends'][string]).states;
  (deadStates as Record<string, number>).CONNECTED = 2;
  const sum = sumStats([report(5, 1, true), countersOf(dead)]);
  const web = sum.frontends.web;
  assert.ok(web);
  assert.equal(web.accepted, 15, 'counters kept');
  assert.equal(web.closed.done, 12);
  assert.equal(web.bytesOut, 300);
  assert.equal(web.states.illegal, 1, 'illegal moves are a counter');
  assert.equal(web.active, 1, 'only the live worker is active');
  assert.equal((web.states as Record<string, number>).CONNECTED ?? 0, 0);
  assert.equal(web.pool.inUse, 2);
  assert.equal(web.pool.capacity, 2048, "the dead worker's pool is gone");
  assert.equal(web.pool.bufferSize, 16384);
  const a = sum.backends.app?.servers[0];
  assert.ok(a);
  assert.equal(a.connections, 15);
  assert.equal(a.checkFailures, 5);
  assert.equal(a.active, 1);
  assert.equal(a.up, true, 'a dead worker has no say in health');
  assert.equal(a.weight, 3);
});

test('a reload that removes a frontend or server drops its retired totals', () => {
  const kept = keepConfigured(countersOf(report(10, 2, true)), {
    frontends: [],
    backends: [{ name: 'app', servers: [] }],
  } as unknown as Parameters<typeof keepConfigured>[1]);
  assert.deepEqual(kept.frontends, {});
  assert.deepEqual(kept.backends.app?.servers, []);
});

test('a backend with discover keeps its servers (named ADDRESS:PORT, in no config)', () => {
  const kept = keepConfigured(countersOf(report(10, 2, true)), {
    frontends: [],
    backends: [{ name: 'app', servers: [], discover: { dns: 'app.example', port: 9000 } }],
  } as unknown as Parameters<typeof keepConfigured>[1]);
  assert.equal(kept.backends.app?.servers.length, report(10, 2, true).backends.app?.servers.length);
});

test('names that are JavaScript object keys are summed, kept and dropped like any other', () => {
  // As a worker's report arrives: JSON, whose parse makes `__proto__` an own key.
  const named = (accepted: number): SwitchyardStats => {
    const r = report(accepted, 1, true);
    const web = r.frontends.web as SwitchyardStats['frontends'][string];
    const app = r.backends.app as SwitchyardStats['backends'][string];
    const server = app.servers[0] as (typeof app.servers)[number];
    // A computed key: `__proto__: x` in a literal would set the prototype instead.
    const text = JSON.stringify({
      frontends: { constructor: { ...web, backend: '__proto__' }, ['__proto__']: web },
      backends: {
        ['__proto__']: { ...app, name: '__proto__', servers: [{ ...server, name: '__proto__' }] },
      },
    });
    return JSON.parse(text);
  };
  const one = named(1);
  assert.deepEqual(Object.keys(one.frontends), ['constructor', '__proto__']);
  assert.deepEqual(Object.keys(one.backends), ['__proto__']);
  for (const sum of [
    sumStats([named(10), named(5)]),
    sumStats([named(10), countersOf(named(5))]),
  ]) {
    assert.deepEqual(Object.keys(sum.frontends), ['constructor', '__proto__']);
    assert.equal(own(sum.frontends, 'constructor').accepted, 15);
    assert.equal(own(sum.frontends, 'constructor').backend, '__proto__');
    assert.equal(own(sum.frontends, '__proto__').accepted, 15);
    const b = own(sum.backends, '__proto__');
    assert.equal(b.name, '__proto__');
    assert.deepEqual(
      b.servers.map((s) => [s.name, s.connections]),
      [['__proto__', 15]],
    );
  }
  const kept = keepConfigured(sumStats([named(3)]), {
    frontends: [{ name: 'constructor' }],
    backends: [{ name: '__proto__', servers: [{ name: '__proto__' }] }],
  } as unknown as Parameters<typeof keepConfigured>[1]);
  assert.deepEqual(Object.keys(kept.frontends), ['constructor']);
  assert.deepEqual(Object.keys(kept.backends), ['__proto__']);
  assert.equal(own(kept.backends, '__proto__').servers.length, 1);
  const none = keepConfigured(sumStats([named(3)]), {
    frontends: [],
    backends: [],
  } as unknown as Parameters<typeof keepConfigured>[1]);
  assert.deepEqual([Object.keys(none.frontends), Object.keys(none.backends)], [[], []]);
});

/** `o[key]` as an own property (never one of Object.prototype's). */
function own<T>(o: Record<string, T>, key: string): T {
  const d = Object.getOwnPropertyDescriptor(o, key);
  assert.ok(d, `no own ${key}`);
  return d.value as T;
}
