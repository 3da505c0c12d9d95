/**
 * The library API: `createProxy(config)` starts every frontend of a config (the same shape as the
 * YAML file) and returns a handle to stop it, reload it, and read its stats.
 */
import type { Logger } from 'pino';
import type { Config, ConfigInput, FrontendConfig } from './config/schema.ts';
import type { TlsFiles } from './config/tls-files.ts';
import { countersOf, sumStats } from './core/aggregate.ts';
import { Backend, type RouteHook } from './core/backend.ts';
import { Dns } from './core/dns.ts';
import { waitForIdle } from './core/drain.ts';
import { type ConnectionLog, ProxyServer, type SniRouting } from './core/proxy.ts';
import { defaults } from './defaults.ts';
import type { Engine } from './engine/engine.ts';
import { createEngine, runtimeEngineName } from './engine/select.ts';
import { createLogger } from './log.ts';
import { type AccessLog, openAccessLog } from './observability/access-log.ts';
import { type ConnectionRow, entryOf, type SwitchyardStats, setEntry } from './stats.ts';
import type { TlsClientMaterial } from './tls.ts';
import { formatHostPort, type HostPort } from './units.ts';

export interface CreateProxyOptions {
  /** The socket engine; default: a new one for this runtime. */
  engine?: Engine;
  /** Default: JSON lines on stderr at level info. */
  log?: Logger;
  /** Picks the server of each new connection from its facts; see RouteHook. */
  route?: RouteHook;
  /** Throw on an illegal state move instead of counting it (tests turn this on). */
  strictStates?: boolean;
  /** Told of every finished connection (an AccessLog); none by default. */
  connectionLog?: ConnectionLog;
  /** Bind with SO_REUSEPORT, so worker processes share each frontend's port. */
  reusePort?: boolean;
  /**
   * The read size `engine` was made with (the largest chunk one read delivers); every pool buffer
   * gets this size. Default: read off the engine, else the config's bufferSize.
   */
  readSize?: number;
}

export type {
  BackendStats,
  ConnectionRow,
  ProxyStats,
  ServerStats,
  ServerView,
  SwitchyardStats,
} from './stats.ts';

/** A running proxy. */
export interface ProxyHandle {
  /** Bound address of each frontend, by name (the real port when 0 was asked). */
  addresses(): Record<string, HostPort>;
  stats(): SwitchyardStats;
  /** Every live connection, with the frontend it came in on. */
  connections(): ConnectionRow[];
  /** Closes one live connection by id; false when none has that id. */
  closeConnection(id: number): boolean;
  /**
   * Applies a new config: backends and servers change for new connections at once, new
   * frontends start, removed ones stop accepting (or move, when their listen address changed).
   * Established connections are untouched. A frontend's maxConnections and the timeouts apply
   * to frontends started by this reload only. Throws ConfigError, changing nothing, on a bad one.
   */
  reload(config: ConfigInput | Config): Promise<void>;
  /** Stops every frontend and health check; with `killConnections`, closes live pairs too. */
  close(killConnections?: boolean): Promise<void>;
  /**
   * Stops accepting at once, lets open connections finish for up to `deadlineMs` (0 = none),
   * then closes the rest and everything else (as close(true)). Resolves when all is closed.
   */
  drain(deadlineMs: number): Promise<void>;
}

/** Validates `config` (throws ConfigError listing every problem) and starts it. */
export async function createProxy(
  config: ConfigInput | Config,
  options: CreateProxyOptions = {},
): Promise<ProxyHandle> {
  return startValidated(await validate(config), options);
}

/** The schema library is loaded on first use only, so the plain CLI starts fast. */
async function validate(config: ConfigInput | Config): Promise<Config> {
  const { parseConfig } = await import('./config/load.ts');
  return parseConfig(config);
}

