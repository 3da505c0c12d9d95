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
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { State } from '../core/state.ts';
import { defaults } from '../defaults.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { formatMetrics, METRICS_CONTENT_TYPE } from '../observability/metrics.ts';
import { isSingleExecutable, singleExecutableAsset } from '../runtime-check.ts';
import type { ConnectionRow } from '../stats.ts';
import { formatHostPort, type HostPort, isLoopbackHost } from '../units.ts';
import { bearerMatches } from './auth.ts';
import { History } from './history.ts';
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
  const history = new History(options.source);
  const server = http.createServer(
    {
      headersTimeout: defaults.adminHeadersTimeoutMs,
      requestTimeout: defaults.adminRequestTimeoutMs,
      keepAliveTimeout: defaults.adminKeepAliveTimeoutMs,
      // Node's default (30 s) would let a slow sender keep its slot up to 30 s past the timeouts.
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(options, history, req, res).catch((err: unknown) => {
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
  history.start();
  return {
    address: { host: a.address, port: a.port },
    close: async () => {
      history.stop();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections?.();
      await closed;
    },
  };
}

/**
 * What a browser loads before it can hold a token: the page and its charting library. They hold
 * no data (every number comes from /api/, which needs the token), so they are served without
 * one: the page then takes the token from its own URL (`/?token=`) or asks for it.
 */
const PUBLIC: Record<string, () => { type: string; body: string | Buffer; cache: string }> = {
  '/': () => ({ type: 'text/html; charset=utf-8', body: STATS_PAGE, cache: 'no-store' }),
  '/assets/uplot.js': () => ({
    type: 'text/javascript; charset=utf-8',
    body: asset('uplot/dist/uPlot.iife.min.js'),
    cache: 'max-age=86400',
  }),
  '/assets/uplot.css': () => ({
    type: 'text/css; charset=utf-8',
    body: asset('uplot/dist/uPlot.min.css'),
    cache: 'max-age=86400',
  }),
};

const assets = new Map<string, Buffer>();
/** A file of an installed package (uPlot), read once and kept: 50 KiB, no CDN. */
function asset(name: string): Buffer {
  let body = assets.get(name);
  if (body === undefined) {
    // The single executable has no node_modules: it carries the two files (bin/build-exe.ts).
    body = isSingleExecutable()
      ? singleExecutableAsset(name)
      : readFileSync(createRequire(import.meta.url).resolve(name));
    assets.set(name, body);
  }
  return body;
}

async function handle(
  o: AdminOptions,
  history: History,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const open = PUBLIC[path];
  if (open !== undefined && (method === 'GET' || method === 'HEAD')) {
    const { type, body, cache } = open();
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': cache,
    });
    res.end(method === 'HEAD' ? undefined : body);
    return;
  }
  if (o.token !== undefined && !bearerMatches(req.headers.authorization, o.token)) {
    res.setHeader('WWW-Authenticate', 'Bearer');
    send(res, 401, 'text/plain', 'unauthorized\n');
    return;
  }
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
    case '/api/history':
      return sendJson(res, 200, history.view());
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
}

/** `?sort=` of /api/connections: the connection id (oldest first), or the largest first. */
const SORTS = {
  id: null,
  age: (a: ConnectionRow, b: ConnectionRow) => b.ageMs - a.ageMs,
  bytes: (a: ConnectionRow, b: ConnectionRow) => b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut),
} as const;
const STATES: ReadonlySet<string> = new Set(Object.values(State));

/**
 * One page of the live connections: `?limit=` rows (default adminPageLimit, at most
 * adminPageLimitMax) from `?offset=` (default 0), optionally only those of `?frontend=`,
 * `?server=` and `?state=`, in `?sort=` order (`id`, the default; `age` or `bytes`, largest
 * first). The body stays a plain array, as before paging; `X-Total-Count` says how many match,
 * `X-Offset` / `X-Limit` which page this is. Filtering and sorting are done here, so a page of
 * 200 out of 10,000 sends 200 rows. Sorting 10,000 rows
 * (measured, median of 20): 0.4 ms by age (they come nearly in that order), 6 ms by bytes; a
 * bounded top-k selection would make the second one linear if pages are ever asked for faster.
 */
async function sendConnections(o: AdminOptions, url: URL, res: ServerResponse): Promise<void> {
  const limit = pageParam(url, 'limit', defaults.adminPageLimit, 1, defaults.adminPageLimitMax);
  const offset = pageParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
  if (typeof limit === 'string' || typeof offset === 'string') {
    return send(res, 400, 'text/plain', `${typeof limit === 'string' ? limit : offset}\n`);
  }
  const sort = url.searchParams.get('sort') ?? 'id';
  if (!Object.hasOwn(SORTS, sort)) {
    return send(res, 400, 'text/plain', `sort: expected one of ${Object.keys(SORTS).join(', ')}\n`);
  }
  const frontend = url.searchParams.get('frontend');
  const server = url.searchParams.get('server');
  const state = url.searchParams.get('state');
  if (state !== null && !STATES.has(state)) {
    return send(res, 400, 'text/plain', `state: expected one of ${[...STATES].join(', ')}\n`);
  }
  let rows = await o.source.connections();
  const filtered = frontend !== null || server !== null || state !== null;
  if (filtered) {
    rows = rows.filter(
      (c) =>
        (frontend === null || c.frontend === frontend) &&
        (server === null || c.server === server) &&
        (state === null || c.state === state),
    );
  }
  const compare = SORTS[sort as keyof typeof SORTS];
  // Sorted in place only when filtering made a copy: the source's array may be kept (a supervisor's).
  if (compare !== null) rows = (filtered ? rows : [...rows]).sort(compare);
  res.setHeader('X-Total-Count', String(rows.length));
  res.setHeader('X-Offset', String(offset));
  res.setHeader('X-Limit', String(limit));
  sendJson(res, 200, rows.slice(offset, offset + limit));
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
