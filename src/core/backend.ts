/**
 * A backend: its servers with their health and live connection counts, the choice of a server
 * for a new connection (route hook, backup tier, retries, per-server limits, the balancer), and
 * the queue of clients waiting for a server slot.
 *
 * Its servers are the config's `servers` plus those `discover` finds in DNS (discovery.ts). A
 * discovered server that leaves the answer takes no new connection; it stays listed (weight 0)
 * while its connections finish, and goes once the last one ends.
 */
import type { Logger } from 'pino';
import type { BackendConfig, DiscoverConfig, ServerConfig } from '../config/schema.ts';
import { defaults } from '../defaults.ts';
import type { Engine, EngineSocket, SocketEvents } from '../engine/engine.ts';
import { LOCAL_ERROR_CODES } from '../errors.ts';
import { LogLimiter } from '../log-limiter.ts';
import type { BackendStats, ServerView } from '../stats.ts';
import type { TlsClientMaterial, TlsInfo } from '../tls.ts';
import { formatHostPort, type HostPort, ipFamily } from '../units.ts';
import { type BalanceContext, balance, hashString } from './balancer.ts';
import { Discovery } from './discovery.ts';
import { Dns, type Resolved } from './dns.ts';
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
  /** As configured: a static server's hostname stays a hostname here. */
  readonly address: HostPort;
  /**
   * Where connections and checks go: always an IP. For a hostname, the cached resolution
   * (host '' until it first resolves); the object is kept and changed in place.
   */
  readonly target: HostPort;
  /** Found by `discover`, not listed in `servers`. */
  readonly discovered: boolean;
  /** The resolution of a static server's hostname (null for an IP or a discovered server). */
  lookup: Discovery | null = null;
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

  constructor(config: ServerConfig, discovered = false, tls: TlsClientMaterial | null = null) {
    this.tls = namedFor(tls, config.address);
    this.name = config.name;
    this.address = config.address;
    this.discovered = discovered;
    const ip = ipFamily(config.address.host) !== 0;
    this.target = { host: ip ? config.address.host : '', port: config.address.port };
    this.up = ip; // a hostname not resolved yet takes no traffic
    this.weight = config.weight;
    this.maxConnections = config.maxConnections;
    this.backup = config.backup;
    this.sendProxy = config.sendProxy;
    this.key = hashString(config.name);
  }

  /** Whether `target` holds an address yet. */
  get resolved(): boolean {
    return this.target.host !== '';
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
  /** Resolutions (`discover`, static hostnames) that failed or came back empty. */
  dnsFailures = 0;
  private dns: Dns | null;
  private discovery: Discovery | null = null;
  /** What `discovery` asks ("dns NAME:PORT", "srv NAME"); '' without `discover`. */
  private discoveryKey = '';
  /** The last good answer of `discover`, as server configs. */
  private discovered: ServerConfig[] = [];
  /** Discovered servers that left the answer and still carry connections (draining). */
  private readonly leaving = new Set<Server>();
  /** The last answer was cut to defaults.maxDiscoveredServers (logged when that starts). */
  private capped = false;
  /** TLS material (files already read) of the configured servers that originate TLS, by name. */
  private serverTls: ReadonlyMap<string, TlsClientMaterial> = NO_TLS;

  /** `dns`: the process's resolver (createProxy's); without one, the system's on first need. */
  constructor(
    config: BackendConfig,
    engine: Engine,
    log: Logger,
    dns: Dns | null = null,
    tls: ReadonlyMap<string, TlsClientMaterial> = NO_TLS,
  ) {
    this.config = config;
    this.engine = engine;
    this.log = log;
    this.limited = new LogLimiter(log);
    this.dns = dns;
    this.update(config, tls);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * Applies a new config for this backend (reload): servers with the same name and address keep
   * their health and counts, new ones start up, removed ones stop being checked (their
   * established connections are untouched). New connections see the change at once. A
   * `discover` asking the same name keeps its servers and its schedule.
   */
  update(config: BackendConfig, tls: ReadonlyMap<string, TlsClientMaterial> = NO_TLS): void {
    this.serverTls = tls;
    this.config = config;
    this.reconcileDiscovery(config.discover);
    this.rebuild(true);
  }

  /**
   * Makes `servers` the config's plus the discovered ones: a server keeping its name and address
   * keeps its object (health, counts); a new one is made; one that went is retired. With
   * `restartChecks` (a reload) every check restarts with the current settings; otherwise (a DNS
   * answer) only the new servers' checks start.
   */
  private rebuild(restartChecks: boolean): void {
    const old = new Map<string, Server>();
    for (const s of this.leaving) old.set(s.name, s);
    for (const s of this.servers) old.set(s.name, s);
    const next: Server[] = [];
    const added = new Set<Server>();
    const take = (sc: ServerConfig, discovered: boolean) => {
      const prev = old.get(sc.name);
      if (
        prev &&
        prev.discovered === discovered &&
        prev.address.host === sc.address.host &&
        prev.address.port === sc.address.port
      ) {
        old.delete(sc.name);
        this.leaving.delete(prev);
        prev.weight = sc.weight;
        prev.maxConnections = sc.maxConnections;
        prev.backup = sc.backup;
        prev.tls = discovered ? null : namedFor(this.serverTls.get(sc.name) ?? null, sc.address);
        prev.sendProxy = sc.sendProxy;
        next.push(prev);
        return;
      }
      const server = new Server(
        sc,
        discovered,
        discovered ? null : (this.serverTls.get(sc.name) ?? null),
      );
      next.push(server);
      added.add(server);
    };
    for (const sc of this.config.servers) take(sc, false);
    const listed = new Set(this.config.servers.map((sc) => sc.name));
    for (const sc of this.discovered) if (!listed.has(sc.name)) take(sc, true);
    this.servers = next;
    for (const gone of old.values()) this.retire(gone);
    const table = this.table;
    table.current = next.map(() => 0);
    table.eligible = next.map(() => false);
    table.active = next.map((s) => s.active);
    table.weights = next.map((s) => s.weight);
    table.keys = next.map((s) => s.key);
    for (const server of next) {
      const isNew = added.has(server);
      if (isNew && !server.resolved) this.startLookup(server);
      // A server that joins from DNS with checks comes up when they rise; its first probe is now.
      if (isNew && server.discovered && this.config.healthCheck) server.up = false;
      if (restartChecks || isNew) this.startCheck(server, isNew && server.discovered);
    }
    this.drainQueue();
  }

  /** A server that left the config or the DNS answer: no more checks; a discovered one drains. */
  private retire(server: Server): void {
    this.stopCheck(server);
    server.lookup?.stop();
    server.lookup = null;
    if (server.discovered && server.active > 0) {
      server.weight = 0; // listed as drained until its last connection ends (release)
      this.leaving.add(server);
    } else {
      this.leaving.delete(server);
    }
  }

  /** Starts (or restarts, with the current settings) the active health check of `server`. */
  private startCheck(server: Server, now: boolean): void {
    this.stopCheck(server);
    if (!server.resolved) return; // a hostname not resolved yet: checked once it is
    if (this.config.healthCheck) {
      server.check = new HealthCheck(
        this.engine,
        server.target,
        server.tls,
        this.config.healthCheck,
        (ok, detail) => this.checked(server, ok, detail),
        server.sendProxy === undefined ? null : healthCheckHeader(server.sendProxy),
      );
      server.check.start(now);
    } else {
      server.up = true; // without checks every server counts as up
    }
  }

  // ─── Names: discovery, and static servers given by hostname ───

  private resolver(): Dns {
    this.dns ??= new Dns();
    return this.dns;
  }

  /** Starts, keeps or replaces the `discover` resolution (a reload may change it). */
  private reconcileDiscovery(d: DiscoverConfig | undefined): void {
    const key =
      d === undefined ? '' : d.dns !== undefined ? `dns ${d.dns}:${d.port}` : `srv ${d.srv}`;
    if (key === this.discoveryKey) {
      if (this.discovery && d) this.discovery.everyMs = d.every;
      return;
    }
    this.discovery?.stop();
    this.discovery = null;
    this.discoveryKey = key;
    this.discovered = []; // another name: the old answer no longer holds (its servers drain)
    this.capped = false;
    if (d === undefined) return;
    const dns = this.resolver();
    const query =
      d.dns !== undefined
        ? () => dns.addresses(d.dns as string, d.port as number)
        : () => dns.srv(d.srv as string, defaults.maxDiscoveredServers);
    this.discovery = new Discovery({
      query,
      everyMs: d.every,
      answer: (addresses) => this.discoveredAnswer(addresses),
      failed: () => this.dnsFailures++,
      log: this.log,
      backend: this.name,
      what: (d.dns ?? d.srv) as string,
    });
    this.discovery.start();
  }

  /**
   * A good `discover` answer: servers named ADDRESS:PORT, at most defaults.maxDiscoveredServers
   * of them (the regular ones first, then in address order: every replica keeps the same ones).
   */
  private discoveredAnswer(addresses: Resolved[]): void {
    const byName = new Map<string, ServerConfig>();
    for (const a of addresses) {
      const name = formatHostPort(a.host, a.port);
      const have = byName.get(name);
      // The same address twice (two SRV records): the preferred priority, the larger weight.
      if (have && (have.backup < a.backup || (have.backup === a.backup && have.weight >= a.weight)))
        continue;
      byName.set(name, {
        name,
        address: { host: a.host, port: a.port },
        weight: a.weight,
        maxConnections: defaults.serverMaxConnections,
        backup: a.backup,
      });
    }
    const all = [...byName.values()].sort(
      (x, y) =>
        Number(x.backup) - Number(y.backup) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0),
    );
    const max = defaults.maxDiscoveredServers;
    if (all.length > max && !this.capped) {
      this.log.warn(
        { backend: this.name, answer: all.length, kept: max },
        `DNS gave backend ${this.name} ${all.length} servers; only the first ${max} are used`,
      );
    }
    this.capped = all.length > max;
    const next = all.slice(0, max);
    const before = new Map(this.discovered.map((sc) => [sc.name, sc]));
    const same =
      next.length === before.size &&
      next.every((sc) => {
        const b = before.get(sc.name);
        return b !== undefined && b.weight === sc.weight && b.backup === sc.backup;
      });
    if (same) return;
    const joined = next.filter((sc) => !before.has(sc.name)).map((sc) => sc.name);
    const kept = new Set(next.map((sc) => sc.name));
    const left = [...before.keys()].filter((name) => !kept.has(name));
    this.discovered = next;
    this.rebuild(false);
    this.log.info(
      { backend: this.name, joined, left, servers: next.length },
      `backend ${this.name}: ${joined.length} servers joined, ${left.length} left (DNS)`,
    );
  }

  /** Resolves a static server's hostname now and then (no lookup per connection). */
  private startLookup(server: Server): void {
    const dns = this.resolver();
    const { host, port } = server.address;
    server.lookup = new Discovery({
      query: () => dns.lookup(host, port),
      everyMs: defaults.dnsEveryMs,
      answer: (addresses) => this.hostResolved(server, addresses),
      failed: () => this.dnsFailures++,
      log: this.log,
      backend: this.name,
      what: host,
    });
    server.lookup.start();
  }

  /** A static server's hostname resolved: it keeps its address while that is in the answer. */
  private hostResolved(server: Server, addresses: Resolved[]): void {
    const first = addresses[0];
    if (first === undefined || addresses.some((a) => a.host === server.target.host)) return;
    const wasResolved = server.resolved;
    server.target.host = first.host;
    this.log.info(
      { backend: this.name, server: server.name, address: first.host },
      `server ${server.name} (${server.address.host}) resolved to ${first.host}`,
    );
    if (wasResolved || !this.servers.includes(server)) return;
    server.up = true; // as every static server starts
    this.startCheck(server, false);
    this.drainQueue();
  }

  private stopCheck(server: Server): void {
    server.check?.stop();
    server.check = null;
  }

  /** Stops every health check and resolution; the backend takes no more connections. */
  stop(): void {
    this.discovery?.stop();
    this.discovery = null;
    this.discoveryKey = '';
    for (const server of [...this.servers, ...this.leaving]) {
      this.stopCheck(server);
      server.lookup?.stop();
      server.lookup = null;
    }
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
      host: server.target.host,
      port: server.target.port,
      events,
      ...(tls !== null ? { tls } : {}),
    });
  }

  /** A connection to `server` ended (or its connect failed): its slot frees. */
  release(server: Server): void {
    server.active--;
    // A server that left the DNS answer goes from the lists with its last connection.
    if (server.active === 0) this.leaving.delete(server);
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
      dnsFailures: this.dnsFailures,
      servers: [...this.servers, ...this.leaving].map((s) => ({
        ...s.view(),
        connections: s.connections,
        failures: s.failures,
        checks: s.checks,
        checkFailures: s.checkFailures,
      })),
    };
  }
}

/**
 * The engine connects to the resolved address, so a server given by hostname verifies (and sends
 * SNI) as that hostname unless `servername` says otherwise.
 */
function namedFor(tls: TlsClientMaterial | null, address: HostPort): TlsClientMaterial | null {
  if (tls === null || tls.servername !== null || ipFamily(address.host) !== 0) return tls;
  return { ...tls, servername: address.host };
}