/** Starts a config that has been validated already (the CLI's). */
export async function startValidated(
  valid: Config,
  options: CreateProxyOptions = {},
): Promise<ProxyHandle> {
  const engine =
    options.engine ?? (await createEngine(runtimeEngineName(), { readSize: valid.bufferSize }));
  const readSize = options.engine
    ? (options.readSize ?? readSizeOf(options.engine) ?? valid.bufferSize)
    : valid.bufferSize;
  const proxy = new Switchyard(engine, readSize, options.log ?? createLogger('info'), options);
  // The config's access log, unless the caller brought its own; flushed and closed by close().
  if (!options.connectionLog) proxy.accessLog = openAccessLog(valid.accessLog, options.log);
  try {
    await proxy.apply(valid);
  } catch (err) {
    await proxy.close(true); // a frontend failed to bind: stop the ones already listening
    throw err;
  }
  return proxy;
}

/**
 * The read size of an engine made elsewhere. The Engine interface does not expose it (yet), so
 * it is read off the two engines: Bun's `readSize`, Node's shared `readBuffer`.
 */
function readSizeOf(engine: Engine): number | undefined {
  const e = engine as { readSize?: unknown; readBuffer?: { length?: unknown } };
  if (typeof e.readSize === 'number') return e.readSize;
  if (typeof e.readBuffer?.length === 'number') return e.readBuffer.length;
  return undefined;
}

/** A running frontend: its listener and the config it was last given. */
interface Frontend {
  config: FrontendConfig;
  proxy: ProxyServer;
}

/** A listener that stopped accepting (removed or moved) while its connections finish. */
interface Retired {
  name: string;
  backend: string;
  proxy: ProxyServer;
}

type FrontendStats = SwitchyardStats['frontends'][string];

class Switchyard implements ProxyHandle {
  private readonly engine: Engine;
  /**
   * The engine's read size: the largest chunk one read hands the core. Every pool buffer has this
   * size, whatever a reload's bufferSize says: a held rest of a read must fit in one buffer.
   */
  private readonly readSize: number;
  private readonly log: Logger;
  private readonly options: CreateProxyOptions;
  private readonly backends = new Map<string, Backend>();
  /** The nameservers of `discover` (`resolvers`, else the system's), made on the first apply. */
  private dns: Dns | null = null;
  private readonly frontends = new Map<string, Frontend>();
  /** The access log this proxy opened (from the config), closed with it. */
  accessLog: AccessLog | null = null;
  /** Listeners that stopped accepting but still carry connections; released once drained. */
  private readonly retired = new Set<Retired>();
  /** Counters of released listeners by frontend name, kept so no counter goes back. */
  private readonly released = new Map<string, FrontendStats>();
  private sweep: ReturnType<typeof setInterval> | null = null;
  /** The last reload in the queue: reloads run one after the other, never interleaved. */
  private reloading: Promise<unknown> = Promise.resolve();
  /** Set by drain() and close(): a reload queued after them is refused. */
  private stopping = false;

  constructor(engine: Engine, readSize: number, log: Logger, options: CreateProxyOptions) {
    this.engine = engine;
    this.readSize = readSize;
    this.log = log;
    this.options = options;
  }

