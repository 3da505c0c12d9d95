// The `switchyard` command (bin/ on dist/) in a child process for the fault tests: its log lines,
// its exit, a config file it reads, and a one-shot echo probe.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { waitFor } from '../support/clients.ts';
import { ROOT, runtimeFor } from '../support/proc.ts';

const BIN = `${ROOT}bin/switchyard.js`;

export interface Cli {
  child: ChildProcess;
  /** Every log line so far, parsed. */
  lines: Record<string, unknown>[];
  /** Resolves with the first line (from the start) whose msg matches, or throws after `ms`. */
  line(msg: RegExp, ms?: number): Promise<Record<string, unknown>>;
  /** Log lines whose msg matches. */
  count(msg: RegExp): number;
  /** Resolves with the exit code (or 128 + signal number). */
  exited: Promise<number>;
}

/**
 * Runs the command on `engine`'s runtime, killed in t.after. With `nofile`, a shell sets that
 * descriptor limit (soft and hard) first and then becomes the runtime (exec).
 */
export function startCli(
  t: TestContext,
  engine: 'node' | 'bun',
  args: string[],
  limits: { nofile?: number } = {},
): Cli {
  const argv = [runtimeFor(engine), BIN, ...args];
  const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe'];
  const child = limits.nofile
    ? spawn('bash', ['-c', `ulimit -n ${limits.nofile} && exec "$0" "$@"`, ...argv], { stdio })
    : spawn(argv[0] as string, argv.slice(1), { stdio });
  t.after(() => child.kill('SIGKILL'));
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text));
    } catch {
      lines.push({ msg: text });
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) =>
    code === null ? 128 + (signal === 'SIGKILL' ? 9 : 15) : (code as number),
  );
  const count = (msg: RegExp) => lines.filter((l) => msg.test(String(l.msg))).length;
  const line = async (msg: RegExp, ms = 5_000) => {
    let found: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        found = lines.find((l) => msg.test(String(l.msg)));
        return found !== undefined;
      },
      ms,
      `a log line ${msg}`,
    );
    return found as Record<string, unknown>;
  };
  return { child, lines, line, count, exited };
}

/** Writes `text` to a temporary YAML file, removed in t.after; returns its path. */
export function configFile(t: TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, text);
  return path;
}

/** Resolves with 'ok' when a connect succeeds and echoes, else the error code. */
export function tryEcho(port: number, ms = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (result: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    socket.on('connect', () => socket.write('x'));
    socket.on('data', () => done('ok'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
    socket.on('close', () => done('closed'));
  });
}

/**
 * Sends `bytes` random bytes through an echo behind `port` as fast as the sockets take them, then
 * FIN; resolves with the sha256 sent and the sha256 and length of what came back.
 */
export async function echoBulk(
  port: number,
  bytes: number,
): Promise<{ sent: string; got: string; length: number }> {
  const data = randomBytes(bytes);
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const hash = createHash('sha256');
  let length = 0;
  socket.on('data', (c: Buffer) => {
    hash.update(c);
    length += c.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('end', () => resolve());
    socket.on('error', reject);
  });
  socket.end(data);
  await ended;
  socket.destroy();
  return { sent: createHash('sha256').update(data).digest('hex'), got: hash.digest('hex'), length };
}
