// The admin server's ring of samples (src/admin/history.ts): rates from counters, states summed
// over frontends, endings of the last minute, at most five minutes kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HISTORY_SECONDS, History, toSample } from '../../src/admin/history.ts';
import type { SwitchyardStats } from '../../src/stats.ts';

const idle = { CLOSED: 0, CONNECTING: 0, QUEUED: 0, CONNECTED: 0, HALF_CLOSED: 0, CLOSING: 0 };

/** stats() with two frontends and one server, `n` seconds in. */
function stats(accepted: number, bytes: number, closed: number, active: number): SwitchyardStats {
  const frontend = (reading: number) =>
    ({
      listen: '127.0.0.1:1',
      backend: 'app',
      active: reading,
      accepted,
      rejected: { rejected_at_cap: closed },
      acceptErrors: 0,
      closed: { done: closed, idle_timeout: 1 },
      bytesIn: bytes,
      bytesOut: 2 * bytes,
      states: { ...idle, READING: reading, WRITING: 1, illegal: 0 },
      pool: { capacity: 0, inUse: 0, highWater: 0, bufferSize: 16384 },
    }) as SwitchyardStats['frontends'][string];
  return {
    frontends: { web: frontend(active), api: frontend(1) },
    backends: {
      app: {
        name: 'app',
        balance: 'roundrobin',
        queued: 0,
        queueTimeouts: 0,
        queueFull: 0,
        localErrors: 0,
        dnsFailures: 0,
        servers: [
          {
            name: 'a',
            address: '127.0.0.1:2',
            up: true,
            backup: false,
            weight: 1,
            active,
            maxConnections: 0,
            connections: 0,
            failures: 0,
            checks: 0,
            checkFailures: 0,
          },
        ],
      },
    },
  };
}

test('rates, stacked states, per-server series and the last minute of endings', () => {
  const h = new History({ stats: () => stats(0, 0, 0, 0), connections: () => [] });
  const t0 = 1_000_000;
  // 400 seconds: 10 new connections and 1000 bytes in a second, one `done` close every second.
  for (let i = 0; i <= 400; i++) h.add(toSample(stats(10 * i, 1000 * i, i, 5), t0 + i * 1000));
  const v = h.view();
  assert.equal(v.t.length, HISTORY_SECONDS, 'five minutes, one point a second');
  assert.deepEqual(new Set(v.accepted), new Set([20]), 'two frontends, 10/s each');
  assert.deepEqual(new Set(v.bytesIn), new Set([2000]));
  assert.deepEqual(new Set(v.bytesOut), new Set([4000]));
  assert.equal(v.states.READING?.at(-1), 6);
  assert.equal(v.states.WRITING?.at(-1), 2);
  assert.equal(v.states.CLOSED, undefined, 'CLOSED holds nothing live');
  assert.equal(v.servers['app/a']?.at(-1), 5);
  assert.deepEqual(v.closedRecent, { done: 120 }, 'two frontends, 60 s');
  assert.deepEqual(v.rejectedRecent, { rejected_at_cap: 120 });
  assert.deepEqual(v.closedTotal, { done: 800, idle_timeout: 2 });
});

test('a counter going back (a worker gone from the sum) is no traffic, not a negative rate', () => {
  const h = new History({ stats: () => stats(0, 0, 0, 0), connections: () => [] });
  h.add(toSample(stats(100, 100, 0, 0), 0));
  h.add(toSample(stats(50, 50, 0, 0), 1000));
  assert.deepEqual(h.view().accepted, [0]);
  assert.deepEqual(h.view().bytesIn, [0]);
});