  /**
   * Makes the running set match `config`, all or nothing: every new listener (new frontend, or
   * one moving to a new address) is bound first; if one fails, those just bound are closed and
   * the error is thrown with nothing else changed. Only then are the old listeners retired and
   * the backends updated.
   */
  async apply(config: Config): Promise<void> {
    // Certificates and keys are read first: a bad file refuses the whole config (ConfigError,
    // the key named) before any listener or backend changes.
    const tls = await readTls(config);
    this.warnExpiring(tls);
    if (config.bufferSize !== this.readSize) {
      this.log.warn(
        { running: this.readSize, requested: config.bufferSize },
        `bufferSize ${config.bufferSize} needs a restart: the running ${this.readSize} stays`,
      );
    }
    this.dns ??= new Dns(config.resolvers);
    const added = new Map<string, Backend>();
    for (const bc of config.backends) {
      if (!this.backends.has(bc.name)) {
        added.set(
          bc.name,
          new Backend(bc, this.engine, this.log, this.dns, serverTls(tls, bc.name)),
        );
      }
    }
    const backendOf = (name: string) => (added.get(name) ?? this.backends.get(name)) as Backend;
    const bound: Frontend[] = [];
    try {
      for (const fc of config.frontends) {
        const running = this.frontends.get(fc.name);
        if (running && sameAddress(fc.listen, running.config.listen)) continue;
        const proxy = this.newProxy(fc, config, backendOf, tls);
        bound.push({ config: fc, proxy }); // before start: a failed start is closed below too
        await proxy.start();
      }
    } catch (err) {
      await Promise.all(bound.map((f) => f.proxy.close(true)));
      for (const backend of added.values()) backend.stop();
      throw err;
    }

    // Every listener is bound: from here on nothing fails.
    this.dns.setResolvers(config.resolvers);
    const wanted = new Map(config.frontends.map((f) => [f.name, f]));
    const moved = new Set(bound.map((f) => f.config.name));
    const retiring: Promise<void>[] = [];
    for (const [name, f] of [...this.frontends]) {
      if (wanted.has(name) && !moved.has(name)) continue;
      this.frontends.delete(name);
      retiring.push(this.retire(name, f));
    }
    await Promise.all(retiring);
    for (const f of bound) {
      this.frontends.set(f.config.name, f);
      const where = formatHostPort(f.proxy.address.host, f.proxy.address.port);
      this.log.info(
        {
          frontend: f.config.name,
          listen: where,
          backend: f.config.backend,
          engine: this.engine.name,
        },
        `frontend ${f.config.name} listening on ${where}`,
      );
    }
    for (const bc of config.backends) {
      const backend = this.backends.get(bc.name);
      if (backend) backend.update(bc, serverTls(tls, bc.name));
      else this.backends.set(bc.name, added.get(bc.name) as Backend);
    }
    for (const fc of config.frontends) {
      const running = this.frontends.get(fc.name) as Frontend;
      running.proxy.backend = this.backends.get(fc.backend) as Backend;
      running.proxy.setSni(sniRouting(fc, (name) => this.backends.get(name) as Backend));
      const material = tls?.frontends.get(fc.name) ?? null;
      if (material !== null && running.proxy.terminatesTls) running.proxy.setTls(material);
      else if ((material !== null) !== running.proxy.terminatesTls) {
        this.log.warn(
          { frontend: fc.name },
          `frontend ${fc.name}: turning TLS on or off needs a new listen address or a restart; it stays as it runs`,
        );
      }
      running.config = fc;
    }
    const listed = new Set(config.backends.map((b) => b.name));
    for (const [name, backend] of [...this.backends]) {
      if (listed.has(name)) continue;
      backend.stop();
      this.backends.delete(name);
    }
  }

  /** A certificate expiring within defaults.tlsExpiryWarnDays is a warning (start and reload). */
  private warnExpiring(tls: TlsFiles | null): void {
    if (tls === null) return;
    const soon = Date.now() + defaults.tlsExpiryWarnDays * 24 * 3600 * 1000;
    for (const [frontend, m] of tls.frontends) {
      for (const c of m.certificates) {
        if (c.notAfter > soon) continue;
        const days = Math.floor((c.notAfter - Date.now()) / (24 * 3600 * 1000));
        this.log.warn(
          { frontend, cert: c.file, notAfter: new Date(c.notAfter).toISOString(), days },
          days < 0
            ? `certificate ${c.file} of frontend ${frontend} has expired`
            : `certificate ${c.file} of frontend ${frontend} expires in ${days} days`,
        );
      }
    }
  }

