// The `switchyard` command as a user runs it: bin/switchyard.js on the compiled dist/.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ROOT, startEchoServer } from '../helpers.ts';

const BIN = `${ROOT}bin/switchyard.js`;

function runCli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 10_000 });
}

test('bad or missing arguments exit 2 with one line naming the argument', () => {
  const cases: [string[], RegExp][] = [
    [[], /--listen is required/],
    [['--listen', '127.0.0.1:8080'], /--backend is required/],
    [['--listen', 'nonsense', '--backend', '127.0.0.1:1'], /--listen: expected HOST:PORT/],
    [['--listen', '127.0.0.1:99999', '--backend', '127.0.0.1:1'], /--listen: expected HOST:PORT/],
    [['--listen', ':1', '--backend', '127.0.0.1:0'], /--backend: port 0/],
    [
      ['--listen', ':1', '--backend', ':2', '--max-connections', '0'],
      /--max-connections: expected a whole number/,
    ],
    [['--listen', ':1', '--backend', ':2', '--max-connections', 'ten'], /--max-connections/],
    [
      ['--listen', ':1', '--backend', ':2', '--buffer-size', '16q'],
      /--buffer-size: expected a size/,
    ],
    [
      ['--listen', ':1', '--backend', ':2', '--buffer-size', '1'],
      /--buffer-size: expected between/,
    ],
    [
      ['--listen', ':1', '--backend', ':2', '--connect-timeout', '5 sec'],
      /--connect-timeout: expected a duration/,
    ],
    [
      ['--listen', ':1', '--backend', ':2', '--idle-timeout', 'soon'],
      /--idle-timeout: expected a duration/,
    ],
    [['--listen', ':1', '--backend', ':2', '--log-level', 'loud'], /--log-level: expected one of/],
    [['--listen', ':1', '--backend', ':2', '--engine', 'deno'], /--engine: expected node or bun/],
    [['--listen', ':1', '--backend', ':2', '--frobnicate'], /--frobnicate/],
    [['--listen', ':1', '--backend', ':2', 'extra'], /extra/],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args);
    assert.equal(r.status, 2, `exit status for ${args.join(' ')}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0] as string, message);
    assert.equal(r.stdout, '');
  }
});

test('--help and --version', () => {
  const help = runCli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--listen HOST:PORT/);
  assert.match(help.stdout, /--max-connections/);
  const version = runCli(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('listens on [::1], logs where, forwards, and exits 0 on SIGTERM', async (t) => {
  const backend = await startEchoServer(t);
  const child = spawn(
    process.execPath,
    [BIN, '--listen', '[::1]:0', '--backend', `127.0.0.1:${backend.port}`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stderr });
  const [first] = (await once(lines, 'line')) as [string];
  const entry = JSON.parse(first);
  const m = /listening on \[::1\]:(\d+)$/.exec(entry.msg);
  assert.ok(m, `start line names the address: ${entry.msg}`);
  const socket = net.connect({ host: '::1', port: Number(m[1]) });
  await once(socket, 'connect');
  socket.write('over v6');
  const [data] = await once(socket, 'data');
  assert.equal(String(data), 'over v6');
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  socket.destroy();
});

test('a port already in use: exit 1 with the reason', async (t) => {
  const backend = await startEchoServer(t);
  const r = runCli(['--listen', `127.0.0.1:${backend.port}`, '--backend', '127.0.0.1:1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /EADDRINUSE/);
});
