// The proxy in a child process (test/fixtures/proxy-process.ts), driven over its stdin/stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import type { TestContext } from 'node:test';
import type { SwitchyardStats } from '../../src/api.ts';
import type { ConnectionRow, ProxyStats } from '../../src/stats.ts';
import { ENGINES, ROOT, rssOf, runtimeFor, socketInodesOf } from './proc.ts';

/** A proxy running in a child process, with the stats it reports. */
export interface ProxyProcess {
  port: number;
  pid: number;
  child: ChildProcess;
  stats(): Promise<ProxyStats>;
  connections(): Promise<ConnectionRow[]>;
  /** Resident set size of the proxy process, in bytes. */
  rss(): number;
  /** Open file descriptors of the proxy process. */
  fdCount(): number;
  /** Socket inodes the proxy holds open. */
  socketInodes(): Set<string>;
}

/** Starts test/fixtures/proxy-process.ts on `engine`'s runtime, stopped in t.after. */
export async function startProxy(
  t: TestContext,
  config: Record<string, unknown>,
  engine: 'node' | 'bun' = ENGINES[0] ?? 'node',
  limits: { nofile?: number } = {},
): Promise<ProxyProcess> {
  const p = await spawnProxy(t, config, engine, limits);
  return {
    port: p.port,
    pid: p.pid,
    child: p.child,
    stats: () => p.ask('stats') as Promise<ProxyStats>,
    connections: () => p.ask('connections') as Promise<ConnectionRow[]>,
    rss: () => rssOf(p.pid),
    fdCount: () => readdirSync(`/proc/${p.pid}/fd`).length,
    socketInodes: () => socketInodesOf(p.pid),
  };
}

/** A full config (frontends, backends) running in a child process. */
export interface BalancerProcess {
  /** Each frontend's port, by name. */
  ports: Record<string, number>;
  /** The first frontend's port. */
  port: number;
  /** The admin server's port, when the config has `admin`. */
  admin: number | null;
  pid: number;
  child: ChildProcess;
  stats(): Promise<SwitchyardStats>;
  connections(): Promise<ConnectionRow[]>;
  /** Applies a new config; resolves with the ports after it. */
  reload(config: Record<string, unknown>): Promise<Record<string, number>>;
  /** Sends one fixture command ("unready", ...) and resolves with its reply. */
  ask(command: string): Promise<unknown>;
}

/** Starts a full config (the YAML shape, as an object) on `engine`'s runtime, stopped in t.after. */
export async function startBalancer(
  t: TestContext,
  config: Record<string, unknown>,
  engine: 'node' | 'bun' = ENGINES[0] ?? 'node',
  limits: { nofile?: number } = {},
): Promise<BalancerProcess> {
  const p = await spawnProxy(t, config, engine, limits);
  return {
    ports: p.ports,
    port: p.port,
    admin: p.admin,
    pid: p.pid,
    child: p.child,
    stats: () => p.ask('stats') as Promise<SwitchyardStats>,
    connections: () => p.ask('connections') as Promise<ConnectionRow[]>,
    ask: p.ask,
    reload: async (next) => {
      const reply = (await p.ask(`reload ${JSON.stringify(next)}`)) as {
        ports?: Record<string, number>;
        error?: string;
      };
      if (reply.error !== undefined) throw new Error(reply.error);
      return reply.ports ?? {};
    },
  };
}

async function spawnProxy(
  t: TestContext,
  config: Record<string, unknown>,
  engine: 'node' | 'bun',
  limits: { nofile?: number },
) {
  const argv = [
    runtimeFor(engine),
    `${ROOT}test/fixtures/proxy-process.ts`,
    JSON.stringify(config),
  ];
  // A descriptor limit is set by the shell, then the runtime replaces it (exec).
  const child = limits.nofile
    ? spawn('bash', ['-c', `ulimit -n ${limits.nofile} && exec "$0" "$@"`, ...argv], {
        stdio: ['pipe', 'pipe', 'inherit'],
      })
    : spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const lines: Interface = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const queue: ((line: string) => void)[] = [];
  lines.on('line', (line) => queue.shift()?.(line));
  const next = () => new Promise<string>((resolve) => queue.push(resolve));
  const first = await Promise.race([
    next(),
    once(child, 'exit').then(([code]) => {
      throw new Error(`proxy process exited with ${code} before listening`);
    }),
  ]);
  const { port, ports, pid, admin } = JSON.parse(first) as {
    port: number;
    ports: Record<string, number>;
    pid: number;
    admin?: number | null;
  };
  const ask = async (command: string): Promise<unknown> => {
    const reply = next();
    child.stdin?.write(`${command}\n`);
    return JSON.parse(await reply);
  };
  return { port, ports, pid, child, ask, admin: admin ?? null };
}
