// The log writer on real files: lines in order, a full queue and a failing device counted as
// dropped (never thrown), a file opened again at its path after a rename.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { LineWriter, logDroppedByReason } from '../src/log-writer.ts';
import { waitFor } from './support/clients.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('writes every line in order to a file it creates with its directory', async (t) => {
  const file = join(tempDir(t), 'a', 'b', 'out.log');
  const w = new LineWriter({ path: file });
  for (let i = 0; i < 5000; i++) w.write(`${i}\n`);
  await w.end(10_000);
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 5000);
  assert.ok(lines.every((l, i) => l === String(i)));
});

test('a full queue drops lines, counted as full', async (t) => {
  const file = join(tempDir(t), 'out.log');
  const before = logDroppedByReason().full;
  const w = new LineWriter({ path: file }, { maxQueued: 100 });
  // The file is still being opened: everything queues, and the cap holds ten 10-unit lines.
  for (let i = 0; i < 50; i++) w.write('123456789\n');
  assert.equal(logDroppedByReason().full - before, 40);
  await w.end(10_000);
  assert.equal(readFileSync(file, 'utf8').length, 100);
});

test('/dev/full: every line dropped as error, one report per error code, nothing thrown', async () => {
  const before = logDroppedByReason().error;
  const errors: string[] = [];
  const w = new LineWriter({ path: '/dev/full' }, { onError: (e) => errors.push(String(e.code)) });
  for (let i = 0; i < 100; i++) w.write('a line\n');
  await waitFor(() => logDroppedByReason().error - before === 100, 10_000, '100 dropped lines');
  assert.deepEqual(errors, ['ENOSPC']);
  await w.end(100);
});

test('reopen(): after a rename, new lines go to a new file at the path', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'out.log');
  const w = new LineWriter({ path: file });
  w.write('before\n');
  await w.flush(10_000);
  renameSync(file, `${file}.1`);
  w.write('still old\n');
  w.reopen();
  w.write('after\n');
  await w.end(10_000);
  assert.equal(readFileSync(`${file}.1`, 'utf8'), 'before\nstill old\n');
  assert.ok(existsSync(file));
  assert.equal(readFileSync(file, 'utf8'), 'after\n');
});
