/**
 * Every default switchyard uses, in one place. Units are in the names or the comments;
 * each says what 0 means. Nothing else in the tree may hard-code one of these numbers.
 */
export const defaults = {
  /** Simultaneous client connections per listener. At the cap a new client is closed at once. 0 is not allowed (limits.maxConnections). */
  maxConnections: 1024,
  /** Bytes per pool buffer, and the largest single read. 0 is not allowed (limits.bufferSize). */
  bufferSize: 16 * 1024,
  /** Milliseconds to wait for the backend connect. 0 disables the connect timeout (the kernel's own, about 2 min, applies). */
  connectTimeoutMs: 5_000,
  /** Milliseconds without a byte in either direction before the pair is closed. 0 disables it. */
  idleTimeoutMs: 60 * 60 * 1000,
  /**
   * Milliseconds a half-closed pair (one side sent FIN) may stay silent before it is closed.
   * 0 disables this timeout only: the idle timeout still applies to a half-closed pair.
   */
  halfClosedTimeoutMs: 30_000,
  /**
   * Pending connections the kernel queues on a listener (listen(2) backlog), at least: a frontend
   * asks for its maxConnections when that is larger, as HAProxy does, and the kernel caps the
   * request at net.core.somaxconn (4096 here). At 511, 2,000 clients connecting at once
   * overflowed the queue and their retried SYNs added a second to the p99 (bench, 2026-11-27).
   * The Bun engine cannot set it: Bun.listen takes no backlog (uSockets listens with 512).
   */
  backlog: 511,
  /** Log level: trace, debug, info, warn, error, fatal or silent. */
  logLevel: 'info',
  /**
   * Milliseconds between ticks of the coarse timer every timeout shares. Timeouts fire up to one
   * tick late. Chosen so a 5 s connect timeout is accurate to 2%, and idle CPU stays negligible.
   */
  timerTickMs: 100,

  // ─── Load balancing (config file and library API) ───

  /** How a backend picks a server: roundrobin, leastconn, source or random. */
  balance: 'roundrobin',
  /** Relative share of new connections a server gets. 0 means the server takes no new connections (drained). */
  weight: 1,
  /** Simultaneous connections per server; excess clients wait in the backend's queue. 0 = unlimited. */
  serverMaxConnections: 0,
  /** Further servers tried after a failed connect (refused, reset or timed out). 0 = no retry. */
  retries: 2,
  /** Milliseconds a client may wait in a backend's queue for a server slot. 0 = wait without limit. */
  queueTimeoutMs: 5_000,
  /** Clients that may wait in one backend's queue; one more is closed at once. 0 = no queue (a full server set closes the client at once). */
  maxQueued: 1024,
  /** Milliseconds between active health checks of one server. 0 is not allowed (leave `healthCheck` out instead). */
  healthCheckIntervalMs: 2_000,
  /** Milliseconds a health check may take (connect, and the `expect` reply). 0 = the interval. */
  healthCheckTimeoutMs: 1_000,
  /** Passed checks in a row that bring a down server up. 0 is not allowed. */
  healthCheckRise: 2,
  /** Failed checks (or failed real-traffic connects) in a row that take an up server down. 0 is not allowed. */
  healthCheckFall: 3,

  // ─── Client identity and admission (PROXY protocol, allow/deny, limits) ───

  /** Milliseconds a client of a `proxyProtocol` frontend has to send its whole header, from accept. 0 is not allowed. */
  proxyProtocolTimeoutMs: 3_000,
  /** Header versions a `proxyProtocol` frontend takes: v1, v2 or any. */
  proxyProtocolAccept: 'any',
  /**
   * Largest PROXY header taken, in bytes (v2 with its TLVs; a v1 line is at most 107). A longer
   * one is refused as soon as its length field is read. Never more than `bufferSize`: the header
   * is read into one pool buffer.
   */
  proxyHeaderMaxBytes: 4_096,
  /**
   * Client addresses whose per-source state (open connections, rate bucket) one frontend keeps.
   * At the cap, the least recently seen address with no open connection is forgotten (its rate
   * bucket starts full if it comes back); an address with open connections is never forgotten,
   * and the cap is raised to the frontend's maxConnections when that is larger, so one always
   * can be. 0 is not allowed.
   */
  sourceTableMax: 65_536,
  /** Milliseconds between sweeps that forget addresses with no open connection and a full bucket. */
  sourceSweepMs: 10_000,
  /** Simultaneous connections per client address (`limits.perSourceConnections`). 0 = no limit. */
  perSourceConnections: 0,
  /** Milliseconds a connection may stay open (`limits.maxLifetime`). 0 = no limit. */
  maxLifetimeMs: 0,
  // ─── Service discovery (DNS) ───

  /**
   * Milliseconds between resolutions of a `discover` name, and of a static server's hostname.
   * A record whose TTL is shorter is asked again sooner (not sooner than dnsMinIntervalMs).
   * 0 is not allowed (limits.discoverEveryMs).
   */
  dnsEveryMs: 5_000,
  /** Floor of the re-resolution interval when a record's TTL is shorter (TTL 0 included), in ms. */
  dnsMinIntervalMs: 1_000,
  /**
   * Milliseconds a DNS query waits for an answer before it is sent again (c-ares' `timeout`,
   * which doubles on each try). 0 is not allowed.
   */
  dnsTimeoutMs: 1_000,
  /** Tries of each DNS query per nameserver before the resolution counts as failed. 0 is not allowed. */
  dnsTries: 2,
  /**
   * Most discovered servers per backend: a larger answer keeps the first ones in address order
   * (the same subset in every replica) and logs a warning. Each server costs a health check and
   * its share of the balancer's table.
   */
  maxDiscoveredServers: 256,

  // ─── Process lifecycle (workers, drain, reload) ───

  /** Worker processes sharing the listeners (SO_REUSEPORT). 1 = no workers: the proxy runs in the process started. 0 is not allowed (limits.workers). */
  workers: 1,
  /** Milliseconds SIGTERM/SIGINT lets open connections finish before the rest are closed. 0 = close them at once. */
  drainTimeoutMs: 30_000,
  /** Milliseconds between checks of the open-connection count while draining. 0 is not allowed. */
  drainPollMs: 50,
  /** Milliseconds before the first restart of a dead worker; doubles per death in a row. 0 = restart at once (still doubling from 1 ms). */
  restartBackoffMs: 100,
  /** Largest restart delay, in milliseconds. */
  restartBackoffMaxMs: 10_000,
  /** Milliseconds a worker must stay up for its restart delay to start again from restartBackoffMs. */
  restartResetMs: 10_000,
  /** Milliseconds between a worker's stats reports to the supervisor. 0 = only on request. */
  workerReportMs: 1_000,

  // ─── Config input (a wrong --config path must not hang, crash or leak the file) ───

  /** Largest config file read, in bytes; a larger one (or /dev/zero) is a config error. */
  configMaxBytes: 4 * 1024 * 1024,
  /** YAML alias expansions allowed (the `yaml` library's maxAliasCount); more is a config error ("billion laughs"). 0 = no aliases. */
  configMaxAliasCount: 100,
  /** Config problems listed; the rest are counted in one `and N more problems` line. */
  configMaxProblems: 20,
  /** Characters of a key or value echoed in a config problem; longer ones end in `…`. */
  configMaxEcho: 40,

  // ─── Observability (admin server, access log) ───

  /** Host the admin server binds when given only a port (`--admin 9100`). The admin server itself is off unless configured. */
  adminHost: '127.0.0.1',
  /**
   * Simultaneous connections to the admin server; when all are taken, the one idle the longest
   * is closed for a new one (the new one only when all are answering). Small on purpose: its
   * clients are scrapers and an operator's browser, and every one is a descriptor the proxy's
   * clients cannot have. 0 is not allowed.
   */
  adminMaxConnections: 64,
  /** Milliseconds a new admin connection may take to send its first whole request headers. 0 is not allowed. */
  adminHeadersTimeoutMs: 10_000,
  /** Milliseconds one admin request may take, its answer included. 0 is not allowed. */
  adminRequestTimeoutMs: 30_000,
  /** Milliseconds an idle keep-alive admin connection stays open after a response. 0 is not allowed. */
  adminKeepAliveTimeoutMs: 5_000,
  /** Rows of `/api/connections` in one page when `?limit=` is not given. */
  adminPageLimit: 500,
  /** Largest `?limit=` of `/api/connections`: a page is serialised on the data path's thread. */
  adminPageLimitMax: 5_000,
  /** Access log target: a file path, `stdout`, or `off` (no access log). */
  accessLog: 'off',

  // ─── TLS ───

  /** Oldest TLS version a terminating frontend accepts (`TLSv1.2` or `TLSv1.3`). */
  tlsMinVersion: 'TLSv1.2',
  /**
   * Milliseconds a client may take to complete the TLS handshake (termination), or to send its
   * whole ClientHello (SNI routing). 0 disables it (the idle timeout does not apply before).
   */
  tlsHandshakeTimeoutMs: 5_000,
  /** A certificate expiring within this many days is a warning at start and on reload. */
  tlsExpiryWarnDays: 14,
  /**
   * Largest ClientHello read for SNI routing, in bytes; a longer one closes the client
   * (`client_hello`). Never more than `bufferSize`: it is read into one pool buffer, which then
   * goes to the server as the connection's first write.
   */
  clientHelloMaxBytes: 16 * 1024,
} as const;