  private newProxy(
    fc: FrontendConfig,
    config: Config,
    backendOf: (name: string) => Backend,
    tls: TlsFiles | null,
  ): ProxyServer {
    const backend = backendOf(fc.backend);
    return new ProxyServer({
      name: fc.name,
      listen: fc.listen,
      backend,
      engine: this.engine,
      log: this.log,
      maxConnections: fc.maxConnections,
      bufferSize: this.readSize,
      idleTimeoutMs: config.timeouts.idle,
      halfClosedTimeoutMs: config.timeouts.halfClosed,
      ...(this.options.route ? { route: this.options.route } : {}),
      ...(this.options.strictStates ? { strictStates: true } : {}),
      connectionLog: this.options.connectionLog ?? this.accessLog,
      proxyProtocol: fc.proxyProtocol,
      allow: fc.allow,
      deny: fc.deny,
      limits: fc.limits,
      ...(this.options.reusePort ? { reusePort: true } : {}),
      tls: tls?.frontends.get(fc.name) ?? null,
      sni: sniRouting(fc, backendOf),
    });
  }

  /** Stops `f` accepting; its connections finish on their own, then it is released. */
  private async retire(name: string, f: Frontend): Promise<void> {
    const entry: Retired = { name, backend: f.config.backend, proxy: f.proxy };
    this.retired.add(entry);
    try {
      await f.proxy.close(false);
    } catch (err) {
      this.log.warn({ frontend: name, err: (err as Error).message }, 'closing a listener failed');
    }
    // A coarse poll, shared by every retired listener, as the drain does (see drain.ts).
    this.sweep ??= setInterval(() => this.releaseDrained(), defaults.drainPollMs);
    this.sweep.unref();
  }

  /** Releases each retired listener with no connection left, keeping its counters. */
  private releaseDrained(): void {
    for (const entry of this.retired) {
      if (entry.proxy.active > 0) continue;
      this.retired.delete(entry);
      const kept = this.released.get(entry.name);
      // Its pool is gone: only the counters stay, its gauges at 0 (as a dead worker's).
      const last = countersOfOne(this.statsOf(entry.proxy, entry.backend));
      this.released.set(entry.name, kept ? add(kept, last) : last);
      entry.proxy.close(true).catch(() => {}); // stops its timer wheel; nothing is left open
    }
    if (this.retired.size === 0 && this.sweep) {
      clearInterval(this.sweep);
      this.sweep = null;
    }
  }

  private statsOf(proxy: ProxyServer, backend: string): FrontendStats {
    const a = proxy.address;
    return { ...proxy.stats(), listen: formatHostPort(a.host, a.port), backend };
  }

  addresses(): Record<string, HostPort> {
    const out: Record<string, HostPort> = {};
    for (const [name, { proxy }] of this.frontends) setEntry(out, name, proxy.address);
    return out;
  }

  /**
   * Per frontend name: the running listener, plus the retired ones of that name still carrying
   * connections, plus the counters of those already released.
   */
  stats(): SwitchyardStats {
    const frontends: SwitchyardStats['frontends'] = {};
    const into = (name: string, s: FrontendStats) => {
      const have = entryOf(frontends, name);
      setEntry(frontends, name, have ? add(have, s) : s);
    };
    for (const [name, { config, proxy }] of this.frontends)
      into(name, this.statsOf(proxy, config.backend));
    for (const r of this.retired) into(r.name, this.statsOf(r.proxy, r.backend));
    for (const [name, s] of this.released) into(name, s);
    const backends: SwitchyardStats['backends'] = {};
    for (const [name, backend] of this.backends) setEntry(backends, name, backend.stats());
    return { frontends, backends };
  }

  connections(): ConnectionRow[] {
    const out: ConnectionRow[] = [];
    for (const { proxy } of this.frontends.values()) out.push(...proxy.connections());
    for (const r of this.retired) out.push(...r.proxy.connections());
    return out;
  }

  closeConnection(id: number): boolean {
    for (const { proxy } of this.frontends.values()) if (proxy.closeConnection(id)) return true;
    for (const { proxy } of this.retired) if (proxy.closeConnection(id)) return true;
    return false;
  }

