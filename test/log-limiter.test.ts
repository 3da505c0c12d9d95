// The log rate limit, on a clock the test moves: lines per key and window, then one summary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { LogLimiter } from '../src/log-limiter.ts';
import { logDroppedByReason } from '../src/log-writer.ts';

interface Line {
  level: number;
  msg: string;
  key?: string;
  suppressed?: number;
  port?: number;
}

/** A limiter on a fake clock writing to an array; closed in t.after. */
function setup(t: { after(fn: () => void): void }, linesPerWindow = 3) {
  const lines: Line[] = [];
  const log = pino(
    { base: null, timestamp: false, level: 'trace' },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s) as Line);
      },
    },
  );
  const clock = { ms: 1000 };
  const limiter = new LogLimiter(log, { linesPerWindow, windowMs: 1000, now: () => clock.ms });
  t.after(() => limiter.close());
  return { lines, clock, limiter };
}

test('a key writes its lines per window, then one "N similar lines suppressed" line', (t) => {
  const { lines, clock, limiter } = setup(t);
  const suppressedBefore = logDroppedByReason().suppressed;
  const written: boolean[] = [];
  for (let i = 0; i < 10; i++) {
    written.push(limiter.write('warn', 'refused', { port: i }, 'connect refused'));
  }
  assert.deepEqual(written, [true, true, true, false, false, false, false, false, false, false]);
  assert.deepEqual(
    lines.map((l) => l.port),
    [0, 1, 2],
  );
  assert.equal(logDroppedByReason().suppressed - suppressedBefore, 7);

  // Still inside the window: no summary yet.
  clock.ms += 999;
  limiter.flush();
  assert.equal(lines.length, 3);

  // The window is over: one summary, at the level of the lines it stands for.
  clock.ms += 1;
  limiter.flush();
  assert.equal(lines.length, 4);
  const summary = lines[3] as Line;
  assert.equal(summary.msg, '7 similar lines suppressed');
  assert.equal(summary.key, 'refused');
  assert.equal(summary.suppressed, 7);
  assert.equal(summary.level, 40);

  // A new window writes again; nothing held back means no summary.
  assert.equal(limiter.write('warn', 'refused', { port: 99 }, 'connect refused'), true);
  clock.ms += 5000;
  limiter.flush();
  assert.equal(lines.length, 5);
});

test('keys are limited apart; a line in a new window writes the old window summary first', (t) => {
  const { lines, clock, limiter } = setup(t, 1);
  limiter.write('warn', 'a', {}, 'a1');
  limiter.write('warn', 'a', {}, 'a2');
  limiter.write('error', 'b', {}, 'b1');
  limiter.write('error', 'b', {}, 'b2');
  limiter.write('error', 'b', {}, 'b3');
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['a1', 'b1'],
  );
  clock.ms += 1000;
  limiter.write('warn', 'a', {}, 'a3');
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['a1', 'b1', '1 similar lines suppressed', 'a3'],
  );
  limiter.close();
  assert.deepEqual(
    lines.map((l) => `${l.key ?? ''}:${l.msg}`),
    [':a1', ':b1', 'a:1 similar lines suppressed', ':a3', 'b:2 similar lines suppressed'],
  );
});

test('a flood of 100,000 lines writes a bounded number per window', (t) => {
  const { lines, clock, limiter } = setup(t, 10);
  for (let i = 0; i < 100_000; i++) {
    if (i % 10_000 === 0) clock.ms += 1000; // ten windows
    limiter.write('warn', 'refused', {}, 'connect refused');
  }
  limiter.close();
  const summaries = lines.filter((l) => l.suppressed !== undefined);
  assert.equal(lines.length - summaries.length, 100, '10 lines in each of 10 windows');
  assert.equal(summaries.length, 10);
  assert.equal(
    summaries.reduce((n, l) => n + (l.suppressed ?? 0), 0),
    100_000 - 100,
  );
});
