import type { Logger } from 'pino';
import { CidrSet, parseIpInto } from '../cidr.ts';
import type { LimitsConfig, ProxyProtocolConfig } from '../config/schema.ts';
import { defaults, poolCapacity } from '../defaults.ts';
import type {
  AcceptHandler,
  Engine,
  EngineListener,
  EngineSocket,
  SocketEvents,
} from '../engine/engine.ts';
import { NO_EVENTS } from '../engine/engine.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { LogLimiter } from '../log-limiter.ts';
import type { ConnectionRow, ProxyStats } from '../stats.ts';
import type { TlsServerMaterial } from '../tls.ts';
import { formatHostPort, type HostPort } from '../units.ts';
import { Admission } from './admission.ts';
import type { Backend, RouteHook } from './backend.ts';
import { BufferPool } from './buffer-pool.ts';
import { ClientHelloStage, matchSni } from './client-hello.ts';
import { Ending, type Rejection, type SessionEnding } from './ending.ts';
import { CONNECT_BOUNDS_MS, DURATION_BOUNDS_MS, Histogram } from './histogram.ts';
import { Preamble, type PreambleOwner, type PreambleStage } from './preamble.ts';
import { ProxyHeaderParser } from './proxy-protocol.ts';
import { Session, type SessionContext, type SessionStart } from './session.ts';
import { StateCounters } from './state.ts';
import { TimerWheel } from './timer-wheel.ts';

/** Everything one listener (a frontend) needs; see defaults.ts for each default. */
export interface ProxyOptions {
  listen: HostPort;
  /** Where connections go (a reload may swap it; see `backend` below). */
  backend: Backend;
  engine: Engine;
  /** The frontend's name (route hook, logs); default "default". */
  name?: string;
  /** Picks a server from the connection's facts; see RouteHook. */
  route?: RouteHook;
  log: Logger;
  maxConnections?: number;
  bufferSize?: number;
  idleTimeoutMs?: number;
  halfClosedTimeoutMs?: number;
  backlog?: number;
  reusePort?: boolean;
  /** Throw on an illegal state move instead of counting it (tests turn this on). */
  strictStates?: boolean;
  /** Told of every finished connection (the access log); none by default. */
  connectionLog?: ConnectionLog | null;
  /** Terminate TLS with these certificates (files already read); none: plain TCP. */
  tls?: TlsServerMaterial | null;
  /** Clients start with a PROXY header (from these senders); none by default. */
  proxyProtocol?: ProxyProtocolConfig | undefined;
  /** Client addresses served (when present) and refused (CIDR blocks). */
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
  limits?: LimitsConfig | undefined;
  /** Route by the ClientHello's server name, without decrypting; none by default. */
  sni?: SniRouting | null;
}

/**
 * SNI routing (`frontends[].sni`): the client's ClientHello is read before any server is chosen;
 * its server name picks the backend of the matching rule (see matchSni), else the frontend's.
 */
export interface SniRouting {
  readonly rules: readonly { readonly match: string; readonly backend: string }[];
  /** The backends the rules name, by name. */
  readonly backends: ReadonlyMap<string, Backend>;
  /** Milliseconds the whole ClientHello may take, from accept (after a PROXY header); 0 = none. */
  readonly timeoutMs: number;
}

/** Hears of each connection once it is over: closed, or turned away at the cap. */
export interface ConnectionLog {
  closed(session: Session): void;
  /** `client`: HOST:PORT when known (null at the cap and the accept rate: no socket yet). */
  rejected(frontend: string, ending: Rejection, client?: string | null): void;
}

/** Events of a client turned away in accept(): its socket is closing, nothing more to do. */
const REJECTED: SocketEvents = NO_EVENTS;

/** The preamble's PROXY header stage, if it has one. */
function headerOf(preamble: Preamble): ProxyHeaderParser | null {
  const first = preamble.stages[0];
  return first instanceof ProxyHeaderParser ? first : null;
}

/** The preamble's ClientHello stage, if it has one (always the last). */
function helloOf(preamble: Preamble): ClientHelloStage | null {
  const last = preamble.stages.at(-1);
  return last instanceof ClientHelloStage ? last : null;
}

