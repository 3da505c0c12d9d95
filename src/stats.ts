/**
 * What switchyard reports: every number of stats() declared once (FRONTEND_STATS,
 * BACKEND_STATS: what it is, how the numbers of several workers make one, its /metrics family
 * and labels, its help, its column on the stats page), and the shape of stats() derived from
 * those declarations (StatsOf). /metrics (observability/metrics.ts), the worker sum
 * (core/aggregate.ts) and the stats page (admin/stats-page.ts) walk the same declarations, so a
 * new number is one entry here plus the line of its producer (core/proxy.ts, core/backend.ts)
 * that fills it in: the type checker then asks for that line, and test/stats.test.ts fails for a
 * number stats() returns that is declared nowhere.
 *
 * Every layer may import this module: it has no runtime import, and its type-only imports are
 * the two vocabulary tables of core/ (ending.ts imports nothing; state.ts only errors.ts).
 */
import type { Rejection, SessionEnding } from './core/ending.ts';
import type { State } from './core/state.ts';
import type { TlsInfo } from './tls.ts';

/** A histogram as a scrape reads it: bounds (milliseconds, ascending), non-cumulative counts. */
export interface HistogramSnapshot {
  bounds: readonly number[];
  /** counts[i] = observations <= bounds[i] and > bounds[i-1]; the last entry is above every bound. */
  counts: number[];
  sumMs: number;
  count: number;
}

/** One live connection, as /api/connections, the stats page and the supervisor list it. */
export interface ConnectionRow {
  id: number;
  client: string;
  /** The frontend it came in on. */
  frontend: string;
  /** The server it is connected (or connecting) to; null while waiting in the queue. */
  server: string | null;
  state: State;
  /** Bytes read from the client (and passed to the backend). */
  bytesIn: number;
  /** Bytes read from the backend (and passed to the client). */
  bytesOut: number;
  ageMs: number;
  /** Which socket is not taking bytes (the side a direction waits on), if any. */
  blocked: 'client' | 'server' | 'both' | null;
  /** What the client's TLS handshake negotiated (SNI, ALPN, version, cipher); null: plain TCP. */
  tls: TlsInfo | null;
  /**
   * The server name the client asked for: from its ClientHello on an SNI-routing frontend
   * (`tls` is null there: not terminated), from its handshake on a TLS one; null without one.
   */
  sni: string | null;
  /** The worker process that holds it (a supervisor's list only). */
  worker?: number;
}

// ─── Declarations ───

/**
 * How the numbers of several workers make one (core/aggregate.ts), and what a dead worker leaves:
 * - `sum`: a counter: every worker's added up, a dead worker's last report included (a counter
 *   never goes back);
 * - `live`: a gauge: the live workers' added up; a dead worker's leaves with it;
 * - `first`: a setting or a name, the same in every worker: the first worker's;
 * - `all`: a flag that holds only when it holds in every live worker (a server is up when every
 *   worker's checks say so); a dead worker has no say;
 * - `buckets`: a histogram: counts added bucket by bucket, and sum and count; bounds the first's.
 */
export type Merge = 'sum' | 'live' | 'first' | 'all' | 'buckets';

/** The key types of keyed numbers, by the vocabulary their keys come from. */
export interface KeyTypes {
  /** The endings of a session that existed (core/ending.ts). */
  closed: SessionEnding;
  /** The endings of a client turned away at accept (core/ending.ts). */
  rejected: Rejection;
  /** The connection states (core/state.ts); /metrics samples the live ones (CLOSED holds none). */
  state: State;
  /** Why a log line was not written (log-writer.ts). */
  logDropped: string;
}

/** How the stats page shows a number: its column's title, and how the value is written. */
export interface Column {
  readonly title: string;
  /** `bytes`: KiB, MiB...; `limit`: 0 shows as "-"; `health`: UP, DOWN, UP (backup). */
  readonly as?: 'bytes' | 'limit' | 'health';
}

interface Described {
  /** What the number says, for people: the metric's HELP when it has a family of its own. */
  readonly help: string;
  /** Not every report carries it (a frontend without TLS has no certificates). */
  readonly optional?: true;
  /** Its column on the stats page's table of frontends or servers; none: not on the page. */
  readonly page?: Column;
}