  /** Queued behind any reload still running: two reloads never build the same frontend. */
  reload(config: ConfigInput | Config): Promise<void> {
    const next = this.reloading.then(() => this.reloadNow(config));
    this.reloading = next.catch(() => {});
    return next;
  }

  private async reloadNow(config: ConfigInput | Config): Promise<void> {
    const valid = await validate(config);
    if (this.stopping) {
      this.log.warn('reload ignored: the proxy is stopping');
      return;
    }
    await this.apply(valid);
    this.log.info({ frontends: valid.frontends.length }, 'config reloaded');
  }

  async drain(deadlineMs: number): Promise<void> {
    this.stopping = true;
    await this.reloading; // a reload half done would leave listeners behind
    const proxies = this.allProxies();
    await Promise.all(proxies.map((p) => p.close(false)));
    const active = () => proxies.reduce((n, p) => n + p.active, 0);
    const left = (await waitForIdle(active, deadlineMs)) ? 0 : active();
    if (left > 0)
      this.log.warn({ connections: left, deadlineMs }, 'drain deadline: closing the rest');
    await this.close(true);
  }

  async close(killConnections = false): Promise<void> {
    this.stopping = true;
    await this.reloading;
    const proxies = this.allProxies();
    this.frontends.clear();
    this.retired.clear();
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
    await Promise.all(proxies.map((p) => p.close(killConnections)));
    for (const backend of this.backends.values()) backend.stop();
    this.backends.clear();
    this.dns?.close();
    await this.accessLog?.close();
    this.accessLog = null;
  }

  private allProxies(): ProxyServer[] {
    return [
      ...[...this.frontends.values()].map((f) => f.proxy),
      ...[...this.retired].map((r) => r.proxy),
    ];
  }
}

/** One frontend's stats as a whole stats(), for the functions of core/aggregate.ts. */
const one = (s: FrontendStats): SwitchyardStats => ({ frontends: { f: s }, backends: {} });

/** Two listeners' stats as one frontend's: counters and gauges add up, names come from `a`. */
function add(a: FrontendStats, b: FrontendStats): FrontendStats {
  return sumStats([one(a), one(b)]).frontends.f as FrontendStats;
}

/** A released listener's stats: its counters, its gauges at 0 (see countersOf). */
function countersOfOne(s: FrontendStats): FrontendStats {
  return countersOf(one(s)).frontends.f as FrontendStats;
}

/** The TLS files of `config`, read; null when it has no TLS block (nothing to load). */
async function readTls(config: Config): Promise<TlsFiles | null> {
  const any =
    config.frontends.some((f) => f.tls !== undefined) ||
    config.backends.some((b) => b.servers.some((s) => s.tls !== undefined));
  if (!any) return null;
  const { readTlsFiles } = await import('./config/tls-files.ts');
  return readTlsFiles(config);
}

/** A frontend's SNI routing with its rules' backends (the config was checked: they exist). */
function sniRouting(fc: FrontendConfig, backendOf: (name: string) => Backend): SniRouting | null {
  if (fc.sni === undefined) return null;
  const backends = new Map<string, Backend>();
  for (const rule of fc.sni) backends.set(rule.backend, backendOf(rule.backend));
  return {
    rules: fc.sni,
    backends,
    timeoutMs: fc.handshakeTimeout ?? defaults.tlsHandshakeTimeoutMs,
  };
}

/** The TLS of backend `backend`'s servers, by server name. */
function serverTls(tls: TlsFiles | null, backend: string): Map<string, TlsClientMaterial> {
  const out = new Map<string, TlsClientMaterial>();
  if (tls === null) return out;
  const prefix = `${backend}/`;
  for (const [key, m] of tls.servers)
    if (key.startsWith(prefix)) out.set(key.slice(prefix.length), m);
  return out;
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}
