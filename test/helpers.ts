// Helpers for real-socket tests: loopback servers on port 0, the proxy in a child process,
// and /proc readers. Everything started here is stopped in t.after.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { createInterface, type Interface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SwitchyardStats } from '../src/api.ts';
import type { ConnectionInfo, ProxyStats } from '../src/core/proxy.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}node_modules/.bin`;

/** The engines the suite runs against: SWITCHYARD_ENGINES=node,bun (default: node). */
export const ENGINES = (process.env.SWITCHYARD_ENGINES ?? 'node').split(',') as ('node' | 'bun')[];

/** The runtime binary an engine runs on (the pinned ones from node_modules). */
export function runtimeFor(engine: 'node' | 'bun'): string {
  return engine === 'bun' ? `${BIN}/bun` : process.execPath;
}

/** Listens on 127.0.0.1:0 and closes the server and every socket in t.after. */
export async function startServer(
  t: TestContext,
  onConnection: (socket: net.Socket) => void,
  options: net.ServerOpts = {},
): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, ...options }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

/** An echo server that passes FIN on as FIN (so half-close can be observed). */
export function startEchoServer(t: TestContext) {
  return startServer(t, (socket) => {
    socket.pipe(socket);
  });
}

/** A port nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A proxy running in a child process, with the stats it reports. */
export interface ProxyProcess {
  port: number;
  pid: number;
  child: ChildProcess;
  stats(): Promise<ProxyStats>;
  connections(): Promise<ConnectionInfo[]>;
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
    connections: () => p.ask('connections') as Promise<ConnectionInfo[]>,
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
  connections(): Promise<(ConnectionInfo & { frontend: string })[]>;
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
): Promise<BalancerProcess> {
  const p = await spawnProxy(t, config, engine, {});
  return {
    ports: p.ports,
    port: p.port,
    admin: p.admin,
    pid: p.pid,
    child: p.child,
    stats: () => p.ask('stats') as Promise<SwitchyardStats>,
    connections: () => p.ask('connections') as Promise<(ConnectionInfo & { frontend: string })[]>,
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

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

function socketInodesOf(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  return inodes;
}

/** TCP sockets in CLOSE_WAIT (state 08) among `inodes`, from /proc/net/tcp and tcp6. */
export function closeWaitAmong(inodes: Set<string>): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '08' && inodes.has(cols[9] ?? '')) n++;
    }
  }
  return n;
}

/** Connects to 127.0.0.1:port with half-open allowed; resolves once connected. */
export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads a socket to its end; resolves with everything it sent. */
export async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

/**
 * Resolves once the proxy has closed its end of `socket` (FIN or RST seen, or the socket closed),
 * or rejects after `ms`. Test clients allow half-open, so FIN alone does not close them.
 */
export function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  if (socket.readableEnded || socket.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.once('end', done);
    socket.once('close', done);
    socket.once('error', done);
    socket.resume();
  });
}

/** Polls `check` every 20 ms until it is true, or throws after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A backend that answers every connection with its name (and FIN, unless `hold`). */
export interface NamedServer {
  name: string;
  port: number;
  /** Connections it accepted since start (or the last restart). */
  hits: number;
  /** Time of the first connection since the last restart, or 0. */
  firstHitAt: number;
  /** Sockets it holds open (with `hold`). */
  sockets: Set<net.Socket>;
  /** Stops listening and drops every connection: connects to its port are refused. */
  kill(): Promise<void>;
  /** Listens on the same port again. */
  restart(): Promise<void>;
}

/** Starts a NamedServer on 127.0.0.1:0, stopped in t.after. */
export async function startNamedServer(
  t: TestContext,
  name: string,
  options: { hold?: boolean } = {},
): Promise<NamedServer> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  const named: NamedServer = {
    name,
    port: 0,
    hits: 0,
    firstHitAt: 0,
    sockets,
    kill: async () => {
      const s = server;
      server = null;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise((resolve) => s.close(resolve));
    },
    restart: async () => {
      named.hits = 0;
      named.firstHitAt = 0;
      await listen(named.port);
    },
  };
  const listen = async (port: number) => {
    server = net.createServer({ allowHalfOpen: true }, (socket) => {
      named.hits++;
      if (named.firstHitAt === 0) named.firstHitAt = Date.now();
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      if (options.hold) socket.write(name);
      else socket.end(name);
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    named.port = (server.address() as net.AddressInfo).port;
  };
  await listen(0);
  t.after(() => named.kill());
  return named;
}

/**
 * Connects to `port` and resolves with what the server said before FIN (a NamedServer's name),
 * or '' when the connection failed or closed without a byte. Never rejects; gives up after `ms`.
 */
export function whoAnswers(
  port: number,
  options: { localAddress?: string; ms?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({
      port,
      host: '127.0.0.1',
      allowHalfOpen: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(done, options.ms ?? 5000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', () => {});
  });
}

/** Runs `n` calls of `one`, `concurrency` at a time; resolves with every result in order. */
export async function inParallel<T>(
  n: number,
  concurrency: number,
  one: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

/** How many times each value occurs. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One frontend on port 0 and one backend "app" of `servers`. */
export function balancerConfig(
  servers: (NamedServer | { name: string; port: number })[],
  backend: Record<string, unknown> = {},
  perServer: Record<string, Record<string, unknown>> = {},
) {
  return {
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
    backends: [
      {
        name: 'app',
        ...backend,
        servers: servers.map((s) => ({
          name: s.name,
          address: `127.0.0.1:${s.port}`,
          ...perServer[s.name],
        })),
      },
    ],
  };
}

/** A server's stats in backend "app". */
export function server(stats: SwitchyardStats, name: string) {
  const s = stats.backends.app?.servers.find((x) => x.name === name);
  if (!s) throw new Error(`no server ${name} in stats`);
  return s;
}
