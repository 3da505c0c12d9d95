import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BEGIN_MARKER,
  END_MARKER,
  LATEST,
  README,
  readmeTable,
  tableIn,
  updateReadme,
  withTable,
} from '../../bench/readme-table.ts';

test("README.md's performance table is the one bench/results/latest.md gives", () => {
  const readme = readFileSync(README, 'utf8');
  const expected = readmeTable(readFileSync(LATEST, 'utf8'));
  assert.equal(
    tableIn(readme),
    expected,
    'README.md and bench/results/latest.md disagree: run `node bench/readme-table.ts`',
  );
});

/** A latest.md as report.ts writes it, with only the parts the table is made from. */
function latest(rows: string[], columns = '| small (CPU/request) | bulk (CPU/MiB) |'): string {
  return [
    '# switchyard benchmark — 2027-01-02',
    '',
    'AMD EPYC 7B13, 4 CPUs, Linux 6.1.0. Proxy pinned to CPU 1; the rest to CPU 0.',
    '',
    '## Proxy CPU per unit of work, relative to HAProxy',
    '',
    'Median over 5 rounds.',
    '',
    `| contender ${columns} churn (CPU/connection) | redis (CPU/request) | RSS/idle connection | idle CPU |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    '| haproxy (baseline) | 1.00 (13.7 µs) | 1.00 (530 µs) | 1.00 (61.5 µs) | 1.00 (0.97 µs) | 1.00 (3.2 KiB) | 0.092 % |',
    ...rows,
    '',
    'Targets: switchyard-node ≤ 1.10 small.',
    '',
    '## small keep-alive requests',
    '',
    '| contender | req/s |',
    '| --- | ---: |',
    '| switchyard-node | 59,448 |',
  ].join('\n');
}

test('the table: ratios with their verdicts, memory with its size, n/a kept or filled in', () => {
  const block = readmeTable(
    latest([
      '| switchyard-node | 0.95 (13.0 µs) ✓ | 1.22 (660 µs) ✗ | n/a | 1.26 (1.21 µs) | 1.97 (6.4 KiB) ✗ | 1.7 % ✗ |',
      '| switchyard-bun-extra | 9.99 (1 µs) | 9.99 (1 µs) | 9.99 (1 µs) | 9.99 (1 µs) | 9.99 (1 KiB) | 0 % |',
    ]),
  );
  assert.equal(
    block,
    [
      'From the complete run of 2027-01-02 on AMD EPYC 7B13, 4 CPUs, Linux 6.1.0.',
      "Each engine's cost as a ratio to HAProxy's in the same round (CPU per request, per MiB, per",
      'connection; memory per idle connection). Lower is better; ✓/✗: within/over the target.',
      '',
      '| engine | small requests | 1 MiB transfers | connection churn | RSS per idle connection |',
      '| --- | --- | --- | --- | --- |',
      '| node | 0.95 × ✓ | 1.22 × ✗ | n/a | 1.97 × (6.4 KiB) ✗ |',
      // Not in the run (a name that merely starts the same does not count).
      '| bun | n/a | n/a | n/a | n/a |',
      '',
      'Targets: switchyard-node ≤ 1.10 small.',
    ].join('\n'),
  );
});

test('the table: latest.md without the parts it is made from is an error, not a guess', () => {
  const row =
    '| switchyard-node | 1.00 (1 µs) | 1.00 (1 µs) | 1.00 (1 µs) | 1.00 (1 µs) | 1.00 (1 KiB) | 0 % |';
  const good = latest([row]);
  assert.doesNotThrow(() => readmeTable(good));
  assert.throws(() => readmeTable(''), /title/);
  assert.throws(() => readmeTable(good.replace(', Linux', ', BSD')), /machine/);
  assert.throws(() => readmeTable(good.replace('## Proxy CPU', '## CPU')), /section/);
  assert.throws(() => readmeTable(good.replace('Targets: ', 'Goals: ')), /Targets/);
  assert.throws(
    () => readmeTable(latest([row], '| tiny (CPU/request) | bulk (CPU/MiB) |')),
    /small/,
  );
});

test('the markers: only the text between them changes, and a rewrite is idempotent', () => {
  const readme = `# x\n\nbefore\n${BEGIN_MARKER}\nold table\n${END_MARKER}\nafter\n`;
  const once = withTable(readme, '| new |');
  assert.equal(once, `# x\n\nbefore\n${BEGIN_MARKER}\n| new |\n${END_MARKER}\nafter\n`);
  assert.equal(withTable(once, '| new |'), once);
  assert.equal(tableIn(once), '| new |');
  // An empty block (as a fresh README has it) is filled in the same way.
  assert.equal(
    withTable(`${BEGIN_MARKER}\n${END_MARKER}`, 't'),
    `${BEGIN_MARKER}\nt\n${END_MARKER}`,
  );

  for (const bad of [
    'no markers',
    `${BEGIN_MARKER} only the beginning`,
    `${END_MARKER} then ${BEGIN_MARKER}`,
    `${BEGIN_MARKER} twice ${BEGIN_MARKER} ${END_MARKER}`,
  ]) {
    assert.throws(() => withTable(bad, 't'), /README\.md: expected one/, bad);
  }
});

test('updateReadme rewrites a README file and says whether it changed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-readme-table-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const readme = join(dir, 'README.md');
  writeFileSync(readme, `# x\n${BEGIN_MARKER}\nstale\n${END_MARKER}\n`);
  assert.equal(updateReadme(readme, LATEST), true);
  assert.equal(tableIn(readFileSync(readme, 'utf8')), readmeTable(readFileSync(LATEST, 'utf8')));
  assert.equal(updateReadme(readme, LATEST), false);
});
