/**
 * The admin HTTP server (node:http, so it runs on Node and Bun): health and readiness probes,
 * Prometheus metrics, the live connections and servers as JSON, and the stats page. Off unless
 * configured; binds where it is told (127.0.0.1 by default). With a token, every request needs
 * `Authorization: Bearer TOKEN` (the stats page may take it as `?token=`) and gets 401 without.
 *
 * It shares the process (and its descriptors and event loop) with the data path, so it is kept
 * small: a few connection slots that idle clients cannot hold against a probe (slots.ts), paged
 * connection lists, and no listening beyond loopback without a token. Against browsers: a Host
 * allow-list (hosts.ts, DNS rebinding), headers that forbid framing and inline code other than
 * the page's own, and no state-changing route without a token unless the config says so.
 *
 * Connections are accepted by a node:net server and handed to the node:http one (its
 * 'connection' event, which both runtimes honour), so the slots and their timeouts are the same
 * code on Node and on Bun, whose node:http counts and times connections differently.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { State } from '../core/state.ts';
import { defaults } from '../defaults.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { LogLimiter } from '../log-limiter.ts';
import { formatMetrics, METRICS_CONTENT_TYPE } from '../observability/metrics.ts';
import { isSingleExecutable, singleExecutableAsset } from '../runtime-check.ts';
import type { ConnectionRow } from '../stats.ts';
import { formatHostPort, type HostPort, isLoopbackHost } from '../units.ts';
import { bearerMatches } from './auth.ts';
import { History } from './history.ts';
import { type HostCheck, hostCheck } from './hosts.ts';
import { ConnectionSlots } from './slots.ts';
import type { StatsSource } from './source.ts';
import { STATS_PAGE } from './stats-page.ts';

export interface AdminOptions {
  listen: HostPort;
  /** Required of every request when set; none by default. */
  token?: string | undefined;
  /** Host names served besides IP addresses, localhost and the listen host; `*`: any. */
  allowedHosts?: readonly string[] | undefined;
  /** Lets DELETE through without a token (when none is set); refused with 403 by default. */
  allowChangesWithoutToken?: boolean | undefined;
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
  const limiter = new LogLimiter(options.log);
  const ctx: Context = {
    o: options,
    history,
    limiter,
    hostAllowed: hostCheck(options.listen.host, options.allowedHosts),
  };
  // The slots hold at most adminMaxConnections descriptors, never the proxy's, and enforce the
  // header, keep-alive and request timeouts (node:http's own, headersTimeout and requestTimeout,
  // are checked only for connections the http server accepted itself).
  const slots = new ConnectionSlots({
    max: defaults.adminMaxConnections,
    headersMs: defaults.adminHeadersTimeoutMs,
    keepAliveMs: defaults.adminKeepAliveTimeoutMs,
    busyMs: defaults.adminRequestTimeoutMs,
    sweepMs: 1_000,
  });
  const http1 = http.createServer(
    { keepAliveTimeout: defaults.adminKeepAliveTimeoutMs },
    (req, res) => {
      const socket = req.socket as net.Socket;
      slots.busy(socket);
      res.once('close', () => slots.idle(socket));
      handle(ctx, req, res).catch((err: unknown) => {
        limiter.write(
          'error',
          'admin request failed',
          { err: (err as Error).message, url: clip(req.url) },
          'admin request failed',
        );
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    },
  );
  http1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    onClientError(ctx, err, socket);
  });
  const server = net.createServer((socket) => {
    socket.on('error', ignore);
    if (slots.admit(socket)) http1.emit('connection', socket);
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
      `admin server cannot listen on ${where}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  // An accept that fails (EMFILE: the proxy holds every descriptor) loses that one client only.
  server.on('error', (err: NodeJS.ErrnoException) => {
    limiter.write(
      'warn',
      'admin accept failed',
      { err: err.code ?? err.message },
      'admin accept failed',
    );
  });
  const a = server.address() as AddressInfo;
  history.start();
  return {
    address: { host: a.address, port: a.port },
    close: async () => {
      history.stop();
      const closed = new Promise((resolve) => server.close(resolve));
      slots.closeAll();
      await closed;
      limiter.close();
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

/** What every request is answered with: the options and what the server holds. */
interface Context {
  o: AdminOptions;
  history: History;
  /** Lines about bad requests, refused hosts and failures: a peer can cause one per request. */
  limiter: LogLimiter;
  hostAllowed: HostCheck;
}

/** Methods that change something: they need a token even on loopback (see handle). */
const CHANGES: ReadonlySet<string> = new Set(['DELETE', 'PUT', 'POST', 'PATCH']);

/**
 * Answers one request. In order: a request target that is no path is 400; a Host not allowed
 * (hosts.ts) is 421, before anything is read or changed; the page and its assets are served
 * without a token; with a token set, everything else needs it (401); a change (DELETE) without
 * a token set is refused (403) unless allowChangesWithoutToken, so a page the operator's browser
 * happens to load cannot close connections on a loopback server.
 */
async function handle(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { o, history, limiter } = ctx;
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', API_CSP);
  const url = targetOf(req.url);
  if (url === null) {
    limiter.write('warn', BAD_REQUEST, { target: clip(req.url) }, BAD_REQUEST);
    return send(res, 400, 'text/plain', 'bad request target\n');
  }
  if (!ctx.hostAllowed(req.headers.host)) {
    limiter.write('warn', HOST_REFUSED, { host: clip(req.headers.host) }, HOST_REFUSED);
    return send(res, 421, 'text/plain', 'this Host is not served: see admin.allowedHosts\n');
  }
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const open = PUBLIC[path];
  if (open !== undefined && (method === 'GET' || method === 'HEAD')) {
    const { type, body, cache } = open();
    if (path === '/') res.setHeader('Content-Security-Policy', PAGE_CSP);
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
  if (CHANGES.has(method) && o.token === undefined && o.allowChangesWithoutToken !== true) {
    return send(
      res,
      403,
      'text/plain',
      'changes need the admin token: set admin.token (or admin.allowChangesWithoutToken: true)\n',
    );
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

/** Log line (and limiter key) of a request that cannot be parsed or whose target is no path. */
const BAD_REQUEST = 'admin bad request';
/** Log line (and limiter key) of a request refused for its Host. */
const HOST_REFUSED = 'admin request refused: Host not allowed';

/**
 * Origin-form, RFC 9112 3.2.1: a path of RFC 3986's characters, then an optional query of any
 * visible ASCII (browsers leave `|`, `^`, `{`… unencoded there when a user types them).
 */
const ORIGIN_FORM = /^\/[\w\-.~!$&'()*+,;=:@%/]*(?:\?[\x21-\x7e]*)?$/;

/**
 * The path and query of a request target, or null when it is not origin-form (`/path?query`,
 * what browsers, curl and scrapers send, everything else percent-encoded): `//[`, which made
 * `new URL(target, base)` throw (an authority to it), is one.
 */
function targetOf(target: string | undefined): URL | null {
  if (target === undefined || !ORIGIN_FORM.test(target)) return null;
  return URL.parse(`http://admin${target}`);
}

/** At most 100 characters of a peer's text for a log line. */
function clip(text: string | undefined): string | undefined {
  return text === undefined || text.length <= 100 ? text : `${text.slice(0, 100)}…`;
}

/** sha256 sources of the page's inline `<script>` and `<style>` elements, for its CSP. */
function inlineHashes(html: string, tag: 'script' | 'style'): string {
  return [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))]
    .map(
      (m) =>
        `'sha256-${createHash('sha256')
          .update(m[1] as string)
          .digest('base64')}'`,
    )
    .join(' ');
}

/**
 * The stats page's Content-Security-Policy: its own inline script and style (by hash, computed
 * from the page as built), the assets and the API of this server, nothing else; never framed.
 */
const PAGE_CSP = [
  "default-src 'none'",
  `script-src 'self' ${inlineHashes(STATS_PAGE, 'script')}`,
  `style-src 'self' ${inlineHashes(STATS_PAGE, 'style')}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
/** Every other answer holds no markup: nothing may run in it, nothing may frame it. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * A request node:http could not parse (a broken request line, headers too large, a timeout):
 * answered 400 (431, 408) and closed, as node:http does without a listener, with one rate-limited
 * line: a peer can send thousands a second.
 */
function onClientError(ctx: Context, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  ctx.limiter.write('warn', BAD_REQUEST, { err: err.code ?? err.message }, BAD_REQUEST);
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request';
  // Nothing of a response went out yet (bytesWritten 0): one can be sent whole, then closed.
  if ((socket as net.Socket).bytesWritten !== 0) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
    socket.destroy(),
  );
}

function ignore(): void {}
