/**
 * Child processes of the benchmark: started pinned to a CPU, each in its own process group, and
 * all stopped when the harness ends, however it ends.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

/** CPU of the proxy under test. */
export const PROXY_CPU = 1;
/** CPU of the backends, the load generators and this harness. */
export const LOAD_CPU = 0;

/** Bytes of a child's output kept for error messages. */
const TAIL_BYTES = 4096;

/** A running child process. */
export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the child has exited. */
  exited: Promise<number | string>;
  /** The last few KiB of its stdout and stderr. */
  tail(): string;
  /**
   * GC pauses the child printed (Node's `--trace-gc`, Bun's `BUN_JSC_logGC`), with the harness
   * time (performance.now) their line arrived; see gcPauseOf.
   */
  gcPauses: { at: number; ms: number }[];
}

const running = new Set<Child>();

/**
 * Starts `command` under `taskset -c cpu`, in a new process group so the whole tree it forks
 * (nginx workers, cluster workers) can be signalled at once.
 */
export function spawnPinned(
  name: string,
  cpu: number | string,
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Child {
  const proc = spawn('taskset', ['-c', String(cpu), command, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
  let out = '';
  let partial = '';
  const gcPauses: { at: number; ms: number }[] = [];
  // Drained always: a child blocked on a full pipe would stall and skew what it measures.
  const keep = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    const at = performance.now();
    for (const line of lines) {
      const ms = gcPauseOf(line);
      if (ms !== null) gcPauses.push({ at, ms });
      else if (!/^\[GC<|^Requesting GC|^GC END/.test(line))
        out = (out + line + '\n').slice(-TAIL_BYTES);
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once('error', (err) => {
      out += `\n${err.message}`;
      resolve('spawn-error');
    });
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const child: Child = {
    name,
    pid: proc.pid ?? -1,
    process: proc,
    exited,
    tail: () => (out + partial).trim(),
    gcPauses,
  };
  running.add(child);
  exited.then(() => running.delete(child));
  return child;
}

/**
 * The main-thread pause of one GC line, in ms, or null for any other line. Node `--trace-gc`:
 * `... ms: Scavenge 4.9 (5.8) -> 4.5 (6.6) MB, pooled: 0.0 MB, 0.57 / 0.00 ms (...)`, the first
 * number after the sizes. Bun (JavaScriptCore `logGC`): `... p=3.49ms (max 3.49), cycle ... END]`,
 * the longest stop of the cycle.
 */
export function gcPauseOf(line: string): number | null {
  const node =
    /: (?:Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Sweep|Minor Mark-Compact)\b.* MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(
      line,
    );
  if (node?.[1]) return Number(node[1]);
  const bun = /^\[GC<.*\(max ([\d.]+)\).*END\]/.exec(line);
  if (bun?.[1]) return Number(bun[1]);
  return null;
}

/** Whether the child is still running. */
export function isAlive(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** SIGTERM to the child's group, SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (!isAlive(child)) return;
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
  // Workers the leader left behind, if any.
  signalGroup(child, 'SIGKILL');
}

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => stopChild(c)));
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  if (child.pid <= 0) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Makes sure no child outlives the harness: on a normal exit, an uncaught error, or Ctrl-C.
 * 'exit' handlers cannot wait, so there every group gets SIGKILL at once.
 */
export function installCleanup(): void {
  process.on('exit', () => {
    for (const c of running) signalGroup(c, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`\nbench: ${sig}, stopping children`);
      stopAll().finally(() => process.exit(130));
    });
  }
}

/** A loopback port free right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Waits until 127.0.0.1:port accepts a connection. Fails early if `child` exits first, with its
 * output, since that is nearly always the reason.
 */
export async function waitForPort(port: number, child: Child | null, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && !isAlive(child)) {
      throw new Error(`${child.name} exited (${await child.exited}): ${lastLine(child.tail())}`);
    }
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The last non-empty line of some output, short enough for a table cell. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return (lines.at(-1) ?? '').slice(0, 200);
}

/** Result of a command run to completion. */
export interface CommandResult {
  status: number | string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  seconds: number;
}

/**
 * Runs a command pinned to `cpu` and collects its output. Killed after `timeoutMs`, so no load
 * generator can run unbounded.
 */
export function runPinned(
  cpu: number | string,
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<CommandResult> {
  const child = spawnPinned(command, cpu, command, args);
  const started = performance.now();
  let stdout = '';
  let stderr = '';
  child.process.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.process.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stopChild(child, 1000);
  }, timeoutMs);
  return child.exited.then((status) => {
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    return { status, stdout, stderr, timedOut, seconds };
  });
}

/** Pins this harness (every thread) to the load CPU, so it never competes with the proxy. */
export function pinSelf(): boolean {
  const args = ['-a', '-c', '-p', String(LOAD_CPU), String(process.pid)];
  return spawnSync('taskset', args, { stdio: 'ignore' }).status === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
