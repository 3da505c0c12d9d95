/**
 * The admin HTTP server (node:http, so it runs on Node and Bun): health and readiness probes,
 * Prometheus metrics, the live connections and servers as JSON, and the stats page. Off unless
 * configured; binds where it is told (127.0.0.1 by default). With a token, every request needs
 * `Authorization: Bearer TOKEN` (the stats page may take it as `?token=`) and gets 401 without.
 */
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { formatMetrics, METRICS_CONTENT_TYPE } from '../observability/metrics.ts';
import type { HostPort } from '../units.ts';
import { bearerMatches, sameSecret } from './auth.ts';
import type { StatsSource } from './source.ts';
import { STATS_PAGE } from './stats-page.ts';

export interface AdminOptions {
  listen: HostPort;
  /** Required of every request when set; none by default. */
  token?: string | undefined;
  source: StatsSource;
  /** Readiness for /readyz: true once the listeners are up, false while draining. */
  isReady(): boolean;
  log: Logger;
}

export interface AdminServer {
  readonly address: HostPort;
  close(): Promise<void>;
}

/** Starts the admin server; throws SwitchyardError(ADMIN_LISTEN_FAILED) when it cannot bind. */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      options.log.error({ err: (err as Error).message, url: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  server.listen(options.listen.port, options.listen.host);
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw err;
      }),
    ]);
  } catch (err) {
    throw new SwitchyardError(
      ErrorCode.ADMIN_LISTEN_FAILED,
      `admin server cannot listen on ${options.listen.host}:${options.listen.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const a = server.address() as AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections?.();
      await closed;
    },
  };
}

async function handle(o: AdminOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname;
  if (o.token !== undefined && !authorized(o.token, req, url)) {
    res.setHeader('WWW-Authenticate', 'Bearer');
    send(res, 401, 'text/plain', 'unauthorized\n');
    return;
  }
  const method = req.method ?? 'GET';
  if (method === 'DELETE') {
    const m = /^\/api\/connections\/(\d+)$/.exec(path);
    if (!m) return send(res, 404, 'text/plain', 'not found\n');
    const ok = (await o.source.closeConnection?.(Number(m[1]))) ?? false;
    return ok
      ? sendJson(res, 200, { closed: Number(m[1]) })
      : sendJson(res, 404, { error: 'no such connection' });
  }
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD, DELETE');
    return send(res, 405, 'text/plain', 'method not allowed\n');
  }
  switch (path) {
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    case '/readyz':
      return o.isReady()
        ? send(res, 200, 'text/plain', 'ready\n')
        : send(res, 503, 'text/plain', 'not ready\n');
    case '/metrics':
      return send(res, 200, METRICS_CONTENT_TYPE, formatMetrics(await o.source.stats()));
    case '/api/stats':
      return sendJson(res, 200, await o.source.stats());
    case '/api/connections':
      return sendJson(res, 200, await o.source.connections());
    case '/api/backends':
      return sendJson(res, 200, Object.values((await o.source.stats()).backends));
    case '/':
      return send(res, 200, 'text/html; charset=utf-8', STATS_PAGE);
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
}

/** The header's bearer token, or for the page alone, `?token=` (a browser cannot set headers on a link). */
function authorized(token: string, req: IncomingMessage, url: URL): boolean {
  if (bearerMatches(req.headers.authorization, token)) return true;
  const fromQuery = url.searchParams.get('token');
  return url.pathname === '/' && fromQuery !== null && sameSecret(fromQuery, token);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value));
}
