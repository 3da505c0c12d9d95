/**
 * The servers behind the proxies, all on the load CPU: an nginx HTTP origin (separate from the
 * nginx stream contender), redis-server, and an in-process sink that holds idle connections.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertFiles } from './certs.ts';
import { type Child, freePort, LOAD_CPU, spawnPinned, waitForPort } from './proc.ts';

/** Body of GET /small: 12 bytes. */
export const SMALL_BODY = 'hello, world';
/** Size of the body of GET /bulk. */
export const BULK_BYTES = 1024 * 1024;

/** A backend server started by the harness. */
export interface BackendServer {
  port: number;
  child: Child;
  /** The origin's second port, where every connection must begin with a PROXY header. */
  proxyPort?: number;
  /** The origin's TLS port, when it was given a certificate (the SNI passthrough scenarios). */
  tlsPort?: number;
}

/** Connections any one server here must take: the idle scenario's plus headroom. */
export const MAX_CONNECTIONS = 9000;

/**
 * nginx as the HTTP origin: GET /small answers 12 bytes, GET /bulk 1 MiB from a file.
 * Keep-alive is effectively unlimited so the keep-alive scenarios never reconnect. A second port
 * takes PROXY protocol (v1 or v2, nginx's `listen ... proxy_protocol`): the server of the
 * PROXY protocol scenario, which both proxies and direct's client send a header to. Given
 * `tlsCert`, a third port speaks TLS with it (nginx's `listen ... ssl`): the origin of the SNI
 * passthrough scenarios, where the client's TLS goes through the proxy undecrypted.
 *
 * sendfile stays off, nginx's default: measured here, sendfile on made HAProxy's CPU per MiB rise
 * by about 40 % (720-825 instead of 490-530 µs/MiB), a cost of the origin's choice rather than of
 * the proxy, and it moved the numbers away from the issue's reference.
 */
export async function startOrigin(
  nginx: string,
  dir: string,
  tlsCert?: CertFiles,
): Promise<BackendServer> {
  const port = await freePort();
  const proxyPort = await freePort();
  const tlsPort = tlsCert ? await freePort() : undefined;
  // TLSv1.2 and 1.3, as the proxies' TLS rows: nginx 1.22's default has no 1.3, and in 1.2 an
  // ECDSA P-256 certificate needs P-256 among the client's groups, which offer X25519 only
  // (TLS_GROUP): "no shared cipher". nginx's defaults otherwise; the clients never resume.
  const tls = tlsCert
    ? `
    listen 127.0.0.1:${tlsPort} backlog=4096 ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${tlsCert.cert};
    ssl_certificate_key ${tlsCert.key};`
    : '';
  const bulk = join(dir, 'bulk.bin');
  writeFileSync(bulk, Buffer.alloc(BULK_BYTES, 'x'));
  const conf = join(dir, 'origin.conf');
  writeFileSync(
    conf,
    `${nginxPreamble(dir, 'origin')}
http {
  access_log off;
  ${nginxTempPaths(dir)}
  sendfile off;
  tcp_nodelay on;
  keepalive_timeout 3600s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    listen 127.0.0.1:${proxyPort} backlog=4096 proxy_protocol;${tls}
    location = /small { default_type text/plain; return 200 '${SMALL_BODY}'; }
    location = /bulk { default_type application/octet-stream; alias ${bulk}; }
  }
}
`,
  );
  const child = spawnPinned('nginx origin', LOAD_CPU, nginx, nginxArgs(dir, conf));
  await waitForPort(port, child);
  if (tlsPort !== undefined) await waitForPort(tlsPort, child);
  return { port, child, proxyPort, tlsPort };
}

/** The lines every nginx the harness runs shares: foreground, one worker, its own files. */
export function nginxPreamble(dir: string, name: string, extra = ''): string {
  // As root nginx would switch its worker to "nobody", which cannot read the harness's
  // temporary directory.
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  return `${extra}
daemon off;
worker_processes 1;
worker_rlimit_nofile ${2 * MAX_CONNECTIONS + 1000};
${user}
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections ${2 * MAX_CONNECTIONS + 500}; }`;
}

