// Fault tests of config input: a file that is hostile (a YAML alias bomb) or simply not a
// switchyard config (`--config /etc/shadow`, a file of `key: value` secrets) is one short config
// error, exit 2, that never pours the file's content into the logs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { parseConfigYaml } from '../../src/config/load.ts';
import { ConfigError, ErrorCode } from '../../src/errors.ts';
import { ROOT } from '../support/proc.ts';

const BIN = `${ROOT}bin/switchyard.js`;

function runCli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

/** Writes `text` to a temporary file, removed in t.after. */
function tempFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, text);
  return path;
}

/** "Billion laughs": 9 levels of 9 aliases each, 9^9 strings once expanded. */
function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  let prev = 'a';
  for (const c of 'bcdefghi') {
    lines.push(`${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]`);
    prev = c;
  }
  return `${lines.join('\n')}\n`;
}

/** 200 lines of `secret_N: <long value>`, the shape of an env file or a key store. */
function secretFile(): string {
  const long = 'k'.repeat(200);
  return Array.from({ length: 200 }, (_, i) => `secret_${i}_${long}: hunter2-${i}\n`).join('');
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.equal(err.code, ErrorCode.INVALID_CONFIG);
    return err;
  }
  assert.fail('accepted');
}

test('a YAML alias bomb is a config error', () => {
  const err = configError(() => parseConfigYaml(aliasBomb(), 'bomb.yaml'));
  assert.equal(err.problems.length, 1, err.problems.join('\n'));
  assert.match(err.problems[0] ?? '', /^bomb\.yaml: .*alias/);
});

test('a YAML alias bomb via the command: exit 2, one line after the header', (t) => {
  const r = runCli(['--config', tempFile(t, aliasBomb())]);
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0] as string, /^switchyard: invalid config, 1 problem:$/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('a file of many keys: 20 problems listed, then how many more; keys truncated', () => {
  const err = configError(() => parseConfigYaml(secretFile(), 'secrets'));
  assert.equal(err.problems.length, 21, err.problems.join('\n'));
  assert.match(err.problems[20] ?? '', /^and 182 more problems$/);
  for (const p of err.problems) {
    assert.ok(p.length <= 80, `short: ${p}`);
    assert.doesNotMatch(p, /hunter2/, 'values never echoed');
  }
  assert.ok(err.problems.some((p) => /^secret_\d+_k+…: unknown key$/.test(p)));
});

test('--config on a secret file: a bounded, truncated listing', (t) => {
  const r = runCli(['--config', tempFile(t, secretFile())]);
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines[0], 'switchyard: invalid config, 202 problems:');
  assert.equal(lines.length, 22, r.stderr);
  assert.equal(lines[21], 'and 182 more problems');
  assert.ok(r.stderr.length < 2000, `${r.stderr.length} bytes of stderr`);
});

test('--config /etc/shadow-like text: one line, no content echoed', (t) => {
  const shadow =
    'root:$6$s4ltS3cr3t$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';
  const r = runCli(['--config', tempFile(t, shadow)]);
  assert.equal(r.status, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /s4ltS3cr3t/);
  assert.ok(r.stderr.trim().split('\n').length <= 22, r.stderr);
});

test('values echoed in reasons are truncated too', () => {
  const err = configError(() =>
    parseConfigYaml(
      `frontends: [{ name: w, listen: "${'x'.repeat(500)}", backend: a }]\nbackends: [{ name: a, servers: [{ name: s, address: "127.0.0.1:1" }] }]\n`,
    ),
  );
  assert.equal(err.problems.length, 1);
  assert.ok((err.problems[0] ?? '').length < 120, String(err.problems[0]));
});

test('the command line has the limits of the config schema: exit 2, one line', () => {
  const cases: [string[], RegExp][] = [
    [
      ['--max-connections', '1000001'],
      /^switchyard: --max-connections: expected a whole number from 1 to 1000000/,
    ],
    [
      ['--max-connections', '0'],
      /^switchyard: --max-connections: expected a whole number from 1 to 1000000/,
    ],
    [['--workers', '257'], /^switchyard: --workers: expected a whole number from 1 to 256/],
    [['--workers', '0'], /^switchyard: --workers: expected a whole number from 1 to 256/],
    [['--idle-timeout', '597h'], /^switchyard: --idle-timeout: at most 2147483647 ms/],
    [['--drain-timeout', '2147483648'], /^switchyard: --drain-timeout: at most 2147483647 ms/],
    [['--buffer-size', '17m'], /^switchyard: --buffer-size: expected between 1k and 16m/],
  ];
  for (const [extra, message] of cases) {
    const r = runCli(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:1', ...extra]);
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
});