/** Scratch for a peer's address bytes (single-threaded: one is enough). */
const ADDRESS = new Uint8Array(16);

/**
 * A listener, the connection cap, and the registry of live sessions. The data path itself is in
 * session.ts.
 */
export class ProxyServer implements AcceptHandler, PreambleOwner {
  readonly options: Required<
    Omit<
      ProxyOptions,
      | 'reusePort'
      | 'strictStates'
      | 'route'
      | 'backend'
      | 'name'
      | 'connectionLog'
      | 'tls'
      | 'proxyProtocol'
      | 'allow'
      | 'deny'
      | 'limits'
      | 'sni'
    >
  >;
  readonly name: string;
  private readonly ctx: SessionContext;
  /**
   * Rate-limited lines for the paths a flood of clients can hit: accept errors, rejections (PROXY
   * headers, admission), TLS handshake failures (scanners), per-session warnings.
   */
  private readonly limited: LogLimiter;
  readonly wheel: TimerWheel;
  private readonly counters: StateCounters;
  readonly pool: BufferPool;
  private readonly sessions = new Set<Session>();
  /** Clients still sending their preamble (PROXY header, ClientHello): no session yet. */
  private readonly preambles = new Set<Preamble>();
  private readonly proxyProtocol: ProxyProtocolConfig | null;
  /** `proxyProtocol.from`: the senders whose header is believed; null = every one. */
  private readonly trusted: CidrSet | null;
  /** The largest PROXY header taken (never more than a pool buffer). */
  private readonly headerMaxBytes: number;
  /** SNI routing (a reload may swap it); null: every client goes to `backend`. */
  private sni: SniRouting | null;
  /** The largest ClientHello read: never more than a pool buffer, which holds it. */
  private readonly helloMaxBytes: number;
  private readonly admission: Admission | null;
  private listener: EngineListener | null = null;
  private bound: HostPort | null = null;
  private accepted = 0;
  private readonly rejected: Partial<Record<Rejection, number>> = {};
  private acceptErrors = 0;
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  private readonly closed: Partial<Record<SessionEnding, number>> = {};
  // Recorded once per closed connection (a few increments), formatted only at scrape time.
  private readonly connectMs = new Histogram(CONNECT_BOUNDS_MS);
  private readonly durationMs = new Histogram(DURATION_BOUNDS_MS);
  private readonly connectionLog: ConnectionLog | null;
  private reusePort: boolean;
  /** The TLS certificates new handshakes use (a reload may swap them); null: plain TCP. */
  private tls: TlsServerMaterial | null;
  /** Clients admitted whose TLS handshake is still running: they count against the cap. */
  private handshaking = 0;

  constructor(options: ProxyOptions) {
    this.name = options.name ?? 'default';
    this.options = {
      listen: options.listen,
      engine: options.engine,
      log: options.log,
      maxConnections: options.maxConnections ?? defaults.maxConnections,
      bufferSize: options.bufferSize ?? defaults.bufferSize,
      idleTimeoutMs: options.idleTimeoutMs ?? defaults.idleTimeoutMs,
      halfClosedTimeoutMs: options.halfClosedTimeoutMs ?? defaults.halfClosedTimeoutMs,
      backlog:
        options.backlog ??
        Math.max(defaults.backlog, options.maxConnections ?? defaults.maxConnections),
    };
    this.reusePort = options.reusePort ?? false;
    this.connectionLog = options.connectionLog ?? null;
    this.tls = options.tls ?? null;
    const o = this.options;
    this.wheel = new TimerWheel(defaults.timerTickMs);
    this.proxyProtocol = options.proxyProtocol ?? null;
    const from = this.proxyProtocol?.from;
    this.trusted = from === undefined ? null : CidrSet.of(from);
    this.headerMaxBytes = Math.min(defaults.proxyHeaderMaxBytes, o.bufferSize);
    this.sni = options.sni ?? null;
    this.helloMaxBytes = Math.min(defaults.clientHelloMaxBytes, o.bufferSize);
    const limits = options.limits;
    const admission = new Admission(
      { allow: options.allow, deny: options.deny, limits },
      o.maxConnections,
      () => this.wheel.now,
    );
    const admits = admission.needsAddress || limits?.acceptRate !== undefined;
    this.admission = admits ? admission : null;
    if (!admits) admission.stop();
    this.counters = new StateCounters(options.strictStates ?? false);
    this.pool = new BufferPool(o.bufferSize, poolCapacity(o.maxConnections));
    this.limited = new LogLimiter(o.log);
    this.ctx = {
      pool: this.pool,
      wheel: this.wheel,
      counters: this.counters,
      log: o.log,
      limited: this.limited,
      idleTimeoutMs: o.idleTimeoutMs,
      halfClosedTimeoutMs: o.halfClosedTimeoutMs,
      maxLifetimeMs: limits?.maxLifetime ?? defaults.maxLifetimeMs,
      frontend: this.name,
      backend: options.backend,
      route: options.route,
      sessionClosed: (session: Session) => this.sessionClosed(session),
    };
  }

