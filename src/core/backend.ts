/**
 * A backend: its servers with their health and live connection counts, the choice of a server
 * for a new connection (route hook, backup tier, retries, per-server limits, the balancer), and
 * the queue of clients waiting for a server slot.
 */
import type { Logger } from 'pino';
import type { BackendConfig, ServerConfig } from '../config/schema.ts';
import type { Engine, EngineSocket, SocketEvents } from '../engine/engine.ts';
import { LOCAL_ERROR_CODES } from '../errors.ts';
import { LogLimiter } from '../log-limiter.ts';
import type { BackendStats, ServerView } from '../stats.ts';
import type { TlsClientMaterial, TlsInfo } from '../tls.ts';
import { formatHostPort, type HostPort } from '../units.ts';
import { type BalanceContext, balance, hashString } from './balancer.ts';
import { HealthCheck } from './health-check.ts';
import { healthCheckHeader, type ProxyHeader, type ProxySend } from './proxy-protocol.ts';

/** The facts of one new connection, for a route hook. */
export interface RouteInfo {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly frontend: string;
  readonly backend: string;
  readonly servers: readonly ServerView[];
  /** The client's TLS (terminated here): SNI, ALPN, version, cipher; null: plain TCP. */
  readonly tls: TlsInfo | null;
  /**
   * The server name the client asked for: read from its ClientHello on an `sni` frontend (the
   * TLS is not terminated: `tls` is null), from its handshake on a `tls` one; null without one.
   */
  readonly sni: string | null;
  /**
   * The PROXY header the client sent, when its frontend takes one: its TLVs (ALPN, authority,
   * unique ID, SSL) and the addresses it named. `clientAddress` is already its source.
   */
  readonly proxyHeader?: ProxyHeader;
}

/**
 * Picks a server by name for a new connection, or undefined to let the balancer pick. A name
 * that is unknown, down, full or already tried for this connection also falls back to the balancer.
 */
export type RouteHook = (info: RouteInfo) => string | undefined;

/** What a backend needs to know about the connection it chooses for. */
export interface Chooser {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly frontend: string;
  readonly route: RouteHook | undefined;
  readonly tls: TlsInfo | null;
  /** The server name the client asked for (ClientHello or handshake), or null. */
  readonly sni: string | null;
  /** Servers already tried for this connection (a retry prefers the others). */
  readonly tried: readonly Server[];
  /** The client's PROXY header, or null. */
  readonly header: ProxyHeader | null;
}

/** A waiting client, woken when a server slot frees (or when no server is left). */
export interface Waiter extends Chooser {
  /** A server to connect to, or null when no server is up any more. */
  dequeued(server: Server | null): void;
}

/** Servers of a backend that originate TLS, by server name: none. */
const NO_TLS: ReadonlyMap<string, TlsClientMaterial> = new Map();

/** `choose` found servers up but every one at its limit: the client should wait. */
export const FULL = 'full';

/** One server: its config, health and counters. */
export class Server {
  readonly name: string;
  readonly address: HostPort;
  weight: number;
  maxConnections: number;
  backup: boolean;
  /** A PROXY header goes before the first byte to this server (and its health checks). */
  sendProxy: ProxySend | undefined;
  /** Stable hash of the name: `source` hashing keys on it, so a client follows the server. */
  readonly key: number;
  up = true;
  active = 0;
  connections = 0;
  failures = 0;
  checks = 0;
  checkFailures = 0;
  /** Passed / failed checks in a row (passive evidence counts as a failed check). */
  passes = 0;
  fails = 0;
  check: HealthCheck | null = null;
  /** Originate TLS to it (files already read); null: plain TCP. A reload may replace it. */
  tls: TlsClientMaterial | null;

  constructor(config: ServerConfig, tls: TlsClientMaterial | null = null) {
    this.tls = tls;
    this.name = config.name;
    this.address = config.address;
    this.weight = config.weight;
    this.maxConnections = config.maxConnections;
    this.backup = config.backup;
    this.sendProxy = config.sendProxy;
    this.key = hashString(config.name);
  }

  get hasSlot(): boolean {
    return this.maxConnections === 0 || this.active < this.maxConnections;
  }

  view(): ServerView {
    return {
      name: this.name,
      address: formatHostPort(this.address.host, this.address.port),
      up: this.up,
      backup: this.backup,
      weight: this.weight,
      active: this.active,
      maxConnections: this.maxConnections,
    };
  }
}

export class Backend {
  config: BackendConfig;
  servers: Server[] = [];
  readonly engine: Engine;
  readonly log: Logger;
  // The balancer's table, one entry per server, refilled on each choice: nothing is allocated
  // per connection. `current` is smooth round-robin's running weights.
  private readonly table: { -readonly [K in keyof BalanceContext]: BalanceContext[K] } = {
    eligible: [],
    weights: [],
    active: [],
    keys: [],
    current: [],
    clientHash: 0,
    random: Math.random,
  };
  private readonly queue: Waiter[] = [];
  private draining = false;
  queueTimeouts = 0;
  queueFull = 0;
  /** Connects and checks that failed in this process (LOCAL_ERROR_CODES), not at a server. */
  localErrors = 0;
  /** The log, rate-limited per kind of line (route hook throws, local errors). */
  private readonly limited: LogLimiter;

