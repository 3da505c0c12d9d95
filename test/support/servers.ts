// Loopback servers on port 0 for the proxy to forward to; each is stopped in t.after.
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { SwitchyardStats } from '../../src/api.ts';

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

/** Starts a NamedServer on 127.0.0.1:0 (or `host`, `port`), stopped in t.after. */
export async function startNamedServer(
  t: TestContext,
  name: string,
  options: { hold?: boolean; host?: string; port?: number } = {},
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
    server.listen(port, options.host ?? '127.0.0.1');
    await once(server, 'listening');
    named.port = (server.address() as net.AddressInfo).port;
  };
  await listen(options.port ?? 0);
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