  /** The backend new connections go to. */
  get backend(): Backend {
    return this.ctx.backend;
  }

  /** Sends new connections to `backend` (a reload); established ones keep theirs. */
  set backend(backend: Backend) {
    this.ctx.backend = backend;
  }

  /** Binds the listener and starts accepting. */
  async start(): Promise<void> {
    const o = this.options;
    this.wheel.start();
    this.listener = await o.engine.listen(
      {
        host: o.listen.host,
        port: o.listen.port,
        backlog: o.backlog,
        reusePort: this.reusePort,
        ...(this.tls !== null ? { tls: this.tls } : {}),
      },
      this,
    );
    this.bound = { host: this.listener.host, port: this.listener.port };
  }

  /**
   * The bound address (the real port when 0 was asked); still the same once closed, so stats
   * taken while the connections drain name it.
   */
  get address(): HostPort {
    if (!this.bound) throw new SwitchyardError(ErrorCode.INTERNAL, 'proxy not started');
    return this.bound;
  }

  /** New SNI rules for new clients (a reload); null turns SNI routing off. */
  setSni(sni: SniRouting | null): void {
    this.sni = sni;
  }

  /** Whether this listener terminates TLS. */
  get terminatesTls(): boolean {
    return this.tls !== null;
  }

  /**
   * New certificates for new handshakes (a reload); established connections keep theirs. Only a
   * TLS listener takes them: turning TLS on or off needs a new listener.
   */
  setTls(tls: TlsServerMaterial): void {
    if (this.tls === null) return;
    this.tls = tls;
    this.listener?.setTls?.(tls);
  }

  // ─── AcceptHandler ───

  admit(): boolean {
    const live = this.sessions.size + this.preambles.size + this.handshaking;
    if (live >= this.options.maxConnections) {
      const ending = Ending.rejected_at_cap;
      this.rejected[ending] = (this.rejected[ending] ?? 0) + 1;
      this.options.log.debug({ max: this.options.maxConnections }, 'connection cap reached');
      this.connectionLog?.rejected(this.name, ending);
      return false;
    }
    // The frontend's rate, before any object exists for the client (a PROXY header included).
    if (this.admission !== null && !this.admission.takeAccept()) {
      this.reject(Ending.accept_rate, null, 'faster than limits.acceptRate');
      return false;
    }
    // A TLS client counts against the cap from its TCP accept until its handshake ends.
    if (this.tls !== null) this.handshaking++;
    return true;
  }

  accept(socket: EngineSocket): SocketEvents {
    if (this.tls !== null) this.handshaking--;
    const pp = this.proxyProtocol;
    const sni = this.sni;
    if (pp === null && sni === null)
      return this.startSession(socket, null, null, 0)?.client ?? REJECTED;
    // The preamble: a PROXY header, then a ClientHello, each with its own timeout.
    const stages: PreambleStage[] = [];
    const timeouts: number[] = [];
    if (pp !== null) {
      const peer = socket.remoteAddress;
      // A header is believed only from a trusted sender: any other is closed unread.
      if (this.trusted !== null && !(parseIpInto(peer, ADDRESS) && this.trusted.has(ADDRESS))) {
        this.reject(Ending.proxy_header, socket, 'sender not in proxyProtocol.from');
        socket.destroy();
        return REJECTED;
      }
      stages.push(new ProxyHeaderParser(pp.accept, this.headerMaxBytes));
      timeouts.push(pp.timeout);
    }
    if (sni !== null) {
      stages.push(new ClientHelloStage(this.helloMaxBytes));
      timeouts.push(sni.timeoutMs);
    }
    const preamble = new Preamble(this, socket, stages, timeouts);
    this.preambles.add(preamble);
    return preamble;
  }

