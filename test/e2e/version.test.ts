// `switchyard --version`: what would run with the given flags, so a bug report says it in one paste.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from '../support/proc.ts';

const BIN = `${ROOT}bin/switchyard.js`;

function version(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args, '--version'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('--version names this runtime and its engine', () => {
  const out = version([]);
  assert.match(out, /^switchyard \d+\.\d+\.\d+\n/);
  assert.match(
    out,
    new RegExp(`\nruntime: node ${process.versions.node.replace(/\./g, '\\.')} \\(`),
  );
  assert.match(out, /\nengine: node \(/);
});

test('--engine bun --version is the version of the bun that --engine bun would run', () => {
  const out = version(['--engine', 'bun']);
  assert.match(out, /\nruntime: bun \d+\.\d+\.\d+ \(/);
  assert.match(out, /\nengine: bun \(Bun\.listen/);
});
