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

test('deadlines beyond the horizon are refiled until due; cancel removes the entry', () => {
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

/** An entry that counts how often the wheel asks for its deadline. */
function counted(at: number): TimerEntry & { asked: number } {
  const e = {
    asked: 0,
    deadline() {
      e.asked++;
      return at;
    },
    expire() {},
    wheelSlot: -1,
    wheelIndex: 0,
  };
  return e;
}

test('schedule and cancel touch one entry (and the one moved into its place), however many are filed', () => {
  const wheel = new TimerWheel(100, 16, { clock: () => 0 });
  // 10,000 entries in the same slot: the worst case for anything that scans or shifts a slot.
  const many = Array.from({ length: 10_000 }, () => counted(500));
  for (const e of many) wheel.schedule(e);
  const before = many.map((e) => `${e.wheelSlot}:${e.wheelIndex}`);
  for (const e of many) e.asked = 0;

  const extra = counted(500);
  wheel.schedule(extra);
  assert.equal(extra.asked, 1, 'schedule asks the new entry once');
  const victim = many[1234] as TimerEntry & { asked: number };
  const oldIndex = victim.wheelIndex;
  wheel.cancel(victim);
  assert.equal(victim.wheelSlot, -1);
  // The last entry of the slot takes the cancelled one's place; nobody else moves or is asked.
  assert.equal(extra.wheelIndex, oldIndex, 'the last entry filled the hole');
  const moved = many.filter(
    (e, i) => e !== victim && `${e.wheelSlot}:${e.wheelIndex}` !== before[i],
  );
  assert.deepEqual(moved, [], 'no other entry moved');
  assert.equal(
    many.reduce((n, e) => n + e.asked, 0),
    0,
    'no other entry was asked for its deadline',
  );
});

test('the wheel runs on its injected clock: a wall-clock step neither fires nor freezes a timeout', (t) => {
  let mono = 1_000_000;
  const wheel = new TimerWheel(100, 16, { clock: () => mono });
  const fired: string[] = [];
  const start = wheel.now;
  wheel.schedule(entry(() => start + 500, fired, 'a'));

  const realNow = Date.now;
  t.after(() => {
    Date.now = realNow;
  });
  Date.now = () => realNow() + 3_600_000; // the wall clock jumps an hour ahead
  mono += 200;
  wheel.tick();
  assert.deepEqual(fired, [], 'not fired by a wall clock an hour ahead');

  Date.now = () => realNow() - 3_600_000; // and an hour back
  mono += 400; // 600 ms on the monotonic clock: past the deadline
  wheel.tick();
  assert.deepEqual(fired, ['a'], 'not frozen by a wall clock an hour behind');
});

test('the default clock is monotonic: Date.now() stepping an hour moves neither `now` nor deadlines', (t) => {
  const wheel = new TimerWheel(100, 16);
  const fired: string[] = [];
  const before = wheel.now;
  wheel.schedule(entry(() => before + 60_000, fired, 'a'));
  const realNow = Date.now;
  t.after(() => {
    Date.now = realNow;
  });
  Date.now = () => realNow() + 3_600_000;
  const after = wheel.now;
  // Real time between the two reads is far below the hour the wall clock stepped.
  assert.ok(after - before < 60_000, `now moved ${after - before} ms`);
  wheel.tick();
  assert.deepEqual(fired, [], 'a minute-away deadline did not fire');
});
