import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CpuProfile,
  frameCategory,
  perfCategory,
  summarizeCpuProfile,
  summarizePerfReport,
} from '../../bench/profile-summary.ts';

test('cpuprofile frames: idle and root left out, V8 specials, node: modules, switchyard', () => {
  assert.equal(frameCategory('(idle)', ''), null);
  assert.equal(frameCategory('(root)', ''), null);
  assert.equal(frameCategory('(garbage collector)', ''), 'V8 garbage collector');
  assert.match(frameCategory('(program)', '') ?? '', /^native, no JS/);
  assert.equal(frameCategory('onhandshakedone', 'node:_tls_wrap'), 'Node JS: tls');
  assert.equal(frameCategory('emit', 'node:events'), 'Node JS: net, streams, events, timers');
  assert.equal(frameCategory('writeGeneric', ''), 'native functions called from JS');
  assert.equal(frameCategory('pump', 'file:///w/dist/core/session.js'), 'switchyard');
  assert.equal(
    frameCategory('x', 'file:///w/node_modules/pino/pino.js'),
    'dependencies (node_modules)',
  );
});

test('cpuprofile: self time per sample from timeDeltas, idle out of the total', () => {
  const p: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '' } },
      { id: 2, callFrame: { functionName: '(program)', url: '' } },
      { id: 3, callFrame: { functionName: '(idle)', url: '' } },
      { id: 4, callFrame: { functionName: 'onread', url: 'node:_tls_wrap', lineNumber: 9 } },
    ],
    samples: [2, 4, 3, 2, 4],
    timeDeltas: [1000, 1000, 5000, 2000, 0],
  };
  const s = summarizeCpuProfile(p);
  assert.equal(s.busyMs, 4);
  assert.deepEqual(
    s.categories.map((c) => [c.name.slice(0, 6), c.amount, c.percent]),
    [
      ['native', 3, 75],
      ['Node J', 1, 25],
    ],
  );
  assert.equal(s.top[1]?.name, 'onread node:_tls_wrap:10');
});

test('perf symbols: OpenSSL in the node binary, V8, Node C++, kernel, JIT', () => {
  assert.equal(perfCategory('node', 'ecp_nistz256_mul_mont', false), 'OpenSSL');
  assert.equal(perfCategory('node', 'EVP_DigestSignFinal', false), 'OpenSSL');
  assert.equal(perfCategory('libcrypto.so.3', 'foo', false), 'OpenSSL');
  assert.equal(
    perfCategory('node', 'v8::internal::Heap::Scavenge', false),
    'V8 (runtime, builtins, GC)',
  );
  assert.equal(perfCategory('node', 'Builtins_CallFunction', false), 'V8 (runtime, builtins, GC)');
  assert.match(perfCategory('node', 'node::crypto::TLSWrap::ClearOut()', false), /^Node C\+\+/);
  assert.equal(perfCategory('node', 'uv__io_poll', false), 'libuv');
  assert.equal(perfCategory('[kernel.kallsyms]', 'tcp_sendmsg', true), 'kernel');
  assert.equal(perfCategory('perf-123.map', '0x7f00', false), 'JIT code (JavaScript, V8 builtins)');
  assert.equal(perfCategory('libc.so.6', 'memcpy', false), 'libc');
});

test('perf report lines: summed by category, top symbols first', () => {
  const text = [
    '    30.00%  node               [.] ecp_nistz256_ord_sqr_mont',
    '    20.00%  [kernel.kallsyms]  [k] tcp_sendmsg',
    '    10.00%  node               [.] EVP_PKEY_sign',
    '     5.00%  node               [.] v8::internal::Heap::Scavenge',
    '# a comment',
    '',
  ].join('\n');
  const p = summarizePerfReport(text);
  assert.deepEqual(
    p.categories.map((c) => [c.name, c.percent]),
    [
      ['OpenSSL', 40],
      ['kernel', 20],
      ['V8 (runtime, builtins, GC)', 5],
    ],
  );
  assert.equal(p.top[0]?.name, 'ecp_nistz256_ord_sqr_mont (node, OpenSSL)');
});
