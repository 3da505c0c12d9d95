import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../src/defaults.ts';
import { ErrorCode } from '../src/errors.ts';
import {
  formatHostPort,
  isLoopbackHost,
  parseDuration,
  parseHostPort,
  parseSize,
  parseTimerDuration,
  parseWhole,
} from '../src/units.ts';

test('durations', () => {
  assert.equal(parseDuration('500ms', 'x'), 500);
  assert.equal(parseDuration('5s', 'x'), 5000);
  assert.equal(parseDuration('1m', 'x'), 60_000);
  assert.equal(parseDuration('1h', 'x'), 3_600_000);
  assert.equal(parseDuration('1.5s', 'x'), 1500);
  assert.equal(parseDuration('0', 'x'), 0);
  for (const bad of ['', '5 s', 's', '-1s', '5d', '1e3ms']) {
    assert.throws(() => parseDuration(bad, '--t'), { code: ErrorCode.INVALID_ARGUMENT });
  }
});

test('sizes', () => {
  assert.equal(parseSize('16k', 'x'), 16384);
  assert.equal(parseSize('16KiB', 'x'), 16384);
  assert.equal(parseSize('1m', 'x'), 1 << 20);
  assert.equal(parseSize('4096', 'x'), 4096);
  assert.throws(() => parseSize('16q', '--buffer-size'), /--buffer-size/);
});

test('addresses', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:8080', 'x'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseHostPort('[::1]:9000', 'x'), { host: '::1', port: 9000 });
  assert.deepEqual(parseHostPort(':80', 'x'), { host: '::', port: 80 });
  assert.deepEqual(parseHostPort('localhost:1', 'x'), { host: 'localhost', port: 1 });
  for (const bad of ['127.0.0.1', '::1:80', '1.2.3.4:70000', 'host:', '[::1]80']) {
    assert.throws(() => parseHostPort(bad, '--listen'), { code: ErrorCode.INVALID_ARGUMENT });
  }
  assert.equal(formatHostPort('::1', 80), '[::1]:80');
});

test('loopback hosts', () => {
  for (const host of [
    '127.0.0.1',
    '127.1.2.3',
    '::1',
    '::ffff:127.0.0.1',
    'localhost',
    'LOCALHOST',
  ]) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of [
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '128.0.0.1',
    'example.com',
    '127.0.0.1.nip.io',
  ]) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

test('whole numbers and timer durations within their limits', () => {
  assert.equal(parseWhole('256', '--workers', limits.workers), 256);
  for (const bad of ['0', '257', '-1', '1.5', 'ten', '', '99999999999999999']) {
    assert.throws(() => parseWhole(bad, '--workers', limits.workers), {
      code: ErrorCode.INVALID_ARGUMENT,
      message: /^--workers: expected a whole number from 1 to 256/,
    });
  }
  assert.equal(parseTimerDuration('596h', '--idle-timeout'), 596 * 3_600_000);
  assert.throws(() => parseTimerDuration('25d', '--idle-timeout'), {
    code: ErrorCode.INVALID_ARGUMENT,
  });
  assert.throws(() => parseTimerDuration('597h', '--idle-timeout'), {
    code: ErrorCode.INVALID_ARGUMENT,
    message: /^--idle-timeout: at most 2147483647 ms/,
  });
});