  constructor(
    config: BackendConfig,
    engine: Engine,
    log: Logger,
    tls: ReadonlyMap<string, TlsClientMaterial> = NO_TLS,
  ) {
    this.config = config;
    this.engine = engine;
    this.log = log;
    this.limited = new LogLimiter(log);
    this.update(config, tls);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * Applies a new config for this backend (reload): servers with the same name and address keep
   * their health and counts, new ones start up, removed ones stop being checked (their
   * established connections are untouched). New connections see the change at once.
   */
  update(config: BackendConfig, tls: ReadonlyMap<string, TlsClientMaterial> = NO_TLS): void {
    const old = new Map(this.servers.map((s) => [s.name, s]));
    this.config = config;
    this.servers = config.servers.map((sc) => {
      const prev = old.get(sc.name);
      if (prev && prev.address.host === sc.address.host && prev.address.port === sc.address.port) {
        old.delete(sc.name);
        prev.weight = sc.weight;
        prev.maxConnections = sc.maxConnections;
        prev.backup = sc.backup;
        prev.tls = tls.get(sc.name) ?? null;
        prev.sendProxy = sc.sendProxy;
        return prev;
      }
      return new Server(sc, tls.get(sc.name) ?? null);
    });
    for (const gone of old.values()) this.stopCheck(gone);
    const table = this.table;
    table.current = this.servers.map(() => 0);
    table.eligible = this.servers.map(() => false);
    table.active = this.servers.map((s) => s.active);
    table.weights = this.servers.map((s) => s.weight);
    table.keys = this.servers.map((s) => s.key);
    this.startChecks();
    this.drainQueue();
  }

  /** Starts (or restarts, with the current settings) the active health checks. */
  private startChecks(): void {
    for (const server of this.servers) {
      this.stopCheck(server);
      if (this.config.healthCheck) {
        server.check = new HealthCheck(
          this.engine,
          server.address,
          server.tls,
          this.config.healthCheck,
          (ok, detail) => this.checked(server, ok, detail),
          server.sendProxy === undefined ? null : healthCheckHeader(server.sendProxy),
        );
        server.check.start();
      } else {
        server.up = true; // without checks every server counts as up
      }
    }
  }

  private stopCheck(server: Server): void {
    server.check?.stop();
    server.check = null;
  }

  /** Stops every health check; the backend takes no more connections. */
  stop(): void {
    for (const server of this.servers) this.stopCheck(server);
    for (const waiter of this.queue.splice(0)) waiter.dequeued(null);
  }

  // ─── Choosing a server ───

  /**
   * The server for a new connection: the route hook's pick if it is usable, else the balancer's
   * among the regular servers that are up (the backup servers when none is). A retry prefers
   * servers not tried yet. Returns FULL when servers are up but all at their limit, null when
   * none is up.
   */
  choose(c: Chooser): Server | typeof FULL | null {
    const servers = this.servers;
    const tried = c.tried;
    let backupTier = true;
    for (const s of servers) if (s.up && !s.backup && s.weight > 0) backupTier = false;
    let candidates = 0;
    let untried = 0;
    for (const s of servers) {
      if (!s.up || s.weight <= 0 || s.backup !== backupTier) continue;
      candidates++;
      if (!tried.includes(s)) untried++;
    }
    if (candidates === 0) return null;
    if (c.route) {
      const name = this.askRoute(c.route, c);
      const picked = name === undefined ? undefined : servers.find((s) => s.name === name);
      if (picked?.up && picked.hasSlot && !tried.includes(picked)) return picked;
    }
    // A retry prefers servers not tried yet; when every one has been, any may be tried again.
    const skipTried = untried > 0;
    const table = this.table;
    const eligible = table.eligible as boolean[];
    const active = table.active as number[];
    let any = false;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i] as Server;
      const ok =
        s.up &&
        s.weight > 0 &&
        s.backup === backupTier &&
        s.hasSlot &&
        !(skipTried && tried.includes(s));
      eligible[i] = ok;
      active[i] = s.active;
      any ||= ok;
    }
    if (!any) return FULL;
    const algorithm = this.config.balance;
    table.clientHash = algorithm === 'source' ? hashString(c.clientAddress) : 0;
    return servers[balance(algorithm, table)] ?? null;
  }

  /** Calls the user's hook; a throw is logged and the balancer picks (one connection's problem). */
  private askRoute(route: RouteHook, c: Chooser): string | undefined {
    try {
      return route(this.routeInfo(c));
    } catch (err) {
      this.limited.write(
        'error',
        'route_hook',
        { backend: this.name, err: (err as Error)?.message },
        'route hook threw',
      );
      return undefined;
    }
  }

  private routeInfo(c: Chooser): RouteInfo {
    return {
      clientAddress: c.clientAddress,
      clientPort: c.clientPort,
      localAddress: c.localAddress,
      localPort: c.localPort,
      frontend: c.frontend,
      backend: this.name,
      tls: c.tls,
      sni: c.sni,
      servers: this.servers.map((s) => s.view()),
      ...(c.header !== null ? { proxyHeader: c.header } : {}),
    };
  }

  /** Opens a connection to `server`; it counts as active until `release`. */
  connect(server: Server, events: SocketEvents): EngineSocket {
    server.active++;
    server.connections++;
    const tls = server.tls;
    return this.engine.connect({
      host: server.address.host,
      port: server.address.port,
      events,
      ...(tls !== null ? { tls } : {}),
    });
  }

  /** A connection to `server` ended (or its connect failed): its slot frees. */
  release(server: Server): void {
    server.active--;
    this.drainQueue();
  }

  /** A real connection reached `server`: passive evidence that it works. */
  connectSucceeded(server: Server): void {
    server.fails = 0;
  }

  /**
   * A real connection to `server` failed to connect: passive evidence, counted like a failed
   * check — unless the failure was this process's own (EMFILE, ...): then it is a local error.
   */
  connectFailed(server: Server, code: string): void {
    if (LOCAL_ERROR_CODES.has(code)) {
      this.localError(server, code);
      this.release(server);
      return;
    }
    server.failures++;
    if (server.tls !== null && !/^E[A-Z]+$/.test(code)) {
      // Not a socket errno: the TLS handshake or the server's certificate failed. Said once per
      // window and reason: a misconfigured CA fails every connection.
      this.limited.write(
        'warn',
        `tls:${code}`,
        { backend: this.name, server: server.name, code },
        `TLS to server ${server.name} failed: ${code}`,
      );
    }
    // Without active checks nothing would bring the server back: only checks mark servers down.
    if (server.check) this.observe(server, false, `connect failed (${code})`);
    this.release(server);
  }

  /**
   * Counts a failure of this process (out of descriptors, memory, ports) met while connecting to
   * `server`: never evidence against the server. Logged through the limiter (a shortage comes in
   * floods).
   */
  private localError(server: Server, code: string): void {
    this.localErrors++;
    this.limited.write(
      'error',
      'local_error',
      { backend: this.name, server: server.name, code, localErrors: this.localErrors },
      `switchyard cannot open connections (${code}); server ${server.name} is not blamed`,
    );
  }

  /** One active check's verdict: counted, then applied as evidence. */
  private checked(server: Server, ok: boolean | 'local', detail: string): void {
    if (ok === 'local') {
      this.localError(server, detail);
      return;
    }
    server.checks++;
    if (!ok) server.checkFailures++;
    this.observe(server, ok, detail);
  }

  /** Records one check result (or passive evidence); moves the server up or down on rise / fall. */
  observe(server: Server, ok: boolean, detail: string): void {
    const hc = this.config.healthCheck;
    if (!hc || !this.servers.includes(server)) return;
    if (ok) {
      server.fails = 0;
      server.passes++;
      if (!server.up && server.passes >= hc.rise) {
        server.up = true;
        this.log.warn({ backend: this.name, server: server.name }, `server ${server.name} is up`);
        this.drainQueue();
      }
    } else {
      server.passes = 0;
      server.fails++;
      if (server.up && server.fails >= hc.fall) {
        server.up = false;
        this.log.warn(
          { backend: this.name, server: server.name, detail },
          `server ${server.name} is down: ${detail}`,
        );
        if (!this.servers.some((s) => s.up && s.weight > 0)) this.drainQueue();
      }
    }
  }

  // ─── The queue: clients waiting for a server slot ───

  /** Adds a waiting client; false when the queue is full (the client should be closed). */
  enqueue(waiter: Waiter): boolean {
    if (this.queue.length >= this.config.maxQueued) {
      this.queueFull++;
      return false;
    }
    this.queue.push(waiter);
    return true;
  }

  /** Takes a client out of the queue (it left, or its queue timeout passed). */
  dequeue(waiter: Waiter, timedOut: boolean): void {
    const i = this.queue.indexOf(waiter);
    if (i >= 0) this.queue.splice(i, 1);
    if (timedOut) this.queueTimeouts++;
  }

  /** Hands freed slots to waiting clients, first come first served. */
  private drainQueue(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const waiter = this.queue[0] as Waiter;
        const choice = this.choose(waiter);
        if (choice === FULL) break;
        this.queue.shift();
        waiter.dequeued(choice);
      }
    } finally {
      this.draining = false;
    }
  }

  stats(): BackendStats {
    return {
      name: this.name,
      balance: this.config.balance,
      queued: this.queue.length,
      queueTimeouts: this.queueTimeouts,
      queueFull: this.queueFull,
      localErrors: this.localErrors,
      servers: this.servers.map((s) => ({
        ...s.view(),
        connections: s.connections,
        failures: s.failures,
        checks: s.checks,
        checkFailures: s.checkFailures,
      })),
    };
  }
}
