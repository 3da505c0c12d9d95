import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadResult } from '../../bench/load.ts';
import type { ContenderRuns, Sample } from '../../bench/rounds.ts';
import { SCENARIOS, type Scenario, type ScenarioId } from '../../bench/scenarios.ts';
import {
  type IdleRuns,
  median,
  summarizeIdle,
  summarizeOverhead,
  summarizePassthroughTarget,
  summarizeScenario,
} from '../../bench/summary.ts';

const SECONDS = 5;

function scenario(id: ScenarioId): Scenario {
  const s = SCENARIOS.find((x) => x.id === id);
  assert.ok(s, `scenario ${id}`);
  return s;
}

/** One run in which the proxy spent `costUs` of CPU per request over `requests` requests. */
function sample(round: number, costUs: number | null, over: Partial<LoadResult> = {}): Sample {
  const load: LoadResult = {
    requests: 300_000,
    seconds: SECONDS,
    p50Us: 700,
    p99Us: 1500,
    errors: 0,
    errorDetail: '',
    ...over,
  };
  return {
    round,
    load,
    cpuSeconds: costUs === null ? null : (costUs * load.requests) / 1e6,
    otherCpuSeconds: 0.05,
  };
}

function runs(name: string, costs: (number | null)[], failure: string | null = null) {
  return { name, samples: costs.map((c, round) => sample(round, c)), failure };
}

function near(actual: number | null, expected: number, what: string) {
  assert.ok(actual !== null, `${what}: null`);
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);
}

test('median: odd and even counts, numeric order, input untouched', () => {
  assert.equal(median([3]), 3);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([1, 2]), 1.5);
  // Sorted as numbers, not as text ("100" < "9").
  assert.equal(median([100, 9, 10]), 10);
  assert.equal(median([-2, -8, 0]), -2);
  const input = [3, 1, 2];
  median(input);
  assert.deepEqual(input, [3, 1, 2]);
});

test('median: null for no numbers; null, NaN and infinities are left out', () => {
  assert.equal(median([]), null);
  assert.equal(median([null, null]), null);
  assert.equal(median([Number.NaN, Number.POSITIVE_INFINITY]), null);
  // Left out, not counted as zero: the median of 1, 2, 3 is 2 and of 1, 3 is 2 too.
  assert.equal(median([1, null, 3]), 2);
  assert.equal(median([1, Number.NaN, 2, 3, Number.NEGATIVE_INFINITY]), 2);
  assert.equal(median([0, 0, 7]), 0);
});

test('ratios from a real run: median of per-round ratios with its spread (latest.md, small)', () => {
  // HAProxy and switchyard-node on the small scenario of bench/results/latest.md: 1.17
  // (0.80–1.36) at a median HAProxy cost of 13.7 µs per request.
  const base = [13.9, 13.7, 13.1, 14.6, 13.5];
  const ratios = [1.17, 0.8, 1.36, 1.1, 1.3];
  const sy = base.map((b, i) => b * (ratios[i] as number));
  const [haproxy, node] = summarizeScenario(scenario('small'), [
    runs('haproxy', base),
    runs('switchyard-node', sy),
  ]).rows;
  assert.ok(haproxy && node);
  assert.equal(haproxy.name, 'haproxy');
  near(haproxy.cpuPerUnitUs, 13.7, 'haproxy cost');
  near(haproxy.ratio, 1, 'haproxy ratio');
  near(haproxy.ratioMin, 1, 'haproxy min');
  near(haproxy.ratioMax, 1, 'haproxy max');
  assert.equal(haproxy.target, null);

  assert.equal(node.rounds, 5);
  near(node.ratio, 1.17, 'ratio');
  near(node.ratioMin, 0.8, 'min');
  near(node.ratioMax, 1.36, 'max');
  assert.equal(node.target, 1.1);
  near(node.requestsPerSecond, 300_000 / SECONDS, 'req/s');
  near(node.p50Us, 700, 'p50');
  near(node.proxyCpuPercent, (((median(sy) ?? 0) * 300_000) / 1e6 / SECONDS) * 100, 'busy');
  near(node.otherCpuPercent, 1, 'other on CPU 1');
});

