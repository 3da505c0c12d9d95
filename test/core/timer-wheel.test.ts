import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type TimerEntry, TimerWheel } from '../../src/core/timer-wheel.ts';

function entry(deadline: () => number, fired: string[], name: string): TimerEntry {
  return { deadline, expire: () => fired.push(name), wheelSlot: -1, wheelIndex: 0 };
}

test('fires at the deadline, not before, within one tick', () => {
  const wheel = new TimerWheel(100, 16);
  const t0 = wheel.now;
  const fired: string[] = [];
  wheel.schedule(entry(() => t0 + 450, fired, 'a'));
  wheel.tick(t0 + 400);
  assert.deepEqual(fired, []);
  wheel.tick(t0 + 550);
  assert.deepEqual(fired, ['a']);
});

test('activity pushes a deadline later without touching the wheel', () => {
  const wheel = new TimerWheel(100, 16);
  const t0 = wheel.now;
  const fired: string[] = [];
  let last = t0;
  wheel.schedule(entry(() => last + 300, fired, 'a'));
  wheel.tick(t0 + 200);
  last = t0 + 200; // activity
  wheel.tick(t0 + 400);
  assert.deepEqual(fired, [], 'refiled, not expired');
  wheel.tick(t0 + 600);
  assert.deepEqual(fired, ['a']);
});

test('deadlines beyond the horizon are refiled until due; cancel removes in O(1)', () => {
  const wheel = new TimerWheel(100, 8); // horizon 700 ms
  const t0 = wheel.now;
  const fired: string[] = [];
  const far = entry(() => t0 + 2_000, fired, 'far');
  const gone = entry(() => t0 + 300, fired, 'gone');
  const kept = entry(() => t0 + 300, fired, 'kept');
  wheel.schedule(far);
  wheel.schedule(gone);
  wheel.schedule(kept);
  wheel.cancel(gone);
  for (let t = t0; t <= t0 + 1_900; t += 100) wheel.tick(t);
  assert.deepEqual(fired, ['kept']);
  for (let t = t0 + 2_000; t <= t0 + 2_200; t += 100) wheel.tick(t);
  assert.deepEqual(fired, ['kept', 'far']);
});

test('an entry whose deadline became 0 is dropped', () => {
  const wheel = new TimerWheel(100, 16);
  const t0 = wheel.now;
  const fired: string[] = [];
  let deadline = t0 + 200;
  wheel.schedule(entry(() => deadline, fired, 'a'));
  deadline = 0;
  wheel.tick(t0 + 500);
  assert.deepEqual(fired, []);
});

test('on a real clock: the wheel wakes for the earliest deadline, also after sleeping empty', async () => {
  const wheel = new TimerWheel(50, 64);
  wheel.start();
  await new Promise((r) => setTimeout(r, 120)); // empty: nothing armed, the wheel sleeps
  const fired: number[] = [];
  const started = Date.now();
  const late = entry(() => started + 400, [], 'late');
  late.expire = () => fired.push(Date.now() - started);
  const soon = entry(() => started + 150, [], 'soon');
  soon.expire = () => fired.push(Date.now() - started);
  wheel.schedule(late);
  wheel.schedule(soon); // earlier than what the wheel is armed for: it re-arms
  await new Promise((r) => setTimeout(r, 600));
  wheel.stop();
  assert.equal(fired.length, 2);
  const [a, b] = fired as [number, number];
  assert.ok(a >= 150, `soon fired at ${a} ms, not before its deadline`);
  // Had the wheel not re-armed for the earlier entry, it would have slept until `late`.
  assert.ok(a < 400, `soon fired at ${a} ms, before late's deadline`);
  assert.ok(b >= 400, `late fired at ${b} ms, not before its deadline`);
});
