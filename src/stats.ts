/**
 * What switchyard reports: the shape of stats() and connections(), and one declaration per
 * number in it saying what it is (counter, gauge, setting) and how the numbers of several
 * workers make one (core/aggregate.ts), so that the metrics (observability/metrics.ts),
 * the aggregation and the stats page read the same declaration instead of each remembering it.
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

/** One frontend's numbers (a ProxyServer's stats()). */
export interface ProxyStats {
  active: number;
  accepted: number;
  /** Clients turned away at accept, by ending (`rejected_at_cap`: the connection cap). */
  rejected: Partial<Record<Rejection, number>>;
  acceptErrors: number;
  /** Closed connections, by ending. */
  closed: Partial<Record<SessionEnding, number>>;
  bytesIn: number;
  bytesOut: number;
  states: Record<State, number> & { illegal: number };
  pool: { capacity: number; inUse: number; highWater: number; bufferSize: number };
  /**
   * Closed connections: time from accept to the server connect, and whole lifetime. Optional so
   * stats summed from elsewhere (workers) may leave it out; a ProxyServer always has it.
   */
  histograms?: { connectMs: HistogramSnapshot; durationMs: HistogramSnapshot };
  /** A TLS frontend's certificates: `name` is the cert file, `expiresAt` its expiry (ms epoch). */
  tlsCertificates?: { name: string; expiresAt: number }[];
}

/** What a route hook sees of one server. */
export interface ServerView {
  readonly name: string;
  readonly address: string;
  readonly up: boolean;
  readonly backup: boolean;
  readonly weight: number;
  /** Connections the server holds now (connecting or established). */
  readonly active: number;
  /** Its connection limit; 0 = unlimited. */
  readonly maxConnections: number;
}

export interface ServerStats extends ServerView {
  /** Connections sent to it (each connect attempt). */
  connections: number;
  /** Connect attempts that failed (refused, reset, timed out). */
  failures: number;
  /** Health checks run, and how many failed. */
  checks: number;
  checkFailures: number;
}

export interface BackendStats {
  name: string;
  balance: string;
  queued: number;
  /** Clients that left the queue by its timeout or because it was full. */
  queueTimeouts: number;
  queueFull: number;
  /** Connects and checks that failed in this process (EMFILE, ENOMEM, ...), not at the server. */
  localErrors: number;
  /** Resolutions of its `discover` name or its servers' hostnames that failed or came back empty. */
  dnsFailures: number;
  servers: ServerStats[];
}

