// The black-box smoke `npm run test:runtimes` runs against each way switchyard is installed (the
// package on each Node line engines admits, the single executable): only the command, its
// arguments, its files, its signals and loopback sockets; nothing imported from src/.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { makeCa, makeCert, tempDir, writePem } from '../support/certs.ts';
import { sha256, waitFor } from '../support/clients.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';

/** How to run the command under test: its argv prefix and its environment. */
export interface Target {
  /** `[file]`: the installed bin or the executable, run directly (its #! line picks the node). */
  command: string;
  env: NodeJS.ProcessEnv;
  /** The Node version `--version` must report. */
  nodeVersion: string;
}

/** Runs the command to its end (bounded). */
export function runOnce(target: Target, args: string[]) {
  return spawnSync(target.command, args, { env: target.env, encoding: 'utf8', timeout: 20_000 });
}

interface Cli {
  child: ChildProcess;
  /** Everything on stderr so far (the log: JSON lines, as stderr is no terminal). */
  log(): string;
  /** Resolves once the log holds `text` `times` times, or throws after 30 s (a loaded machine). */
  logged(text: RegExp, times?: number): Promise<void>;
  exited: Promise<number | null>;
}

function startCli(t: TestContext, target: Target, args: string[]): Cli {
  const child = spawn(target.command, args, {
    env: target.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  // An exit first (a port another process took between closedPort() and the bind, say) fails
  // at once with the log, instead of waiting out the bound.
  const logged = (text: RegExp, times = 1) =>
    waitFor(
      () => {
        const seen = (stderr.match(new RegExp(text.source, 'g')) ?? []).length >= times;
        if (!seen && child.exitCode !== null) {
          throw new Error(`exited ${child.exitCode} before ${text}:\n${stderr}`);
        }
        return seen;
      },
      30_000,
      `${times} × ${text} in the log:\n${stderr}`,
    );
  return { child, log: () => stderr, logged, exited };
}

/** Sends `bytes` through a connection made by `dial` and resolves with the sha256 echoed back. */
async function roundTrip(socket: net.Socket, bytes: Buffer): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.end(bytes);
  await once(socket, 'end');
  socket.destroy();
  return sha256(Buffer.concat(chunks));
}

function plain(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  return once(socket, 'connect').then(() => socket);
}

function overTls(port: number, ca: string): Promise<net.Socket> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
  return once(socket, 'secureConnect').then(() => socket);
}

/** Resolves once a connect to `port` is refused (the listener closed). */
function refused(port: number): Promise<void> {
  return waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' });
        s.once('connect', () => {
          s.destroy();
          resolve(false);
        });
        s.once('error', () => resolve(true));
      }),
    30_000,
    `port ${port} refused`,
  );
}

/** A config file (YAML; JSON is YAML) of one frontend per entry of `ports`, to one echo. */
function writeConfig(file: string, ports: number[], echo: number, frontendTls?: object): void {
  const config = {
    frontends: ports.map((port, i) => ({
      name: `f${i}`,
      listen: `127.0.0.1:${port}`,
      backend: 'echo',
      ...(frontendTls ? { tls: frontendTls } : {}),
    })),
    backends: [{ name: 'echo', servers: [{ name: 'e', address: `127.0.0.1:${echo}` }] }],
  };
  writeFileSync(file, JSON.stringify(config));
}

const MIB = 1024 * 1024;

/** The smoke, as subtests of the caller's test (`name` says which target). */
export function smoke(name: string, target: () => Target): void {
  test(`${name}: --version names this runtime`, () => {
    const t = target();
    const r = runOnce(t, ['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^switchyard \d+\.\d+\.\d+\n/);
    assert.match(r.stdout, new RegExp(`runtime: node ${t.nodeVersion.replace(/\./g, '\\.')} `));
    assert.match(r.stdout, /engine: node /);
  });

  test(`${name}: TLS --check, then 8 MiB through TLS intact`, { timeout: 120_000 }, async (t) => {
    const dir = tempDir(t);
    const ca = await makeCa();
    const cert = writePem(dir, 'site', await makeCert(ca, ['localhost']));
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const file = join(dir, 'tls.yaml');
    writeConfig(file, [port], echo.port, {
      certificates: [{ cert: cert.certFile, key: cert.keyFile }],
    });
    const check = runOnce(target(), ['--config', file, '--check']);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /config ok: 1 frontends?, 1 backends?/);
    const cli = startCli(t, target(), ['--config', file]);
    await cli.logged(/listening on/);
    const bytes = randomBytes(8 * MIB);
    assert.equal(await roundTrip(await overTls(port, ca.cert), bytes), sha256(bytes));
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0, cli.log());
  });

  test(`${name}: --workers 2, each worker's connections intact`, {
    timeout: 120_000,
  }, async (t) => {
    const dir = tempDir(t);
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const file = join(dir, 'w.yaml');
    writeConfig(file, [port], echo.port);
    const cli = startCli(t, target(), ['--config', file, '--workers', '2']);
    await cli.logged(/2 workers ready/);
    const bytes = randomBytes(MIB);
    const sums = await Promise.all(
      Array.from({ length: 8 }, async () => roundTrip(await plain(port), bytes)),
    );
    assert.deepEqual(sums, Array(8).fill(sha256(bytes)));
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0, cli.log());
  });

  test(`${name}: SIGHUP adds a frontend, SIGTERM drains an open connection`, {
    timeout: 120_000,
  }, async (t) => {
    const dir = tempDir(t);
    const echo = await startEchoServer(t);
    const [first, second] = [await closedPort(), await closedPort()] as [number, number];
    const file = join(dir, 'r.yaml');
    writeConfig(file, [first], echo.port);
    const cli = startCli(t, target(), ['--config', file, '--drain-timeout', '20s']);
    await cli.logged(/listening on/);
    writeConfig(file, [first, second], echo.port);
    cli.child.kill('SIGHUP');
    await cli.logged(/config reloaded/);
    const held = await plain(second);
    cli.child.kill('SIGTERM');
    await refused(second);
    // The connection accepted before SIGTERM still carries bytes both ways, then the drain ends.
    const bytes = randomBytes(MIB);
    assert.equal(await roundTrip(held, bytes), sha256(bytes));
    assert.equal(await cli.exited, 0, cli.log());
  });
}