/** One number (or histogram, flag, name). */
export interface LeafDeclaration extends Described {
  /** counter, gauge, histogram: as Prometheus says it; flag: a boolean (a 0/1 gauge); text: a name. */
  readonly kind: 'counter' | 'gauge' | 'histogram' | 'flag' | 'text';
  readonly merge: Merge;
  /** Its /metrics family (this declaration's help and kind are the family's); none: not exported. */
  readonly metric?: string;
  /** Exported in the family of this sibling, which declares it, instead of one of its own. */
  readonly into?: string;
  /** Labels of its samples besides those of where it sits (`direction="in"`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Exported as itself minus this sibling (health checks passed: `checks` − `checkFailures`). */
  readonly minus?: string;
  /** Exported as the seconds from now until it (it is a time, ms since the epoch), rounded. */
  readonly fromNow?: true;
}

/** Numbers by the words of a vocabulary (`closed.done`, `states.READING`). */
export interface KeyedDeclaration extends Described {
  readonly kind: 'counter' | 'gauge';
  readonly merge: Merge;
  /** The vocabulary its keys come from. */
  readonly keys: keyof KeyTypes;
  /** The Prometheus label its key is exported as. */
  readonly label: string;
  /** Every key of the vocabulary is present (else only those counted so far). */
  readonly complete?: true;
  /** /metrics samples every key of the vocabulary, 0 included, so a rate() sees the first one. */
  readonly zeros?: true;
  readonly metric?: string;
  /** Named numbers beside the keyed ones (`states.illegal`). */
  readonly also?: Declarations;
}

/** Numbers grouped under one key (`pool.inUse`). */
export interface GroupDeclaration extends Described {
  readonly group: Declarations;
}

/** A list of named entries (a backend's servers), matched across workers by their `name`. */
export interface ListDeclaration extends Described {
  readonly list: Declarations & { readonly name: LeafDeclaration };
  /** The Prometheus label an entry's name is exported as (`server`). */
  readonly label: string;
}

export type Declaration = LeafDeclaration | KeyedDeclaration | GroupDeclaration | ListDeclaration;
export type Declarations = { readonly [key: string]: Declaration };

/** The value a declaration describes. */
type ValueOf<D> = D extends { readonly group: infer G }
  ? StatsOf<G>
  : D extends { readonly list: infer E }
    ? StatsOf<E>[]
    : D extends { readonly keys: infer K extends keyof KeyTypes }
      ? (D extends { readonly complete: true }
          ? Record<KeyTypes[K], number>
          : Partial<Record<KeyTypes[K], number>>) &
          (D extends { readonly also: infer A } ? StatsOf<A> : unknown)
      : D extends { readonly kind: 'histogram' }
        ? HistogramSnapshot
        : D extends { readonly kind: 'flag' }
          ? boolean
          : D extends { readonly kind: 'text' }
            ? string
            : number;

/** The object a set of declarations describes: the shape stats() returns, derived. */
export type StatsOf<T> = Flat<
  {
    -readonly [K in keyof T as T[K] extends { readonly optional: true } ? never : K]: ValueOf<T[K]>;
  } & {
    -readonly [K in keyof T as T[K] extends { readonly optional: true } ? K : never]?: ValueOf<
      T[K]
    >;
  }
>;
type Flat<T> = { [K in keyof T]: T[K] };

