// What the runtime can do, asked by any layer: version comparison and the one-line refusal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareVersions,
  isSingleExecutable,
  nodeFeatureProblem,
  selfCommand,
} from '../src/runtime-check.ts';

test('versions compare by number, not by text', () => {
  assert.equal(compareVersions('22.12.0', '22.12.0'), 0);
  assert.equal(compareVersions('v22.9.0', '22.12.0'), -1);
  assert.equal(compareVersions('26.1.0', '26.0.9'), 1);
  assert.equal(compareVersions('24', '22.12.0'), 1);
});

test('a feature on too old a Node is refused with one line naming both versions', () => {
  const old = { ...process.versions, node: '22.23.3' };
  assert.equal(
    nodeFeatureProblem('--engine epoll (node:ffi)', '26.1.0', old),
    '--engine epoll (node:ffi) needs Node >= 26.1.0; this is Node 22.23.3',
  );
  assert.equal(nodeFeatureProblem('x', '26.1.0', { ...old, node: '26.1.0' }), null);
  const bun = { ...old, bun: '1.4.5' } as NodeJS.ProcessVersions;
  assert.match(nodeFeatureProblem('x', '26.1.0', bun) as string, /this is Bun 1\.4\.5$/);
});

test('outside a single executable a worker is this runtime and this script', () => {
  assert.equal(isSingleExecutable(), false);
  assert.deepEqual(selfCommand(), [process.execPath, process.argv[1] ?? '']);
});
