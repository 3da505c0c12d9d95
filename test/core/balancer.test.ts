// The balancers are pure functions: tables in, a server index out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BalanceContext,
  balance,
  hashString,
  leastConnections,
  powerOfTwoChoices,
  smoothRoundRobin,
  sourceHash,
} from '../../src/core/balancer.ts';

function context(
  weights: number[],
  over: Partial<Omit<BalanceContext, 'weights'>> = {},
): BalanceContext {
  return {
    eligible: weights.map(() => true),
    weights,
    active: weights.map(() => 0),
    keys: weights.map((_, i) => hashString(`server-${i}`)),
    current: weights.map(() => 0),
    clientHash: 0,
    random: Math.random,
    ...over,
  };
}

const NAMES = 'abcdefghij';
function sequence(ctx: BalanceContext, n: number, pick = smoothRoundRobin): string {
  let out = '';
  for (let i = 0; i < n; i++) out += NAMES[pick(ctx, ctx.eligible)];
  return out;
}

test('smooth round-robin: interleaved, never a burst to one server', () => {
  const table: [number[], string][] = [
    [[1, 1, 1], 'abcabc'],
    [[5, 1, 1], 'aabacaa'], // nginx's example: not aaaaabc
    [[2, 1], 'abaaba'],
    [[1, 2, 3], 'cbacbc'],
    [[0, 1], 'bbb'], // weight 0 takes nothing
  ];
  for (const [weights, expected] of table) {
    assert.equal(sequence(context(weights), expected.length), expected, `weights ${weights}`);
  }
});

test('smooth round-robin: exact shares over a cycle, ineligible servers skipped', () => {
  const ctx = context([2, 1, 1]);
  const counts = [0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const pick = smoothRoundRobin(ctx, ctx.eligible);
    counts[pick] = (counts[pick] ?? 0) + 1;
  }
  assert.deepEqual(counts, [2000, 1000, 1000]);
  const without = context([2, 1, 1], { eligible: [true, false, true] });
  assert.equal(sequence(without, 6), 'acaaca');
  assert.equal(smoothRoundRobin(context([1, 1], { eligible: [false, false] }), [false, false]), -1);
});

test('leastconn: fewest active per unit of weight; ties shared in turn', () => {
  const table: [number[], number[], boolean[], number][] = [
    // weights, active, eligible, expected
    [[1, 1, 1], [3, 1, 2], [true, true, true], 1],
    [[1, 1, 1], [3, 1, 2], [true, false, true], 2],
    [[1, 2, 1], [2, 3, 2], [true, true, true], 1], // 3/2 < 2/1
    [[1, 1], [0, 0], [false, false], -1],
  ];
  for (const [weights, active, eligible, expected] of table) {
    assert.equal(
      leastConnections(context(weights, { active, eligible })),
      expected,
      `${weights} ${active} ${eligible}`,
    );
  }
  const idle = context([1, 1, 1]);
  assert.equal(
    sequence(idle, 6, (c) => leastConnections(c)),
    'abcabc',
  );
});

test('source: the same client always gets the same server', () => {
  const ctx = context([1, 1, 1, 1]);
  for (let c = 0; c < 200; c++) {
    const clientHash = hashString(`10.0.${c >> 8}.${c & 255}`);
    const first = sourceHash({ ...ctx, clientHash });
    for (let i = 0; i < 5; i++) assert.equal(sourceHash({ ...ctx, clientHash }), first);
  }
});

test('source: removing one of N servers moves only its clients, about 1/N of them', () => {
  for (const n of [3, 5, 10]) {
    const ctx = context(Array.from({ length: n }, () => 1));
    const clients = 10_000;
    const before: number[] = [];
    const counts = new Array(n).fill(0);
    for (let c = 0; c < clients; c++) {
      const pick = sourceHash({ ...ctx, clientHash: hashString(`192.168.${c >> 8}.${c & 255}`) });
      before.push(pick);
      counts[pick]++;
    }
    // Spread evenly: every server within 20% of its fair share.
    for (const k of counts) assert.ok(Math.abs(k - clients / n) < (clients / n) * 0.2, `${counts}`);
    const removed = n - 1;
    const eligible = ctx.eligible.map((_, i) => i !== removed);
    let moved = 0;
    for (let c = 0; c < clients; c++) {
      const clientHash = hashString(`192.168.${c >> 8}.${c & 255}`);
      const after = sourceHash({ ...ctx, eligible, clientHash });
      if (after !== before[c]) {
        moved++;
        assert.equal(before[c], removed, 'only clients of the removed server move');
      }
    }
    const share = moved / clients;
    assert.ok(Math.abs(share - 1 / n) < 0.03, `moved ${share}, expected about ${1 / n}`);
  }
});

test('source: weights shift the share', () => {
  const ctx = context([3, 1]);
  let onFirst = 0;
  for (let c = 0; c < 8000; c++) {
    if (sourceHash({ ...ctx, clientHash: hashString(`c${c}`) }) === 0) onFirst++;
  }
  assert.ok(Math.abs(onFirst / 8000 - 0.75) < 0.03, `${onFirst / 8000}`);
});

test('random (power of two choices): of the two drawn, the less loaded wins', () => {
  // random() answers are scripted: each draws a point in the total weight.
  const scripted = (values: number[]) => () => values.shift() ?? 0;
  const table: [number[], number[], number[], number][] = [
    // weights, active, random draws, expected
    [[1, 1, 1], [5, 0, 9], [0.1, 0.1], 1], // draws a, then b (of b,c): b has fewer
    [[1, 1, 1], [0, 5, 9], [0.1, 0.1], 0], // draws a, then b: a has fewer
    [[1, 1, 1], [9, 9, 0], [0.9, 0.9], 2], // draws c, then b: c
    [[1, 1], [3, 0], [0.1, 0.9], 1],
  ];
  for (const [weights, active, draws, expected] of table) {
    const ctx = context(weights, { active, random: scripted([...draws]) });
    assert.equal(powerOfTwoChoices(ctx), expected, `${weights} ${active} ${draws}`);
  }
  // One eligible server: it, without a second draw.
  const one = context([1, 1], { eligible: [false, true] });
  assert.equal(powerOfTwoChoices(one), 1);
  assert.equal(powerOfTwoChoices(context([1], { eligible: [false] })), -1);
});

/** A seeded PRNG (mulberry32), so a randomised table test gives the same answer every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random: held connections stay balanced (max - min small)', () => {
  const ctx = context([1, 1, 1, 1], { random: seeded(42) });
  const active = ctx.active as number[];
  for (let i = 0; i < 400; i++) {
    const pick = balance('random', ctx);
    active[pick] = (active[pick] ?? 0) + 1;
  }
  assert.ok(Math.max(...active) - Math.min(...active) <= 3, `${active}`);
});