/** Everything stats() returns: each frontend (with its address and backend) and each backend. */
export interface SwitchyardStats {
  frontends: Record<string, ProxyStats & { listen: string; backend: string }>;
  backends: Record<string, BackendStats>;
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

/**
 * How the numbers of several workers make one:
 * - `sum`: counters, and gauges of the live workers (active connections, bytes, queue length);
 * - `setting`: the same in every worker (a weight, a buffer size): taken from the first;
 * - `all`: a flag that holds only when it holds in every worker (a server is up when every
 *   worker's checks say so);
 * - `buckets`: histogram counts add up bucket by bucket (their bounds are a setting).
 */
export type Merge = 'sum' | 'setting' | 'all' | 'buckets';

/** One declared number: its Prometheus family (if exported), type, help, and merge. */
export interface StatDeclaration {
  readonly merge: Merge;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'setting' | 'flag';
  /** The metric family, when /metrics exports it. */
  readonly metric?: string;
  readonly help: string;
}

/** Each number of ProxyStats, once. Keyed by field name (nested fields by their own name). */
export const FRONTEND_STATS = {
  active: { merge: 'sum', type: 'gauge', help: 'Live connections.' },
  accepted: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_connections_accepted_total',
    help: 'Client connections admitted (a session started; clients turned away count in the rejected total).',
  },
  rejected: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_connections_rejected_total',
    help: 'Clients turned away at accept, by reason (an ending of core/ending.ts).',
  },
  closed: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_connections_closed_total',
    help: 'Connections closed, by reason (an ending of core/ending.ts, as the access log cause).',
  },
  acceptErrors: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_accept_errors_total',
    help: 'Accepts the kernel refused (EMFILE, ...).',
  },
  bytesIn: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_bytes_total',
    help: 'Bytes forwarded; direction "in" is client to server, "out" server to client.',
  },
  bytesOut: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_bytes_total',
    help: 'Bytes forwarded; direction "in" is client to server, "out" server to client.',
  },
  states: {
    merge: 'sum',
    type: 'gauge',
    metric: 'switchyard_connections',
    help: 'Live connections by state.',
  },
  illegal: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_illegal_transitions_total',
    help: 'Connection state moves the table rejected (non-zero is a bug).',
  },
  capacity: { merge: 'sum', type: 'gauge', help: 'Pool buffers allocated.' },
  inUse: {
    merge: 'sum',
    type: 'gauge',
    metric: 'switchyard_pool_buffers_in_use',
    help: 'Pool buffers holding bytes.',
  },
  highWater: { merge: 'sum', type: 'gauge', help: 'Most pool buffers in use at once.' },
  bufferSize: { merge: 'setting', type: 'setting', help: 'Size of each pool buffer.' },
  connectMs: {
    merge: 'buckets',
    type: 'histogram',
    metric: 'switchyard_connect_duration_seconds',
    help: 'Time from accept to the server connect, of closed connections.',
  },
  durationMs: {
    merge: 'buckets',
    type: 'histogram',
    metric: 'switchyard_session_duration_seconds',
    help: 'Lifetime of closed connections.',
  },
  bounds: { merge: 'setting', type: 'setting', help: 'Histogram bucket bounds (ms).' },
  expiresAt: {
    merge: 'setting',
    type: 'gauge',
    metric: 'switchyard_tls_certificate_expiry_seconds',
    help: 'Seconds until a TLS certificate of a frontend expires (negative: expired).',
  },
} as const satisfies Record<string, StatDeclaration>;

/** Numbers of the process itself (not in stats(): read where /metrics is made). */
export const PROCESS_STATS = {
  logDropped: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_log_dropped_total',
    help: 'Log lines not written, by reason (full: queue full, error: write failed, suppressed: rate-limited).',
  },
} as const satisfies Record<string, StatDeclaration>;

/** Each number of BackendStats and ServerStats, once. */
export const BACKEND_STATS = {
  queued: {
    merge: 'sum',
    type: 'gauge',
    metric: 'switchyard_backend_queue_length',
    help: 'Clients waiting for a server slot.',
  },
  queueTimeouts: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_backend_queue_timeouts_total',
    help: 'Clients that left the queue by its timeout.',
  },
  queueFull: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_backend_queue_full_total',
    help: 'Clients closed because the queue was full.',
  },
  localErrors: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_backend_local_errors_total',
    help: 'Connects and health checks that failed in switchyard itself (EMFILE, ENOMEM, ...), not at the server.',
  },
  dnsFailures: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_dns_failures_total',
    help: 'DNS resolutions (discover, server hostnames) that failed or came back empty; the last good answer stays in use.',
  },
  up: {
    merge: 'all',
    type: 'flag',
    metric: 'switchyard_server_up',
    help: 'Server health: 1 up, 0 down.',
  },
  backup: {
    merge: 'setting',
    type: 'flag',
    metric: 'switchyard_server_backup',
    help: '1 for a backup server.',
  },
  weight: {
    merge: 'setting',
    type: 'setting',
    metric: 'switchyard_server_weight',
    help: 'Server weight (0 = drained).',
  },
  maxConnections: {
    merge: 'setting',
    type: 'setting',
    help: "A server's connection limit (0 = unlimited).",
  },
  active: {
    merge: 'sum',
    type: 'gauge',
    metric: 'switchyard_server_active_connections',
    help: 'Connections a server holds (connecting or established).',
  },
  connections: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_server_connections_total',
    help: 'Connect attempts sent to a server.',
  },
  failures: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_server_connect_failures_total',
    help: 'Connect attempts to a server that failed (refused, reset, timed out).',
  },
  checks: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_health_checks_total',
    help: 'Active health checks, by result (pass or fail).',
  },
  checkFailures: {
    merge: 'sum',
    type: 'counter',
    metric: 'switchyard_health_checks_total',
    help: 'Active health checks, by result (pass or fail).',
  },
} as const satisfies Record<string, StatDeclaration>;
