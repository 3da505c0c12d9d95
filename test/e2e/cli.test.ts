// The `switchyard` command as a user runs it: bin/switchyard.js on the compiled dist/.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { defaults } from '../../src/defaults.ts';
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

test('--help: options in groups, each with its default', () => {
  const help = runCli(['--help']);
  assert.equal(help.status, 0);
  assert.equal(help.stderr, '');
  const titles = help.stdout.split('\n').filter((line) => /^[A-Z][\w ()=]*:$/.test(line));
  assert.deepEqual(titles, [
    'Listen and backend:',
    'Limits:',
    'Timeouts (0 = none):',
    'Admin:',
    'Logging:',
    'Process:',
  ]);
  const defaultOf = (flag: string) =>
    help.stdout
      .split('\n')
      .find((line) => line.startsWith(`  ${flag} `))
      ?.match(/\(default (.+)\)$/)?.[1];
  assert.equal(defaultOf('--max-connections N'), String(defaults.maxConnections));
  assert.equal(defaultOf('--buffer-size SIZE'), '16k');
  assert.equal(defaultOf('--connect-timeout DUR'), '5s');
  assert.equal(defaultOf('--idle-timeout DUR'), '1h');
  assert.equal(defaultOf('--half-closed-timeout DUR'), '30s');
  assert.equal(defaultOf('--log-level LEVEL'), defaults.logLevel);
  assert.equal(defaultOf('--workers N|auto'), String(defaults.workers));
  assert.equal(defaultOf('--drain-timeout DUR'), '30s');
  assert.match(help.stdout, /^ {2}--check +validate the config/m);
});

test('--version: switchyard, the runtime and the engine', () => {
  const version = runCli(['--version']);
  assert.equal(version.status, 0);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const [name, runtime, engine, ...rest] = version.stdout.split('\n');
  assert.equal(name, `switchyard ${pkg.version}`);
  const runtimeName = 'Bun' in globalThis ? 'bun' : 'node';
  const runtimeVersion = process.versions[runtimeName];
  assert.equal(runtime, `runtime: ${runtimeName} ${runtimeVersion} (${process.execPath})`);
  assert.match(engine as string, new RegExp(`^engine: ${runtimeName} \\(`));
  assert.deepEqual(rest, ['']);
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

const CHECKED_CONFIG = (port: number) => `frontends:
  - { name: web, listen: "127.0.0.1:${port}", backend: app }
  - { name: api, listen: "127.0.0.1:0", backend: app }
backends:
  - { name: app, servers: [{ name: a, address: "127.0.0.1:1" }] }
`;

test('--check: a good config prints "config ok" and exits 0, binding nothing', async (t) => {
  // The first frontend's port is taken: --check still passes, because it binds nothing.
  const busy = await startEchoServer(t);
  const path = configFile(t, CHECKED_CONFIG(busy.port));
  const r = runCli(['--config', path, '--check']);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'config ok: 2 frontends, 1 backend\n');
  assert.equal(r.status, 0);
  // Without --check the same file does try to bind, and fails on the busy port.
  const started = runCli(['--config', path]);
  assert.equal(started.status, 1);
  assert.match(started.stderr, /EADDRINUSE/);
});

test('--check with the shorthand: ok on a busy port, problems exit 2', async (t) => {
  const busy = await startEchoServer(t);
  const ok = runCli(['--listen', `127.0.0.1:${busy.port}`, '--backend', '127.0.0.1:1', '--check']);
  assert.equal(ok.stderr, '');
  assert.equal(ok.stdout, 'config ok: 1 frontend, 1 backend\n');
  assert.equal(ok.status, 0);
  // The admin listener from the command line is checked with the rest, and not bound either.
  const admin = runCli([
    ...['--listen', ':0', '--backend', '127.0.0.1:1', '--admin', String(busy.port), '--check'],
  ]);
  assert.equal(admin.status, 0, admin.stderr);
  // A port 0 cannot be shared by workers: reported as a config problem, exit 2.
  const workers = runCli([
    '--listen',
    ':0',
    '--backend',
    '127.0.0.1:1',
    '--workers',
    '2',
    '--check',
  ]);
  assert.equal(workers.status, 2);
  assert.equal(workers.stdout, '');
  assert.deepEqual(workers.stderr.trim().split('\n'), [
    'switchyard: invalid config, 1 problem:',
    'frontends.0.listen: --workers 2 needs a fixed port, not 0',
  ]);
  // A bad argument is still one line naming it.
  const bad = runCli(['--listen', ':1', '--backend', ':2', '--idle-timeout', 'soon', '--check']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^switchyard: --idle-timeout: expected a duration/);
});

test('--check: a bad config exits 2 with every problem on its own line', (t) => {
  const path = configFile(
    t,
    `frontends:
  - { name: web, listen: "127.0.0.1:8080", backend: nope }
  - { name: web, listen: "127.0.0.1:8080", backend: app }
backends:
  - name: app
    balance: weighted
    servers: [{ name: a, address: "127.0.0.1:0" }]
`,
  );
  const r = runCli(['--config', path, '--check']);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  const [header, ...problems] = r.stderr.trim().split('\n');
  assert.equal(header, 'switchyard: invalid config, 5 problems:');
  const expected = [
    /^backends\.0\.balance: /,
    /^backends\.0\.servers\.0\.address: port 0 is not a server port$/,
    /^frontends\.0\.backend: no backend named "nope"$/,
    /^frontends\.1\.name: duplicate frontend name "web"$/,
    /^frontends\.1\.listen: 127\.0\.0\.1:8080 is already the listen address of frontends\.0$/,
  ];
  assert.equal(problems.length, expected.length, r.stderr);
  for (const pattern of expected) {
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `missing ${pattern} in\n${r.stderr}`,
    );
  }
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