/** Each number of one frontend's listener (a ProxyServer's stats()), once, in /metrics order. */
export const PROXY_STATS = {
  active: {
    kind: 'gauge',
    merge: 'live',
    help: 'Live connections.',
    page: { title: 'active' },
  },
  states: {
    kind: 'gauge',
    merge: 'live',
    keys: 'state',
    label: 'state',
    complete: true,
    zeros: true,
    metric: 'switchyard_connections',
    help: 'Live connections by state.',
    also: {
      illegal: {
        kind: 'counter',
        merge: 'sum',
        metric: 'switchyard_illegal_transitions_total',
        help: 'Connection state moves the table rejected (non-zero is a bug).',
      },
    },
  },
  accepted: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_connections_accepted_total',
    help: 'Client connections admitted (a session started; clients turned away count in the rejected total).',
    page: { title: 'accepted' },
  },
  rejected: {
    kind: 'counter',
    merge: 'sum',
    keys: 'rejected',
    label: 'reason',
    zeros: true,
    metric: 'switchyard_connections_rejected_total',
    help: 'Clients turned away at accept, by reason (an ending of core/ending.ts).',
    page: { title: 'rejected' },
  },
  closed: {
    kind: 'counter',
    merge: 'sum',
    keys: 'closed',
    label: 'reason',
    metric: 'switchyard_connections_closed_total',
    help: 'Connections closed, by reason (an ending of core/ending.ts, as the access log cause).',
    page: { title: 'closed' },
  },
  acceptErrors: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_accept_errors_total',
    help: 'Accepts the kernel refused (EMFILE, ...).',
  },
  bytesIn: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_bytes_total',
    labels: { direction: 'in' },
    help: 'Bytes forwarded; direction "in" is client to server, "out" server to client.',
    page: { title: 'bytes in', as: 'bytes' },
  },
  bytesOut: {
    kind: 'counter',
    merge: 'sum',
    into: 'bytesIn',
    labels: { direction: 'out' },
    help: 'Bytes read from the servers (and passed to the clients).',
    page: { title: 'bytes out', as: 'bytes' },
  },
  histograms: {
    optional: true,
    help: 'Of closed connections (stats summed from an older worker may carry none).',
    group: {
      connectMs: {
        kind: 'histogram',
        merge: 'buckets',
        metric: 'switchyard_connect_duration_seconds',
        help: 'Time from accept to the server connect, of closed connections.',
      },
      durationMs: {
        kind: 'histogram',
        merge: 'buckets',
        metric: 'switchyard_session_duration_seconds',
        help: 'Lifetime of closed connections.',
      },
    },
  },
  pool: {
    help: "The listener's buffer pool.",
    group: {
      capacity: { kind: 'gauge', merge: 'live', help: 'Pool buffers allocated.' },
      inUse: {
        kind: 'gauge',
        merge: 'live',
        metric: 'switchyard_pool_buffers_in_use',
        help: 'Pool buffers holding bytes.',
      },
      highWater: { kind: 'gauge', merge: 'live', help: 'Most pool buffers in use at once.' },
      bufferSize: { kind: 'gauge', merge: 'first', help: 'Size of each pool buffer.' },
    },
  },
  tlsCertificates: {
    optional: true,
    label: 'cert',
    help: "A TLS frontend's certificates.",
    list: {
      name: { kind: 'text', merge: 'first', help: 'The certificate file, as the config names it.' },
      expiresAt: {
        kind: 'gauge',
        merge: 'first',
        metric: 'switchyard_tls_certificate_expiry_seconds',
        fromNow: true,
        help: 'Seconds until a TLS certificate of a frontend expires (negative: expired).',
      },
    },
  },
} as const satisfies Declarations;

/** A frontend in stats(): its listener's numbers (all of them, when several), address, backend. */
export const FRONTEND_STATS = {
  listen: { kind: 'text', merge: 'first', help: 'Its listen address.', page: { title: 'listen' } },
  backend: { kind: 'text', merge: 'first', help: 'Its backend.', page: { title: 'backend' } },
  ...PROXY_STATS,
} as const satisfies Declarations;

/** Each number of one server of a backend, once, in /metrics order. */
export const SERVER_STATS = {
  name: { kind: 'text', merge: 'first', help: 'Its name.', page: { title: 'server' } },
  address: { kind: 'text', merge: 'first', help: 'Its address.', page: { title: 'address' } },
  up: {
    kind: 'flag',
    merge: 'all',
    metric: 'switchyard_server_up',
    help: 'Server health: 1 up, 0 down.',
    page: { title: 'state', as: 'health' },
  },
  backup: {
    kind: 'flag',
    merge: 'first',
    metric: 'switchyard_server_backup',
    help: '1 for a backup server.',
  },
  weight: {
    kind: 'gauge',
    merge: 'first',
    metric: 'switchyard_server_weight',
    help: 'Server weight (0 = drained).',
    page: { title: 'weight' },
  },
  active: {
    kind: 'gauge',
    merge: 'live',
    metric: 'switchyard_server_active_connections',
    help: 'Connections a server holds (connecting or established).',
    page: { title: 'active' },
  },
  maxConnections: {
    kind: 'gauge',
    merge: 'first',
    help: "A server's connection limit (0 = unlimited).",
    page: { title: 'max', as: 'limit' },
  },
  connections: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_server_connections_total',
    help: 'Connect attempts sent to a server.',
    page: { title: 'connections' },
  },
  failures: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_server_connect_failures_total',
    help: 'Connect attempts to a server that failed (refused, reset, timed out).',
    page: { title: 'failures' },
  },
  checks: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_health_checks_total',
    labels: { result: 'pass' },
    minus: 'checkFailures',
    help: 'Active health checks, by result (pass or fail).',
    page: { title: 'checks' },
  },
  checkFailures: {
    kind: 'counter',
    merge: 'sum',
    into: 'checks',
    labels: { result: 'fail' },
    help: 'Health checks that failed.',
    page: { title: 'check failures' },
  },
} as const satisfies Declarations;