test('ratios: taken within each round, then the median of them', () => {
  // The machine slows down round after round, for both alike: every round says 1.5.
  const base = [10, 20, 30];
  const other = [15, 30, 45];
  const rows = summarizeScenario(scenario('bulk'), [
    runs('haproxy', base),
    runs('switchyard-node', other),
    // The same costs paired with other rounds: 4.5, 0.75 and 1.
    runs('nginx', [45, 15, 30]),
    // Medians of the costs are 11 and 33 (3×), but two rounds of three say 1.2.
    runs('node-tcp-proxy', [12, 33, 36]),
  ]).rows;
  const [, node, nginx, ntp] = rows;
  near(node?.ratio ?? null, 1.5, 'paired by round');
  near(node?.ratioMin ?? null, 1.5, 'min');
  near(node?.ratioMax ?? null, 1.5, 'max');
  near(node?.cpuPerUnitUs ?? null, 30, 'median absolute cost');
  near(nginx?.ratio ?? null, 1, 'median of 4.5, 0.75, 1');
  near(nginx?.ratioMin ?? null, 0.75, 'min');
  near(nginx?.ratioMax ?? null, 4.5, 'max');
  near(ntp?.ratio ?? null, 1.2, 'median of ratios');
});

test('ratios: a noisy round moves the spread, not the median', () => {
  const base = [13, 13, 13, 13, 13];
  // One round where a neighbour took the proxy CPU: 3× the cost.
  const node = [15.6, 15.6, 46.8, 15.6, 15.6];
  const row = summarizeScenario(scenario('small'), [
    runs('haproxy', base),
    runs('switchyard-node', node),
  ]).rows[1];
  near(row?.ratio ?? null, 1.2, 'median');
  near(row?.ratioMin ?? null, 1.2, 'min');
  near(row?.ratioMax ?? null, 3.6, 'max');
  near(row?.cpuPerUnitUs ?? null, 15.6, 'cost');
});

test('ratios: rounds without a baseline, and zero denominators, give no ratio', () => {
  const s = scenario('churn');
  // HAProxy ran rounds 0 and 2 only; round 1 of the contender has nothing to compare with.
  const haproxy: ContenderRuns = {
    name: 'haproxy',
    samples: [sample(0, 60), sample(2, 60)],
    failure: 'exited during round 1',
  };
  const partial = summarizeScenario(s, [haproxy, runs('switchyard-bun', [90, 600, 120])]).rows;
  assert.equal(partial[0]?.failure, 'exited during round 1');
  assert.equal(partial[0]?.rounds, 2);
  near(partial[1]?.ratio ?? null, 1.75, 'median of 1.5 and 2.0');
  near(partial[1]?.ratioMax ?? null, 2, 'round 1 left out');
  near(partial[1]?.cpuPerUnitUs ?? null, 120, 'costs still use every round');
  assert.equal(partial[1]?.target, 1.1);

  // HAProxy measured no CPU (0 s): no ratio rather than Infinity.
  const zeroCpu = summarizeScenario(s, [runs('haproxy', [0, 0]), runs('nginx', [50, 60])]).rows;
  assert.equal(zeroCpu[1]?.ratio, null);
  assert.equal(zeroCpu[1]?.ratioMin, null);
  assert.equal(zeroCpu[1]?.ratioMax, null);
  near(zeroCpu[0]?.cpuPerUnitUs ?? null, 0, 'zero cost is a cost');

  // No request completed: no cost per request, and no ratio either side.
  const noRequests: ContenderRuns[] = [
    { name: 'haproxy', samples: [sample(0, 60, { requests: 0 })], failure: null },
    { name: 'nginx', samples: [sample(0, 60)], failure: null },
  ];
  const [h, n] = summarizeScenario(s, noRequests).rows;
  assert.equal(h?.cpuPerUnitUs, null);
  assert.equal(h?.ratio, null);
  assert.equal(n?.ratio, null);
  near(n?.cpuPerUnitUs ?? null, 60, 'nginx cost');

  // A run of zero seconds: no rate and no busy share, rather than Infinity.
  const zeroSeconds = summarizeScenario(s, [
    { name: 'haproxy', samples: [sample(0, 60, { seconds: 0 })], failure: null },
  ]).rows[0];
  assert.equal(zeroSeconds?.requestsPerSecond, null);
  assert.equal(zeroSeconds?.proxyCpuPercent, null);
  assert.equal(zeroSeconds?.otherCpuPercent, null);
});