  /**
   * The client passed admission (checked here, on its address) and becomes a session; or it
   * is turned away (null, its socket closing). `parser`: its PROXY header, if any.
   */
  private startSession(
    socket: EngineSocket,
    parser: ProxyHeaderParser | null,
    early: Buffer | null,
    earlyLength: number,
    hello: ClientHelloStage | null = null,
  ): Session | null {
    let sourceKey: string | null = null;
    const admission = this.admission;
    if (admission?.needsAddress) {
      const address = parser?.hasAddresses ? parser.sourceAddress : socket.remoteAddress;
      const refusal = admission.admit(address);
      if (refusal !== null) {
        if (early !== null) this.pool.release(early);
        this.reject(refusal, socket, null, parser);
        socket.events = REJECTED;
        socket.destroy();
        return null;
      }
      sourceKey = admission.keyOf(address);
    }
    this.accepted++;
    let start: SessionStart | null = null;
    if (hello !== null) {
      const name = matchSni(this.sni?.rules ?? [], hello.sni);
      const backend = name === null ? null : (this.sni?.backends.get(name) ?? null);
      start = { header: parser, early, earlyLength, backend, sni: hello.sni };
    } else if (parser !== null || early !== null) {
      start = { header: parser, early, earlyLength };
    }
    const session = new Session(this.ctx, socket, start);
    session.sourceKey = sourceKey;
    this.sessions.add(session);
    // The peer's address cannot be asked once the socket is closed; the log needs it then.
    if (this.connectionLog !== null) {
      session.clientName = formatHostPort(session.clientAddress, session.clientPort);
    }
    return session;
  }

  /** Counts, logs (rate-limited) and access-logs a client turned away before any session. */
  private reject(
    ending: Rejection,
    socket: EngineSocket | null,
    detail: string | null,
    parser: ProxyHeaderParser | null = null,
  ): void {
    this.rejected[ending] = (this.rejected[ending] ?? 0) + 1;
    let client: string | null = null;
    if (socket !== null) {
      client = parser?.hasAddresses
        ? formatHostPort(parser.sourceAddress, parser.sourcePort)
        : formatHostPort(socket.remoteAddress, socket.remotePort);
    }
    // A bad PROXY header is a misconfigured upstream; a bad ClientHello is usually a scanner.
    const level = ending === Ending.proxy_header ? 'warn' : 'info';
    const peer =
      socket !== null && parser?.hasAddresses
        ? formatHostPort(socket.remoteAddress, socket.remotePort)
        : undefined;
    this.limited.write(
      level,
      `rejected ${ending}`,
      { frontend: this.name, client, peer, reason: ending, detail },
      `client rejected (${ending})${detail ? `: ${detail}` : ''}`,
    );
    this.connectionLog?.rejected(this.name, ending, client);
  }

  // ─── PreambleOwner ───

  preambleDone(preamble: Preamble, early: Buffer | null, earlyLength: number): void {
    this.preambles.delete(preamble);
    const socket = preamble.socket;
    const session = this.startSession(
      socket,
      headerOf(preamble),
      early,
      earlyLength,
      helloOf(preamble),
    );
    if (session !== null) socket.events = session.client;
  }

  preambleFailed(preamble: Preamble, reason: string): void {
    if (!this.preambles.delete(preamble)) return;
    if (reason === 'killed') return;
    const ending =
      preamble.failedStage instanceof ClientHelloStage
        ? preamble.timedOut
          ? Ending.client_hello_timeout
          : Ending.client_hello
        : Ending.proxy_header;
    // A header already read names the client, for the log.
    const parser = ending === Ending.proxy_header ? null : headerOf(preamble);
    this.reject(ending, preamble.socket, reason, parser);
  }