/**
 * The bounds of every number a user sets, checked by the config schema and the command line
 * alike (through src/units.ts: rangeProblem, parseWhole, durationProblem). `min`/`max` inclusive.
 */
export const limits = {
  /**
   * Largest duration of any timeout or interval, in milliseconds: 2^31-1 (about 24.8 days).
   * The runtimes' timers keep a 32-bit delay; a longer one fires at once (after a warning).
   */
  maxDurationMs: 2 ** 31 - 1,
  /**
   * Clients per listener (`frontends[].maxConnections`, `--max-connections`). 0 is not allowed:
   * a listener that takes no one. Each client costs two descriptors, so above about 500,000
   * the kernel's own ceiling (fs.nr_open, 1,048,576 by default) binds first.
   */
  maxConnections: { min: 1, max: 1_000_000 },
  /** Connections per server (`servers[].maxConnections`); 0 = unlimited. */
  serverMaxConnections: { min: 0, max: 1_000_000 },
  /** Bytes per pool buffer (`bufferSize`, `--buffer-size`): 1 KiB to 16 MiB. */
  bufferSize: { min: 1024, max: 16 * 1024 * 1024 },
  /**
   * Processes (`--workers`, and what `auto` is clamped to). 1 = no workers; 0 is not allowed.
   * 256: beyond any machine's useful parallelism for one port, and each worker holds every
   * listener and a share of the descriptors.
   */
  workers: { min: 1, max: 256 },
  /** Relative share of a server (`servers[].weight`); 0 = drained. */
  weight: { min: 0, max: 1000 },
  /** Further servers tried after a failed connect (`backends[].retries`). */
  retries: { min: 0, max: 100 },
  /** Simultaneous connections per client address (`limits.perSourceConnections`); 0 = no limit. */
  perSourceConnections: { min: 0, max: 1_000_000 },
  /** New connections per second of a rate (`limits.perSourceRate`, `limits.acceptRate`). */
  ratePerSecond: { min: 0.001, max: 10_000_000 },
  /** `discover.every`, in ms: at least dnsMinIntervalMs, so DNS is never asked in a loop. */
  discoverEveryMs: { min: 1_000, max: 2 ** 31 - 1 },
} as const;

/** Pool buffers a proxy may hold at once: one pending write per direction per connection. */
export function poolCapacity(maxConnections: number): number {
  return maxConnections * 2;
}