test('ratios: no baseline, no proxy, no rounds', () => {
  const s = scenario('redis');
  const noBaseline = summarizeScenario(s, [runs('switchyard-node', [1.2, 1.3])]).rows[0];
  assert.equal(noBaseline?.ratio, null);
  near(noBaseline?.cpuPerUnitUs ?? null, 1.25, 'cost without a baseline');

  const [direct, failed] = summarizeScenario(s, [
    runs('haproxy', [1]),
    runs('direct', [null]),
    runs('node-tcp-proxy', [], 'failed to start: ENOENT'),
  ]).rows.slice(1);
  assert.equal(direct?.cpuPerUnitUs, null);
  assert.equal(direct?.proxyCpuPercent, null);
  assert.equal(direct?.ratio, null);
  near(direct?.requestsPerSecond ?? null, 60_000, 'direct still has a rate');
  assert.deepEqual(
    [failed?.rounds, failed?.failure, failed?.ratio, failed?.requestsPerSecond, failed?.p99Us],
    [0, 'failed to start: ENOENT', null, null, null],
  );
  assert.equal(summarizeScenario(s, []).rows.length, 0);
});

test('errors are summed over rounds, with the first detail', () => {
  const r: ContenderRuns = {
    name: 'haproxy',
    samples: [
      sample(0, 13),
      sample(1, 13, { errors: 3, errorDetail: 'timeout 3' }),
      sample(2, 13, { errors: 1, errorDetail: 'read 1' }),
    ],
    failure: null,
  };
  const row = summarizeScenario(scenario('small'), [r]).rows[0];
  assert.equal(row?.errors, 4);
  assert.equal(row?.errorDetail, 'timeout 3');
});

function idle(name: string, perConnection: number[], over: { precise?: boolean } = {}): IdleRuns {
  return {
    name,
    failure: null,
    samples: perConnection.map((bytes, round) => ({
      round,
      connections: 4000,
      rssBeforeBytes: 16e6 + round,
      rssAfterBytes: 16e6 + round + bytes * 4000,
      rssPerConnectionBytes: bytes,
      idleCpuPercent: 0.03 * (round + 1),
      precise: over.precise ?? true,
    })),
  };
}

test('idle: RSS ratios per round, targets, direct left out', () => {
  const rows = summarizeIdle([
    idle('direct', [0, 0, 0]),
    idle('haproxy', [3277, 3300, 3250]),
    idle('switchyard-node', [2982, 3300, 9750]),
    idle('switchyard-bun', [2982, 2982, 2982], { precise: false }),
    idle('nginx', [9600, 9700, 9650]),
  ]);
  assert.deepEqual(
    rows.map((r) => r.name),
    ['haproxy', 'switchyard-node', 'switchyard-bun', 'nginx'],
  );
  const [haproxy, node, bun, nginx] = rows;
  near(haproxy?.ratio ?? null, 1, 'baseline');
  // 0.91, 1.00 and 3.00: the round with a 3× outlier does not become the median.
  near(node?.ratio ?? null, 1, 'node');
  near(node?.rssPerConnectionBytes ?? null, 3300, 'node RSS');
  assert.equal(node?.ratioTarget, 1.5);
  assert.equal(node?.idleCpuTarget, 0.1);
  near(node?.idleCpuPercent ?? null, 0.06, 'idle CPU');
  assert.equal(node?.precise, true);
  assert.equal(node?.connections, 4000);
  near(node?.rssBeforeBytes ?? null, 16e6 + 1, 'RSS before');
  assert.equal(bun?.ratioTarget, 1);
  assert.equal(bun?.precise, false);
  assert.equal(nginx?.ratioTarget, null);
  assert.equal(nginx?.idleCpuTarget, null);
});

test('idle: a baseline of 0 bytes or no baseline gives no ratio; no rounds gives nulls', () => {
  const zero = summarizeIdle([idle('haproxy', [0, 0]), idle('switchyard-node', [3000, 3000])]);
  assert.equal(zero[1]?.ratio, null);
  near(zero[1]?.rssPerConnectionBytes ?? null, 3000, 'RSS still reported');

  const alone = summarizeIdle([idle('switchyard-node', [3000])]);
  assert.equal(alone[0]?.ratio, null);

  const failed = summarizeIdle([
    idle('haproxy', [3200]),
    { name: 'switchyard-bun', samples: [], failure: 'bun missing' },
  ])[1];
  assert.deepEqual(
    [failed?.rounds, failed?.connections, failed?.ratio, failed?.rssBeforeBytes, failed?.failure],
    [0, null, null, null, 'bun missing'],
  );
  // No sample claims imprecision, so none is reported.
  assert.equal(failed?.precise, true);
});

