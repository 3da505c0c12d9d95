// The `switchyard` command as a user runs it: bin/switchyard.js on the compiled dist/.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { ROOT } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

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
  // SIGTERM drains: the proxy exits once its open connections are done.
  socket.destroy();
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('a port already in use: exit 1 with the reason', async (t) => {
  const backend = await startEchoServer(t);
  const r = runCli(['--listen', `127.0.0.1:${backend.port}`, '--backend', '127.0.0.1:1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /EADDRINUSE/);
});

/** Writes `text` to a temporary YAML file, removed in t.after. */
function configFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, text);
  return path;
}

test('--config with a bad file: exit 2, every problem on its own line', (t) => {
  const path = configFile(
    t,
    `frontends:
  - { name: web, listen: "127.0.0.1:99999", backend: nope, maxConnections: 0 }
backends:
  - name: app
    balance: weighted
    servers:
      - { name: a, address: "127.0.0.1:9001", weight: -1, colour: blue }
`,
  );
  const r = runCli(['--config', path]);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  const [header, ...problems] = r.stderr.trim().split('\n');
  assert.match(header as string, /^switchyard: invalid config, 6 problems:$/);
  const expected = [
    /^frontends\.0\.listen: expected HOST:PORT/,
    /^frontends\.0\.maxConnections: /,
    /^frontends\.0\.backend: no backend named "nope"$/,
    /^backends\.0\.balance: /,
    /^backends\.0\.servers\.0\.weight: /,
    /^backends\.0\.servers\.0\.colour: unknown key$/,
  ];
  assert.equal(problems.length, expected.length, r.stderr);
  for (const pattern of expected) {
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `missing ${pattern} in\n${r.stderr}`,
    );
  }
});

test('--config: a missing file exits 2; --config with --listen exits 2', (t) => {
  const missing = runCli(['--config', '/nonexistent/switchyard.yaml']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /\/nonexistent\/switchyard\.yaml: cannot read the file \(ENOENT\)/);
  const path = configFile(t, 'frontends: []\n');
  const mixed = runCli(['--config', path, '--listen', ':1']);
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /--listen: cannot be combined with --config/);
});

test('--config: two frontends, each its own listener, forwarding to its backend', async (t) => {
  const one = await startServerNamed(t, 'one');
  const two = await startServerNamed(t, 'two');
  const path = configFile(
    t,
    `frontends:
  - { name: first, listen: "127.0.0.1:0", backend: b1 }
  - { name: second, listen: "127.0.0.1:0", backend: b2 }
backends:
  - { name: b1, servers: [{ name: one, address: "127.0.0.1:${one}" }] }
  - { name: b2, servers: [{ name: two, address: "127.0.0.1:${two}" }] }
`,
  );
  const child = spawn(process.execPath, [BIN, '--config', path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stderr });
  const ports: Record<string, number> = {};
  for await (const line of lines) {
    const entry = JSON.parse(line);
    const m = /^frontend (\w+) listening on 127\.0\.0\.1:(\d+)$/.exec(entry.msg);
    if (m) ports[m[1] as string] = Number(m[2]);
    if (Object.keys(ports).length === 2) break;
  }
  for (const [frontend, expected] of [
    ['first', 'one'],
    ['second', 'two'],
  ] as const) {
    const socket = net.connect({ host: '127.0.0.1', port: ports[frontend] as number });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'end');
    assert.equal(Buffer.concat(chunks).toString(), expected);
    socket.destroy();
  }
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

/** A backend that says its name and closes; resolves with its port. */
async function startServerNamed(t: TestContext, name: string): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}
