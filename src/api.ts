/**
 * The library API: `createProxy(config)` starts every frontend of a config (the same shape as the
 * YAML file) and returns a handle to stop it, reload it, and read its stats.
 */
import type { Logger } from 'pino';
import type { Config, ConfigInput, FrontendConfig } from './config/schema.ts';
import { Backend, type BackendStats, type RouteHook } from './core/backend.ts';
import {
  type ConnectionInfo,
  type ConnectionLog,
  ProxyServer,
  type ProxyStats,
} from './core/proxy.ts';
import type { Engine } from './engine/engine.ts';
import { createEngine, runtimeEngineName } from './engine/select.ts';
import { waitForIdle } from './lifecycle/drain.ts';
import { createLogger } from './log.ts';
import { type AccessLog, openAccessLog } from './observability/access-log.ts';
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
}

export interface SwitchyardStats {
  frontends: Record<string, ProxyStats & { listen: string; backend: string }>;
  backends: Record<string, BackendStats>;
}

/** A running proxy. */
export interface ProxyHandle {
  /** Bound address of each frontend, by name (the real port when 0 was asked). */
  addresses(): Record<string, HostPort>;
  stats(): SwitchyardStats;
  /** Every live connection, with the frontend it came in on. */
  connections(): (ConnectionInfo & { frontend: string })[];
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
  const proxy = new Switchyard(engine, options.log ?? createLogger('info'), options);
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

class Switchyard implements ProxyHandle {
  private readonly engine: Engine;
  private readonly log: Logger;
  private readonly options: CreateProxyOptions;
  private readonly backends = new Map<string, Backend>();
  private readonly frontends = new Map<string, { config: FrontendConfig; proxy: ProxyServer }>();
  /** The access log this proxy opened (from the config), closed with it. */
  accessLog: AccessLog | null = null;
  /** Frontends that stopped accepting but still carry connections, until close(). */
  private readonly retired: ProxyServer[] = [];

  constructor(engine: Engine, log: Logger, options: CreateProxyOptions) {
    this.engine = engine;
    this.log = log;
    this.options = options;
  }

  /** Makes the running set match `config`. */
  async apply(config: Config): Promise<void> {
    for (const bc of config.backends) {
      const existing = this.backends.get(bc.name);
      if (existing) existing.update(bc);
      else this.backends.set(bc.name, new Backend(bc, this.engine, this.log));
    }
    const wanted = new Map(config.frontends.map((f) => [f.name, f]));
    for (const [name, { config: fc, proxy }] of [...this.frontends]) {
      const next = wanted.get(name);
      if (next && sameAddress(next.listen, fc.listen)) continue;
      // Removed, or moving: stop accepting; its connections finish on their own.
      this.frontends.delete(name);
      this.retired.push(proxy);
      await proxy.close(false);
    }
    for (const fc of config.frontends) {
      const backend = this.backends.get(fc.backend) as Backend;
      const running = this.frontends.get(fc.name);
      if (running) {
        running.proxy.backend = backend;
        running.config = fc;
        continue;
      }
      const proxy = new ProxyServer({
        name: fc.name,
        listen: fc.listen,
        backend,
        engine: this.engine,
        log: this.log,
        maxConnections: fc.maxConnections,
        bufferSize: config.bufferSize,
        idleTimeoutMs: config.timeouts.idle,
        halfClosedTimeoutMs: config.timeouts.halfClosed,
        ...(this.options.route ? { route: this.options.route } : {}),
        ...(this.options.strictStates ? { strictStates: true } : {}),
        connectionLog: this.options.connectionLog ?? this.accessLog,
        ...(this.options.reusePort ? { reusePort: true } : {}),
      });
      await proxy.start();
      this.frontends.set(fc.name, { config: fc, proxy });
      const where = formatHostPort(proxy.address.host, proxy.address.port);
      this.log.info(
        { frontend: fc.name, listen: where, backend: fc.backend, engine: this.engine.name },
        `frontend ${fc.name} listening on ${where}`,
      );
    }
    const listed = new Set(config.backends.map((b) => b.name));
    for (const [name, backend] of [...this.backends]) {
      if (listed.has(name)) continue;
      backend.stop();
      this.backends.delete(name);
    }
  }

  addresses(): Record<string, HostPort> {
    const out: Record<string, HostPort> = {};
    for (const [name, { proxy }] of this.frontends) out[name] = proxy.address;
    return out;
  }

  stats(): SwitchyardStats {
    const frontends: SwitchyardStats['frontends'] = {};
    for (const [name, { config, proxy }] of this.frontends) {
      const a = proxy.address;
      frontends[name] = {
        ...proxy.stats(),
        listen: formatHostPort(a.host, a.port),
        backend: config.backend,
      };
    }
    const backends: SwitchyardStats['backends'] = {};
    for (const [name, backend] of this.backends) backends[name] = backend.stats();
    return { frontends, backends };
  }

  connections(): (ConnectionInfo & { frontend: string })[] {
    const out: (ConnectionInfo & { frontend: string })[] = [];
    for (const [name, { proxy }] of this.frontends) {
      for (const c of proxy.connections()) out.push({ ...c, frontend: name });
    }
    return out;
  }

  closeConnection(id: number): boolean {
    for (const { proxy } of this.frontends.values()) if (proxy.closeConnection(id)) return true;
    for (const proxy of this.retired) if (proxy.closeConnection(id)) return true;
    return false;
  }

  async reload(config: ConfigInput | Config): Promise<void> {
    const valid = await validate(config);
    await this.apply(valid);
    this.log.info({ frontends: valid.frontends.length }, 'config reloaded');
  }

  async drain(deadlineMs: number): Promise<void> {
    const proxies = [...[...this.frontends.values()].map((f) => f.proxy), ...this.retired];
    await Promise.all(proxies.map((p) => p.close(false)));
    const active = () => proxies.reduce((n, p) => n + p.stats().active, 0);
    const left = (await waitForIdle(active, deadlineMs)) ? 0 : active();
    if (left > 0)
      this.log.warn({ connections: left, deadlineMs }, 'drain deadline: closing the rest');
    await this.close(true);
  }

  async close(killConnections = false): Promise<void> {
    const proxies = [...[...this.frontends.values()].map((f) => f.proxy), ...this.retired];
    this.frontends.clear();
    this.retired.length = 0;
    await Promise.all(proxies.map((p) => p.close(killConnections)));
    for (const backend of this.backends.values()) backend.stop();
    this.backends.clear();
    await this.accessLog?.close();
    this.accessLog = null;
  }
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}