  acceptError(code: string): void {
    this.acceptErrors++;
    this.limited.write('warn', 'accept_error', { code }, 'accept failed; still listening');
  }

  handshakeFailed(code: string, message: string, timedOut: boolean): void {
    this.handshaking--;
    const ending = timedOut ? Ending.tls_handshake_timeout : Ending.tls_handshake;
    this.rejected[ending] = (this.rejected[ending] ?? 0) + 1;
    this.limited.write(
      'info',
      ending,
      { frontend: this.name, code, reason: message },
      `TLS handshake ${timedOut ? 'timed out' : 'failed'}: ${message}`,
    );
    this.connectionLog?.rejected(this.name, ending);
  }

  private sessionClosed(session: Session): void {
    this.sessions.delete(session);
    if (session.sourceKey !== null) this.admission?.release(session.sourceKey);
    this.closedBytesIn += session.client.bytesRead;
    this.closedBytesOut += session.server.bytesRead;
    const reason = session.closeReason ?? Ending.done;
    this.closed[reason] = (this.closed[reason] ?? 0) + 1;
    if (session.connectedAt > 0) this.connectMs.observe(session.connectedAt - session.startedAt);
    this.durationMs.observe(this.wheel.now - session.startedAt);
    this.connectionLog?.closed(session);
  }

  // ─── Views ───

  /** Live connections, those still sending a PROXY header included (cheap). */
  get active(): number {
    return this.sessions.size + this.preambles.size;
  }

  stats(): ProxyStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const s of this.sessions) {
      bytesIn += s.client.bytesRead;
      bytesOut += s.server.bytesRead;
    }
    return {
      active: this.sessions.size,
      accepted: this.accepted,
      rejected: { ...this.rejected },
      acceptErrors: this.acceptErrors,
      closed: { ...this.closed },
      bytesIn,
      bytesOut,
      states: this.counters.snapshot(),
      pool: {
        capacity: this.pool.capacity,
        inUse: this.pool.inUse,
        highWater: this.pool.highWater,
        bufferSize: this.pool.size,
      },
      histograms: { connectMs: this.connectMs.snapshot(), durationMs: this.durationMs.snapshot() },
      ...(this.tls !== null
        ? {
            tlsCertificates: this.tls.certificates.map((c) => ({
              name: c.file,
              expiresAt: c.notAfter,
            })),
          }
        : {}),
    };
  }

  /** Closes one live connection (the operator's kill); false when no such id is live. */
  closeConnection(id: number): boolean {
    for (const s of this.sessions) {
      if (s.id !== id) continue;
      s.close(Ending.killed);
      return true;
    }
    return false;
  }

  /** Every live connection, for the live view ("stuck in WRITING" = a peer is not draining). */
  connections(): ConnectionRow[] {
    const now = this.wheel.now; // the clock sessions were stamped with (monotonic)
    const out: ConnectionRow[] = [];
    for (const s of this.sessions) {
      const c = s.client.held !== null;
      const b = s.server.held !== null;
      out.push({
        id: s.id,
        client: formatHostPort(s.clientAddress, s.clientPort),
        frontend: this.name,
        server: s.target?.name ?? null,
        state: s.state,
        bytesIn: s.client.bytesRead,
        bytesOut: s.server.bytesRead,
        ageMs: now - s.startedAt,
        blocked: c && b ? 'both' : c ? 'client' : b ? 'server' : null,
        tls: s.client.socket.tls,
        sni: s.sni,
      });
    }
    return out;
  }

  /** Stops accepting; with `killConnections`, also closes every live pair. */
  async close(killConnections = false): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    if (listener) await listener.close();
    // Clients still sending a header have no session yet: they go with the listener.
    for (const p of [...this.preambles]) p.kill();
    if (killConnections) {
      for (const s of [...this.sessions]) s.close(Ending.killed);
    }
    if (this.sessions.size === 0 || killConnections) {
      this.wheel.stop();
      this.admission?.stop();
      this.limited.close();
    }
  }
}
