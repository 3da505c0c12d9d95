// The Prometheus text and the plain-bucket histograms behind it (the running-proxy checks of
// /metrics are in test/admin/server.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SwitchyardStats } from '../../src/api.ts';
import { Histogram } from '../../src/core/histogram.ts';
import { formatMetrics } from '../../src/observability/metrics.ts';
import type { ProxyStats } from '../../src/stats.ts';

test('a histogram counts each value in the first bucket whose bound it does not exceed', () => {
  const h = new Histogram([10, 100]);
  for (const v of [0, 10, 11, 100, 5000]) h.observe(v);
  assert.deepEqual(h.snapshot(), { bounds: [10, 100], counts: [2, 2, 1], sumMs: 5121, count: 5 });
});

test('metrics: cumulative buckets in seconds, escaped labels, one HELP/TYPE per family', () => {
  const connectMs = new Histogram([5, 50]);
  for (const v of [1, 20, 20, 900]) connectMs.observe(v);
  const frontend = {
    active: 0,
    accepted: 4,
    rejected: { rejected_at_cap: 1 },
    acceptErrors: 0,
    closed: { done: 3, connect_failed: 1 },
    bytesIn: 10,
    bytesOut: 20,
    states: {
      CLOSED: 0,
      CONNECTING: 0,
      QUEUED: 0,
      CONNECTED: 0,
      READING: 0,
      WRITING: 0,
      HALF_CLOSED: 0,
      CLOSING: 0,
      illegal: 0,
    },
    pool: { capacity: 2, inUse: 0, highWater: 1, bufferSize: 1024 },
    histograms: { connectMs: connectMs.snapshot(), durationMs: new Histogram([1000]).snapshot() },
  } satisfies ProxyStats;
  const stats: SwitchyardStats = {
    frontends: { 'we"b\\1': { ...frontend, listen: '127.0.0.1:1', backend: 'app' } },
    backends: {},
  };
  const text = formatMetrics(stats);
  const lines = text.split('\n');
  const f = 'frontend="we\\"b\\\\1"';
  for (const line of [
    `switchyard_connect_duration_seconds_bucket{${f},le="0.005"} 1`,
    `switchyard_connect_duration_seconds_bucket{${f},le="0.05"} 3`,
    `switchyard_connect_duration_seconds_bucket{${f},le="+Inf"} 4`,
    `switchyard_connect_duration_seconds_sum{${f}} 0.941`,
    `switchyard_connect_duration_seconds_count{${f}} 4`,
    `switchyard_connections_closed_total{${f},reason="connect_failed"} 1`,
    `switchyard_connections_rejected_total{${f},reason="rejected_at_cap"} 1`,
  ]) {
    assert.ok(lines.includes(line), `missing: ${line}`);
  }
  const types = lines.filter((l) => l.startsWith('# TYPE '));
  assert.equal(new Set(types).size, types.length);
  assert.ok(text.endsWith('\n'));
});