test('overhead: a proxy with and without a feature, paired by round; direct has no row', () => {
  // Round 1 of pp-v2 was measured right after round 1 of pp-plain: the ratio is taken there.
  const rows = summarizeOverhead(
    [runs('direct', [null, null, null]), runs('haproxy', [10, 12, 11])],
    [runs('direct', [null, null, null]), runs('haproxy', [11, 15, 11])],
  );
  assert.equal(rows.length, 1);
  const [h] = rows;
  assert.ok(h);
  assert.equal(h.name, 'haproxy');
  near(h.withoutUs, 11, 'plain median');
  near(h.withUs, 11, 'variant median');
  near(h.ratio, 1.1, 'median of 1.1, 1.25, 1');
  near(h.ratioMin, 1, 'lowest');
  near(h.ratioMax, 1.25, 'highest');
  assert.equal(h.rounds, 3);
  assert.equal(h.failure, null);
});

test('overhead: a round missing on one side is left out; a proxy never run with it says so', () => {
  const variant = runs('switchyard-node', [20, 30]);
  variant.samples.shift(); // round 0 failed its retry, say
  const rows = summarizeOverhead(
    [runs('switchyard-node', [10, 10]), runs('haproxy', [10, 10])],
    [variant],
  );
  const [sy, h] = rows;
  assert.ok(sy && h);
  near(sy.ratio, 3, 'only round 1 pairs');
  assert.equal(sy.rounds, 1);
  assert.equal(h.ratio, null);
  assert.equal(h.failure, 'not run with the feature');
});

test("sni target: each engine's sni-route over HAProxy's sni-plain of the same round", () => {
  const plain = [
    runs('direct', [null, null, null]),
    runs('haproxy', [10, 20, 40]),
    runs('switchyard-node', [30, 30, 30]),
    runs('switchyard-bun', [25, 25, 25]),
  ];
  const route = [
    runs('direct', [null, null, null]),
    runs('haproxy', [100, 100, 100]),
    runs('switchyard-node', [11, 30, 40]),
    runs('switchyard-bun', [12, 18, 36]),
  ];
  const rows = summarizePassthroughTarget(plain, route);
  // Only the engines with a target: not direct, not HAProxy itself.
  assert.deepEqual(
    rows.map((r) => r.name),
    ['switchyard-node', 'switchyard-bun'],
  );
  const [node, bun] = rows;
  assert.ok(node && bun);
  // 1.1, 1.5 and 1.0. Against its own sni-plain it would be 0.37–1.33, against HAProxy's
  // sni-route 0.11–0.4, and the ratio of the medians 30 / 20 = 1.5.
  near(node.ratio, 1.1, 'median of per-round ratios');
  near(node.ratioMin, 1, 'lowest');
  near(node.ratioMax, 1.5, 'highest');
  near(node.routeUs, 30, "node's median sni-route cost");
  near(node.baselineUs, 20, "HAProxy's median sni-plain cost");
  assert.equal(node.rounds, 3);
  assert.equal(node.target, 1.1);
  assert.equal(node.failure, null);
  // 1.2, 0.9 and 0.9.
  near(bun.ratio, 0.9, 'bun');
  near(bun.ratioMax, 1.2, 'bun highest');
  assert.equal(bun.target, 1.1);
});

test('sni target: rounds missing on either side are left out; no HAProxy sni-plain, no ratio', () => {
  const haproxy = runs('haproxy', [10, 20, 40]);
  haproxy.samples.splice(1, 1); // round 1 of HAProxy failed, say
  const [node] = summarizePassthroughTarget([haproxy], [runs('switchyard-node', [11, 1000, 44])]);
  near(node?.ratio ?? null, 1.1, 'rounds 0 and 2 only');
  near(node?.ratioMax ?? null, 1.1, 'round 1 left out');
  assert.equal(node?.rounds, 2);

  const [alone] = summarizePassthroughTarget(
    [runs('switchyard-node', [10])],
    [runs('switchyard-node', [11])],
  );
  assert.equal(alone?.ratio, null);
  assert.equal(alone?.baselineUs, null);
  assert.equal(alone?.failure, 'no HAProxy sni-plain run');
  near(alone?.routeUs ?? null, 11, 'cost still reported');
});