/** Each number of a backend (Backend.stats()), once, in /metrics order. */
export const BACKEND_STATS = {
  name: { kind: 'text', merge: 'first', help: 'Its name.' },
  balance: { kind: 'text', merge: 'first', help: 'Its balance algorithm.' },
  servers: { label: 'server', help: 'Its servers (and those leaving).', list: SERVER_STATS },
  queued: {
    kind: 'gauge',
    merge: 'live',
    metric: 'switchyard_backend_queue_length',
    help: 'Clients waiting for a server slot.',
  },
  queueTimeouts: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_backend_queue_timeouts_total',
    help: 'Clients that left the queue by its timeout.',
  },
  queueFull: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_backend_queue_full_total',
    help: 'Clients closed because the queue was full.',
  },
  localErrors: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_backend_local_errors_total',
    help: 'Connects and health checks that failed in switchyard itself (EMFILE, ENOMEM, ...), not at the server.',
  },
  dnsFailures: {
    kind: 'counter',
    merge: 'sum',
    metric: 'switchyard_dns_failures_total',
    help: 'DNS resolutions (discover, server hostnames) that failed or came back empty; the last good answer stays in use.',
  },
} as const satisfies Declarations;

/**
 * stats() itself: frontends and backends by name, each entry's numbers exported with its name as
 * `label`; `info` is a family of one sample per entry, its text fields as labels.
 */
export const STATS = {
  frontends: {
    label: 'frontend',
    of: FRONTEND_STATS,
    info: {
      metric: 'switchyard_frontend_info',
      help: 'Each frontend, its listen address and backend.',
      labels: ['backend', 'listen'],
    },
  },
  backends: { label: 'backend', of: BACKEND_STATS },
} as const satisfies Record<string, Entity>;

/** A collection of stats(): its entries' declarations and the label their names are exported as. */
export interface Entity {
  readonly label: string;
  readonly of: Declarations;
  readonly info?: {
    readonly metric: string;
    readonly help: string;
    readonly labels: readonly string[];
  };
}

/** Numbers of the process itself (not in stats(): read where /metrics is made). */
export const PROCESS_STATS = {
  logDropped: {
    kind: 'counter',
    merge: 'sum',
    keys: 'logDropped',
    label: 'reason',
    metric: 'switchyard_log_dropped_total',
    help: 'Log lines not written, by reason (full: queue full, error: write failed, suppressed: rate-limited).',
  },
} as const satisfies Declarations;

/** One listener's numbers (a ProxyServer's stats()). */
export type ProxyStats = StatsOf<typeof PROXY_STATS>;
/** One frontend in stats(): its listeners' numbers, its address and backend. */
export type FrontendStats = StatsOf<typeof FRONTEND_STATS>;
export type ServerStats = StatsOf<typeof SERVER_STATS>;
/** What a route hook sees of one server: its settings and health, and its live connections. */
export type ServerView = Readonly<
  Pick<ServerStats, 'name' | 'address' | 'up' | 'backup' | 'weight' | 'active' | 'maxConnections'>
>;
export type BackendStats = StatsOf<typeof BACKEND_STATS>;
/** Everything stats() returns: each frontend and each backend, by name. */
export type SwitchyardStats = {
  -readonly [K in keyof typeof STATS]: Record<string, StatsOf<(typeof STATS)[K]['of']>>;
};

/**
 * `entries[name]` when `entries` holds one of that name (its own property: never one of
 * Object.prototype's, for a frontend named `constructor`); else undefined.
 */
export function entryOf<T>(entries: Record<string, T>, name: string): T | undefined {
  return Object.hasOwn(entries, name) ? entries[name] : undefined;
}

/**
 * Sets `entries[name]` as an own property, whatever the name: a plain assignment of `__proto__`
 * would set the object's prototype instead, and the entry would vanish from every listing.
 */
export function setEntry<T>(entries: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(entries, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