/** The command line that runs an nginx config in the foreground with its own prefix. */
export function nginxArgs(dir: string, conf: string): string[] {
  return ['-p', dir, '-c', conf, '-e', join(dir, 'startup-error.log')];
}

function nginxTempPaths(dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `${k}_temp_path ${join(dir, `${k}-temp`)};`)
    .join('\n  ');
}

/** redis-server without persistence, so disk never enters the numbers. */
export async function startRedis(redisServer: string, dir: string): Promise<BackendServer> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--protected-mode', 'no', '--dir', dir, '--maxclients', String(MAX_CONNECTIONS));
  const child = spawnPinned('redis-server', LOAD_CPU, redisServer, args);
  await waitForPort(port, child);
  return { port, child };
}

/**
 * A server that accepts connections and holds them, reading and dropping whatever arrives. It
 * runs inside the harness (already on the load CPU): the idle scenario needs to know when every
 * connection has reached it, and no off-the-shelf server says so.
 */
export interface Sink {
  port: number;
  /** Connections open right now. */
  connections(): number;
  /** Bytes received since start. */
  bytes(): number;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const sockets = new Set<net.Socket>();
  let bytes = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  server.maxConnections = 2 * MAX_CONNECTIONS;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    connections: () => sockets.size,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** iperf3 in server mode: one test at a time, which is how the scenarios run it. */
export async function startIperf(iperf3: string): Promise<BackendServer> {
  const port = await freePort();
  const child = spawnPinned('iperf3 server', LOAD_CPU, iperf3, ['-s', '-p', String(port)]);
  await waitForPort(port, child);
  return { port, child };
}

/** The database pgbench uses, made by `pgbench -i` when PostgreSQL starts. */
export const PG_DATABASE = 'postgres';
/** pgbench's scale factor: 100,000 accounts, a few MB, all in shared buffers. */
const PG_SCALE = 2;

/**
 * A throw-away PostgreSQL from Debian's packages: initdb in the run's directory, fsync off (disk
 * is not what is measured), trust authentication on loopback, then `pgbench -i`. PostgreSQL
 * refuses to run as root, so as root the cluster belongs to the `postgres` user the package made.
 */
export async function startPostgres(
  bin: { initdb: string; postgres: string; pgbench: string },
  dir: string,
): Promise<BackendServer> {
  const port = await freePort();
  // Its own directory under /tmp: the `postgres` user cannot enter the run's (mode 0700).
  const data = mkdtempSync(join(tmpdir(), 'switchyard-bench-pg-'));
  process.once('exit', () => rmSync(data, { recursive: true, force: true }));
  void dir;
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) =>
    asRoot ? { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { cmd, args };
  if (asRoot) chownSync(data, ...postgresIds());
  const init = as(bin.initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  const r = spawnSync(init.cmd, init.args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`initdb: ${(r.stderr || r.stdout).trim().slice(-200)}`);
  const server = as(bin.postgres, [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    data,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    `max_connections=${PG_MAX_CONNECTIONS}`,
  ]);
  const child = spawnPinned('postgres', LOAD_CPU, server.cmd, server.args);
  await waitForPort(port, child, 20_000);
  const pgInit = spawnSync(
    bin.pgbench,
    [
      '-i',
      '-q',
      '-s',
      String(PG_SCALE),
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
    ].concat(PG_DATABASE),
    { encoding: 'utf8' },
  );
  if (pgInit.status !== 0) {
    throw new Error(`pgbench -i: ${(pgInit.stderr || pgInit.stdout).trim().slice(-200)}`);
  }
  return { port, child };
}

/** Enough for pgbench's clients plus each proxy's health of a few spare connections. */
const PG_MAX_CONNECTIONS = 100;

function postgresIds(): [number, number] {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const f = line?.split(':') ?? [];
  if (!f[2]) throw new Error('no postgres user (install the postgresql package)');
  return [Number(f[2]), Number(f[3])];
}
