/**
 * The admin HTTP server (node:http, so it runs on Node and Bun): health and readiness probes,
 * Prometheus metrics, the live connections and servers as JSON, and the stats page. Off unless
 * configured; binds where it is told (127.0.0.1 by default). With a token, every request needs
 * `Authorization: Bearer TOKEN` (the stats page may take it as `?token=`) and gets 401 without.
 *
 * It shares the process (and its descriptors and event loop) with the data path, so it is kept
 * small: a connection cap, header/request/idle timeouts, paged connection lists, and no listening
 * beyond loopback without a token.
 */
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { defaults } from '../defaults.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { formatMetrics, METRICS_CONTENT_TYPE } from '../observability/metrics.ts';
import { formatHostPort, type HostPort, isLoopbackHost } from '../units.ts';
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

/**
 * Starts the admin server; throws SwitchyardError(ADMIN_LISTEN_FAILED) when it cannot bind, or
 * when asked to listen beyond loopback without a token (the config schema and the command line
 * refuse that first, with the key or option to fix; this is the last line for library callers).
 */
export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const where = formatHostPort(options.listen.host, options.listen.port);
  if (options.token === undefined && !isLoopbackHost(options.listen.host)) {
    throw new SwitchyardError(
      ErrorCode.ADMIN_LISTEN_FAILED,
      `admin server refuses ${where} without a token: not a loopback address`,
    );
  }
  const server = http.createServer(
    {
      headersTimeout: defaults.adminHeadersTimeoutMs,
      requestTimeout: defaults.adminRequestTimeoutMs,
      keepAliveTimeout: defaults.adminKeepAliveTimeoutMs,
      // Node's default (30 s) would let a slow sender keep its slot up to 30 s past the timeouts.
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(options, req, res).catch((err: unknown) => {
        options.log.error({ err: (err as Error).message, url: req.url }, 'admin request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    },
  );
  // Beyond the cap a new connection is closed at once (measured on Node and Bun), so idle or slow
  // admin clients hold at most adminMaxConnections descriptors, never the proxy's.
  server.maxConnections = defaults.adminMaxConnections;
  // A connection that never sends a byte is not covered by headersTimeout on Node: close it too.
  server.setTimeout(defaults.adminSocketTimeoutMs);
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
      `admin server cannot listen on ${where}: ${(err as Error).message}`,
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
      return sendConnections(o, url, res);
    case '/api/backends':
      return sendJson(res, 200, Object.values((await o.source.stats()).backends));
    case '/':
      return send(res, 200, 'text/html; charset=utf-8', STATS_PAGE);
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
}

/**
 * One page of the live connections: `?limit=` rows (default adminPageLimit, at most
 * adminPageLimitMax) from `?offset=` (default 0). The body stays a plain array, as before paging;
 * `X-Total-Count` says how many there are, `X-Offset` / `X-Limit` which page this is.
 */
async function sendConnections(o: AdminOptions, url: URL, res: ServerResponse): Promise<void> {
  const limit = pageParam(url, 'limit', defaults.adminPageLimit, 1, defaults.adminPageLimitMax);
  const offset = pageParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
  if (typeof limit === 'string' || typeof offset === 'string') {
    return send(res, 400, 'text/plain', `${typeof limit === 'string' ? limit : offset}\n`);
  }
  const all = await o.source.connections();
  res.setHeader('X-Total-Count', String(all.length));
  res.setHeader('X-Offset', String(offset));
  res.setHeader('X-Limit', String(limit));
  sendJson(res, 200, all.slice(offset, offset + limit));
}

/** A whole-number query parameter in [min, max], its fallback when absent, or the reason it is bad. */
function pageParam(
  url: URL,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number | string {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d{1,16}$/.test(text) || n < min || n > max) {
    return `${name}: expected a whole number from ${min} to ${max}`;
  }
  return n;
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
