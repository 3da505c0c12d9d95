import type { Logger } from 'pino';
import type { EngineSocket, SocketEvents } from '../engine/engine.ts';
import { ErrorCode, LOCAL_ERROR_CODES, NOISY_CODES } from '../errors.ts';
import type { LogLimiter } from '../log-limiter.ts';
import type { TlsInfo } from '../tls.ts';
import {
  type Backend,
  type Chooser,
  FULL,
  type RouteHook,
  type Server,
  type Waiter,
} from './backend.ts';
import type { BufferPool } from './buffer-pool.ts';
import { Ending, type Fin, type SessionEnding } from './ending.ts';
import { encodeProxyHeader, MAX_ENCODED_BYTES, type ProxyHeader } from './proxy-protocol.ts';
import { State, type StateCounters, transition } from './state.ts';
import type { TimerEntry, TimerWheel } from './timer-wheel.ts';

/** What every session of one proxy shares. */
export interface SessionContext {
  readonly pool: BufferPool;
  readonly wheel: TimerWheel;
  readonly counters: StateCounters;
  readonly log: Logger;
  /** The same log, rate-limited per kind of line: for the paths a flood of clients can hit. */
  readonly limited: LogLimiter;
  readonly idleTimeoutMs: number;
  readonly halfClosedTimeoutMs: number;
  /** A connection open longer than this is closed (`max_lifetime`); 0 = no limit. */
  readonly maxLifetimeMs: number;
  /** The frontend that accepted the sessions (for the route hook and logs). */
  readonly frontend: string;
  /** Where new sessions go. A reload may replace it; a session keeps the one it started with. */
  backend: Backend;
  /** Picks a server from the connection's facts; see RouteHook. */
  readonly route: RouteHook | undefined;
  /** Both sockets are closed; the session is gone. */
  sessionClosed(session: Session): void;
}

/**
 * One side of a pair: the client socket or the backend socket, as the receiver of its events.
 * Bytes read on a side go to its `peer`; `held` is the pool buffer of bytes read from the peer
 * that this side's socket has not taken yet.
 */
export class Side implements SocketEvents {
  readonly session: Session;
  readonly name: 'client' | 'server';
  socket: EngineSocket;
  peer: Side;
  /** Pool buffer with bytes for this side's socket still being written; null when none. */
  held: Buffer | null = null;
  /**
   * `held` is a pool buffer, released when written; false: the rest of a whole read the engine
   * gave away (EngineSocket.wholeReads), simply dropped.
   */
  heldPooled = true;
  /** The peer sent FIN; pass it on once `held` is written. */
  finPending = false;
  /** This side sent FIN: no more bytes will be read from it. */
  readEnded = false;
  /** This side's socket reported close. */
  closed = false;
  /** Bytes read from this side's socket (and forwarded to the peer). */
  bytesRead = 0;

  constructor(session: Session, name: 'client' | 'server', socket: EngineSocket) {
    this.session = session;
    this.name = name;
    this.socket = socket;
    this.peer = this;
  }

  onOpen(): void {
    try {
      this.session.backendOpen(this);
    } catch (err) {
      this.session.crashed(err);
    }
  }

  // ─── The data path. Bytes arrive here, go to the peer, and stop here when the peer is full. ───

  onData(data: Buffer, n: number): void {
    // A throw here would reach the event loop and end the process: it ends this pair only.
    try {
      this.pump(data, n);
    } catch (err) {
      this.session.crashed(err);
    }
  }

  private pump(data: Buffer, n: number): void {
    const session = this.session;
    session.lastActivity = session.ctx.wheel.now;
    this.bytesRead += n;
    if (session.state === State.CONNECTING || session.state === State.QUEUED) {
      session.readWhileWaiting(data, n); // the client, read before its server is up
      return;
    }
    const to = this.peer;
    if (to.closed) return; // the peer is gone and the pair is being torn down: nowhere to go
    if (to.held !== null) {
      // The engine delivered a read after pause(): forwarding now would reorder bytes.
      session.close(Ending.internal, 'read while the peer still held bytes');
      return;
    }
    // 1. The engine read into a pool buffer it can lend (Node, streaming): write straight from
    // it; if the write is pending, the buffer becomes the held one, as a copy would have.
    if (this.socket.readBufferLendable === true) {
      if (to.socket.writeHeld(data, n)) return; // written inside the call: the socket keeps it
      (this.socket as Required<EngineSocket>).lendReadBuffer();
      to.held = data;
      this.socket.pause();
      session.settle();
      return;
    }
    // 2. Try to hand the bytes to the peer's socket straight from the engine's read buffer.
    const taken = to.socket.tryWrite(data, n);
    if (taken === n) return;
    const pool = session.ctx.pool;
    if (n - taken > pool.size) {
      // 3a. A whole read longer than a pool buffer (wholeReads): the engine gave the memory
      // away, so its rest is held as it is, as a pool buffer would be.
      const rest = data.subarray(taken, n);
      if (to.socket.writeHeld(rest, n - taken)) return;
      to.held = rest;
      to.heldPooled = false;
      this.socket.pause();
      session.settle();
      return;
    }
    // 3. The rest moves into a pool buffer, which is written from and kept until the write is done.
    const buf = pool.acquire();
    data.copy(buf, 0, taken, n);
    if (to.socket.writeHeld(buf, n - taken)) {
      pool.release(buf); // written inside the call: nothing is pending
      return;
    }
    // 4. Backpressure: the peer cannot take more now. Stop reading this side until it drains.
    to.held = buf;
    this.socket.pause();
    session.settle();
  }

  /** The held write on this side's socket completed: free the buffer, resume the peer. */
  onDrain(): void {
    try {
      this.drained();
    } catch (err) {
      this.session.crashed(err);
    }
  }

  private drained(): void {
    const buf = this.held;
    if (buf === null) return;
    this.held = null;
    const session = this.session;
    if (this.heldPooled) session.ctx.pool.release(buf);
    this.heldPooled = true;
    session.lastActivity = session.ctx.wheel.now;
    // The client's first bytes may still wait behind a PROXY header (Session.writeProxyHeader).
    if (this === session.server && session.writeEarlyRest()) return;
    if (this.finPending) {
      this.finPending = false;
      this.socket.shutdown();
    }
    const from = this.peer;
    // 5. Resume reading where it stopped.
    if (!from.readEnded && !from.closed) from.socket.resume();
    session.settle();
  }

  // ─── Endings ───

  /** FIN from this side: pass it on as FIN; the other direction keeps flowing. */
  onEnd(): void {
    try {
      this.ended();
    } catch (err) {
      this.session.crashed(err);
    }
  }

  private ended(): void {
    this.readEnded = true;
    if (this.session.firstFin === null) this.session.firstFin = this.name;
    const state = this.session.state;
    if (state === State.CONNECTING || state === State.QUEUED) {
      this.session.clientEndedWhileWaiting();
      return;
    }
    const to = this.peer;
    if (!to.closed) {
      if (to.held !== null) to.finPending = true;
      else to.socket.shutdown();
    }
    const session = this.session;
    session.lastActivity = session.ctx.wheel.now;
    session.settle();
    // The half-closed timeout is usually shorter than the idle one: refile the timer.
    session.ctx.wheel.schedule(session);
  }

  onError(code: string, message: string): void {
    try {
      this.session.sideError(this, code, message);
    } catch (err) {
      this.session.crashed(err);
    }
  }

  onClose(): void {
    this.closed = true;
    const buf = this.held;
    if (buf !== null) {
      // The socket is closed, so the engine's write of this buffer is over (done or cancelled).
      this.held = null;
      if (this.heldPooled) this.session.ctx.pool.release(buf);
      this.heldPooled = true;
    }
    try {
      this.session.sideClosed(this);
    } catch (err) {
      this.session.crashed(err);
    }
  }
}

let nextId = 1;

/** What a session starts with when a preamble (preamble.ts) came first. */
export interface SessionStart {
  /** The PROXY header, when the frontend takes one. */
  header: ProxyHeader | null;
  /** The client's first data (a pool buffer, now the session's), or null. */
  early: Buffer | null;
  earlyLength: number;
  /** The backend chosen by the ClientHello's server name (SNI routing); null: the frontend's. */
  backend?: Backend | null;
  /** The ClientHello's server name (SNI routing), or null. */
  sni?: string | null;
}

/** Where a PROXY header is built before it goes out with the early data (single-threaded). */
const HEADER_SCRATCH = Buffer.allocUnsafe(MAX_ENCODED_BYTES);

/** A server side no socket has yet: it stands closed until a connect attempt takes it. */
function noServerSide(session: Session, client: Side): Side {
  const side = new Side(session, 'server', client.socket);
  side.closed = true;
  side.peer = client;
  return side;
}

/**
 * A client connection and its backend connection. Connection setup (choosing a server, waiting
 * for a slot, retrying a failed connect), states, timeouts and teardown live here; the bytes
 * move in Side.onData / Side.onDrain above.
 */
export class Session implements TimerEntry, Chooser, Waiter {
  readonly id = nextId++;
  readonly ctx: SessionContext;
  readonly client: Side;
  /** The backend side; replaced by a fresh Side on each connect attempt. */
  server: Side;
  state: State = State.CLOSED;
  readonly startedAt: number;
  /** Wheel time of the last byte or FIN in either direction. */
  lastActivity: number;
  /** Wheel time the backend connected, or 0. */
  connectedAt = 0;
  closeReason: SessionEnding | null = null;
  /** The side that sent FIN first, if any (the access log's `fin`). */
  firstFin: Fin = null;
  /** The client's HOST:PORT, read at accept when an access log wants it (gone after close). */
  clientName = '';
  /** The PROXY header the client sent (its source is the client), or null. */
  readonly header: ProxyHeader | null;
  /** The key the admission control counts this client under, or null (released at close). */
  sourceKey: string | null = null;
  wheelSlot = -1;
  wheelIndex = 0;
  /** The backend this session's servers come from (fixed at accept, even across a reload). */
  readonly backend: Backend;
  /** The server name of the ClientHello an SNI-routing frontend read, or null. */
  private readonly helloSni: string | null;
  /** The server of the current attempt or connection; it holds one of its slots until released. */
  target: Server | null = null;
  /** Servers tried so far, in order; the last one is (or was) `target`. */
  readonly tried: Server[] = [];
  /** Wheel time the current connect attempt started, or the client started waiting. */
  private waitStartedAt = 0;
  /**
   * Bytes the client sent before its server was up: a pool buffer (the one the client-to-server
   * direction may hold), written to the server first, then released. The client is read while
   * it waits so that one who leaves (FIN, RST) is noticed and frees its place at once; after one
   * chunk it is paused again, so a waiting client holds at most this one buffer.
   */
  private early: Buffer | null = null;
  private earlyLength = 0;

  constructor(ctx: SessionContext, clientSocket: EngineSocket, start: SessionStart | null = null) {
    this.ctx = ctx;
    this.header = start?.header ?? null;
    if (start !== null && start.early !== null) {
      this.early = start.early; // the client is paused until these are written
      this.earlyLength = start.earlyLength;
    }
    this.startedAt = ctx.wheel.now;
    this.lastActivity = this.startedAt;
    this.backend = start?.backend ?? ctx.backend;
    this.helloSni = start?.sni ?? null;
    this.client = new Side(this, 'client', clientSocket);
    // Streaming reads may go into pool buffers the core then writes from (engines that can).
    clientSocket.readFrom?.(ctx.pool);
    this.server = noServerSide(this, this.client);
    this.client.peer = this.server;
    transition(this, State.CONNECTING, ctx.counters);
    // The backend connect starts now, at accept time.
    this.connectNext();
    // Read the client while it waits, to notice it leaving (readWhileWaiting keeps what it sends).
    const waiting = this.state === State.CONNECTING || this.state === State.QUEUED;
    if (waiting && this.early === null) clientSocket.resume();
  }

  /** The client sent bytes before its server was up: keep them for the server, stop reading. */
  readWhileWaiting(data: Buffer, n: number): void {
    if (this.early !== null) {
      // Paused after the first chunk: another one means the engine read after pause().
      this.close(Ending.internal, 'read while waiting after pause');
      return;
    }
    const buf = this.ctx.pool.acquire();
    data.copy(buf, 0, 0, n);
    this.early = buf;
    this.earlyLength = n;
    this.client.socket.pause();
  }

  /**
   * The client sent FIN before its server was up. While QUEUED (a wait that may be long), one
   * that has sent nothing has left: its place frees now (HAProxy's abortonclose). Otherwise it
   * half-closed — after a request, or with nothing to say to a server that speaks first — and the
   * bytes and the FIN go to the server once it is up (backendOpen).
   */
  clientEndedWhileWaiting(): void {
    if (this.early === null && this.state === State.QUEUED) this.close(Ending.client_closed);
  }

  // ─── Connection setup: choose a server, wait for a slot, connect, retry ───

  /** The client: the PROXY header's source when it names one, else the TCP peer. */
  get clientAddress(): string {
    const h = this.header;
    return h?.hasAddresses ? h.sourceAddress : this.client.socket.remoteAddress;
  }
  get clientPort(): number {
    const h = this.header;
    return h?.hasAddresses ? h.sourcePort : this.client.socket.remotePort;
  }
  get localAddress(): string {
    return this.client.socket.localAddress;
  }
  get localPort(): number {
    return this.client.socket.localPort;
  }
  get frontend(): string {
    return this.ctx.frontend;
  }
  get route(): RouteHook | undefined {
    return this.ctx.route;
  }
  get tls(): TlsInfo | null {
    return this.client.socket.tls;
  }
  /** The server name the client asked for: its ClientHello's (SNI routing) or its handshake's. */
  get sni(): string | null {
    return this.helloSni ?? this.client.socket.tls?.sni ?? null;
  }

  /** Chooses a server and connects to it; waits in the queue when every server is full. */
  private connectNext(): void {
    const choice = this.backend.choose(this);
    if (choice === FULL) {
      if (!this.backend.enqueue(this)) {
        this.ctx.limited.write(
          'warn',
          'queue_full',
          { conn: this.id, backend: this.backend.name, code: ErrorCode.QUEUE_FULL },
          'every server is at its limit and the queue is full; client closed',
        );
        this.close(Ending.queue_full);
        return;
      }
      transition(this, State.QUEUED, this.ctx.counters);
      this.waitStartedAt = this.ctx.wheel.now;
      this.ctx.wheel.schedule(this);
      return;
    }
    this.dequeued(choice);
  }

  /** Waiter: a slot freed on `server` (or, with null, no server is up any more). */
  dequeued(server: Server | null): void {
    if (server === null) {
      this.ctx.limited.write(
        'warn',
        'no_server',
        { conn: this.id, backend: this.backend.name, code: ErrorCode.NO_SERVER },
        `no server of backend ${this.backend.name} is up; client closed`,
      );
      this.close(Ending.no_server);
      return;
    }
    transition(this, State.CONNECTING, this.ctx.counters);
    this.target = server;
    this.tried.push(server);
    this.waitStartedAt = this.ctx.wheel.now;
    // `server` is a stand-in here (from accept, or from the failed attempt before): a Side no
    // engine has seen, so the new socket's events cannot mix with an abandoned one's.
    const side = this.server;
    side.closed = false;
    side.socket = this.backend.connect(server, side);
    side.socket.readFrom?.(this.ctx.pool);
    this.ctx.wheel.schedule(this);
  }

  /**
   * The connect attempt failed (error, close or timeout). Its socket is abandoned: destroyed, and
   * its remaining events ignored (it is no longer `this.server`). With retries left another
   * server is tried; what the client sent so far is kept (`early`), so nothing is lost.
   */
  private connectFailed(reason: SessionEnding, code: string): void {
    const server = this.target as Server;
    this.target = null;
    const failed = this.server;
    this.server = noServerSide(this, this.client);
    this.client.peer = this.server;
    if (!failed.closed) failed.socket.destroy();
    this.backend.connectFailed(server, code);
    const retriesLeft = this.backend.config.retries - (this.tried.length - 1);
    const detail = { conn: this.id, server: server.name, code, retriesLeft };
    if (retriesLeft > 0) {
      this.ctx.log.debug(detail, 'connect failed; trying another server');
      this.connectNext();
      return;
    }
    this.ctx.limited.write(
      'info',
      'connect_failed',
      detail,
      `connect to ${server.name} failed; client closed`,
    );
    this.close(reason);
  }

  backendOpen(side: Side): void {
    // Timed out, the client left, or an abandoned attempt: nothing to do.
    if (side !== this.server || this.state !== State.CONNECTING) return;
    if (this.target) this.backend.connectSucceeded(this.target);
    this.connectedAt = this.ctx.wheel.now;
    this.lastActivity = this.connectedAt;
    transition(this, State.CONNECTED, this.ctx.counters);
    const to = this.server;
    // The pair streams from now on: engines that can pass a large read on whole (Side.pump).
    to.socket.wholeReads?.();
    this.client.socket.wholeReads?.();
    const hadEarly = this.early !== null;
    const sendProxy = this.target?.sendProxy;
    if (sendProxy !== undefined) this.writeProxyHeader(sendProxy);
    const early = this.early;
    if (early !== null && to.held === null) {
      this.early = null;
      if (to.socket.writeHeld(early, this.earlyLength)) this.ctx.pool.release(early);
      else to.held = early; // the client stays paused until this write drains
    }
    const client = this.client;
    if (client.readEnded) {
      if (to.held !== null) to.finPending = true;
      else to.socket.shutdown();
    } else if (hadEarly && to.held === null) {
      client.socket.resume(); // paused by readWhileWaiting; otherwise it has been reading all along
    }
    transition(this, State.READING, this.ctx.counters);
    this.settle();
    // Filed under the connect timeout; the idle timeout may be shorter.
    this.ctx.wheel.schedule(this);
  }

  /**
   * Writes the PROXY header for this client to the new server connection, before any of the
   * client's bytes: in the same write as the early data when they fit in its buffer together
   * (the usual case: the data moves up by the header's length), else in a write of its own
   * with as much early data as fits; the rest of it follows once that write drains
   * (Side.drained). While the header is held the client is paused, as for any held write.
   */
  private writeProxyHeader(version: 'v1' | 'v2'): void {
    const h = this.header;
    const socket = this.client.socket;
    const dst = h?.hasAddresses ? h.destinationAddress : socket.localAddress;
    const dport = h?.hasAddresses ? h.destinationPort : socket.localPort;
    const n = encodeProxyHeader(
      version,
      HEADER_SCRATCH,
      this.clientAddress,
      this.clientPort,
      dst,
      dport,
    );
    const pool = this.ctx.pool;
    const to = this.server;
    const early = this.early;
    if (early !== null && this.earlyLength + n <= early.length) {
      early.copyWithin(n, 0, this.earlyLength);
      HEADER_SCRATCH.copy(early, 0, 0, n);
      this.earlyLength += n;
      return; // written below as the early data
    }
    const out = pool.acquire();
    HEADER_SCRATCH.copy(out, 0, 0, n);
    let length = n;
    if (early !== null) {
      const fit = out.length - n;
      early.copy(out, n, 0, fit);
      early.copyWithin(0, fit, this.earlyLength);
      this.earlyLength -= fit;
      length += fit;
    }
    if (to.socket.writeHeld(out, length)) {
      pool.release(out);
      return;
    }
    to.held = out;
    if (early === null) this.client.socket.pause(); // resumed when the header drains
  }

  /**
   * Early data still waiting behind the PROXY header (see writeProxyHeader): writes it now.
   * True when that write is held (the server side holds it; the client stays paused).
   */
  writeEarlyRest(): boolean {
    const early = this.early;
    if (early === null) return false;
    this.early = null;
    if (this.server.socket.writeHeld(early, this.earlyLength)) {
      this.ctx.pool.release(early);
      return false;
    }
    this.server.held = early;
    return true;
  }

  /** Moves between READING, WRITING and HALF_CLOSED to match what the sides hold. */
  settle(): void {
    const state = this.state;
    if (state === State.CONNECTING || state === State.CLOSING || state === State.CLOSED) return;
    const c = this.client;
    const s = this.server;
    if (c.held === null && s.held === null) {
      if ((c.readEnded && s.readEnded) || c.closed || s.closed) {
        this.close(this.endReason());
        return;
      }
    }
    const target =
      c.held !== null || s.held !== null
        ? State.WRITING
        : c.readEnded || s.readEnded
          ? State.HALF_CLOSED
          : State.READING;
    transition(this, target, this.ctx.counters);
  }

  private endReason(): SessionEnding {
    if (this.client.readEnded && this.server.readEnded) return Ending.done;
    return this.client.closed ? Ending.client_closed : Ending.server_closed;
  }

  sideError(side: Side, code: string, message: string): void {
    if (side !== this.client && side !== this.server) return; // an abandoned connect attempt
    const isClient = side === this.client;
    if (!isClient && this.state === State.CONNECTING) {
      this.connectFailed(
        LOCAL_ERROR_CODES.has(code) ? Ending.local_error : Ending.connect_failed,
        code,
      );
      return;
    }
    const log = this.ctx.log;
    if (NOISY_CODES.has(code)) {
      log.debug({ conn: this.id, side: side.name, code }, 'peer went away');
    } else {
      this.ctx.limited.write(
        'warn',
        'socket_error',
        { conn: this.id, side: side.name, code, err: message },
        `${side.name} socket error`,
      );
    }
    // A reset or failure on one side resets the other, so neither end mistakes it for a clean
    // finish (a FIN after truncated data would read as a complete reply).
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      this.abort(isClient ? Ending.client_reset : Ending.server_reset, side.peer);
      return;
    }
    this.abort(isClient ? Ending.client_error : Ending.server_error, side.peer);
  }

  sideClosed(side: Side): void {
    if (side !== this.client && side !== this.server) return; // an abandoned connect attempt
    if (this.state === State.CLOSING) {
      if (this.client.closed && this.server.closed) this.finish();
      return;
    }
    if (this.state === State.CONNECTING || this.state === State.QUEUED) {
      // The client left, or the backend socket died before it connected.
      if (side === this.client) this.close(Ending.client_closed);
      else this.connectFailed(Ending.connect_failed, 'closed');
      return;
    }
    // One socket closed: what it still owes its peer (a held write) finishes first.
    this.settle();
  }

  /** Closes both sockets (FIN) and waits for them; idempotent. */
  close(reason: SessionEnding, detail?: string): void {
    if (this.state === State.CLOSING || this.state === State.CLOSED) return;
    this.closeReason = reason;
    if (reason === Ending.internal) {
      this.ctx.limited.write(
        'error',
        'internal',
        { conn: this.id, code: ErrorCode.INTERNAL, detail },
        'bug',
      );
    }
    if (this.state === State.QUEUED) this.backend.dequeue(this, reason === Ending.queue_timeout);
    transition(this, State.CLOSING, this.ctx.counters);
    this.ctx.wheel.cancel(this);
    if (this.early !== null) {
      this.ctx.pool.release(this.early);
      this.early = null;
    }
    // The server slot frees now, so a waiting client can have it.
    const target = this.target;
    this.target = null;
    if (target) this.backend.release(target);
    if (!this.client.closed) this.client.socket.destroy();
    if (!this.server.closed) this.server.socket.destroy();
    if (this.client.closed && this.server.closed) this.finish();
  }

  /** Closes with RST towards `resetSide`, so it sees the failure the other side saw. */
  abort(reason: SessionEnding, resetSide: Side): void {
    if (this.state === State.CLOSING || this.state === State.CLOSED) return;
    if (!resetSide.closed) resetSide.socket.reset();
    this.close(reason);
  }

  /**
   * An exception escaped this session's handling of an engine event (a switchyard bug). It ends
   * this pair only, counted as `internal`; the process and every other pair go on.
   */
  crashed(err: unknown): void {
    const e = err as Error;
    this.ctx.limited.write(
      'error',
      'internal',
      { conn: this.id, code: ErrorCode.INTERNAL, err: e?.message, stack: e?.stack },
      'exception in a connection handler; connection closed',
    );
    try {
      this.abort(Ending.internal, this.client);
    } catch {
      // The state is beyond repair: release the sockets without the bookkeeping.
      if (!this.client.closed) this.client.socket.destroy();
      if (!this.server.closed) this.server.socket.destroy();
    }
  }

  private finish(): void {
    transition(this, State.CLOSED, this.ctx.counters);
    this.ctx.sessionClosed(this);
  }

  // ─── TimerEntry: one coarse wheel for every timeout ───

  deadline(): number {
    switch (this.state) {
      case State.CONNECTING: {
        const limit = this.backend.config.connectTimeout;
        return limit > 0 ? this.waitStartedAt + limit : 0;
      }
      case State.QUEUED: {
        const limit = this.backend.config.queueTimeout;
        return limit > 0 ? this.waitStartedAt + limit : 0;
      }
      case State.CLOSING:
      case State.CLOSED:
        return 0;
      default: {
        const limit = this.halfClosedTimed()
          ? this.ctx.halfClosedTimeoutMs
          : this.ctx.idleTimeoutMs;
        const quiet = limit > 0 ? this.lastActivity + limit : 0;
        const lifetime = this.ctx.maxLifetimeMs;
        if (lifetime <= 0) return quiet;
        const end = this.startedAt + lifetime;
        return quiet === 0 || end < quiet ? end : quiet;
      }
    }
  }

  /** A side has finished and a half-closed timeout is set (`0` leaves the idle timeout in force). */
  private halfClosedTimed(): boolean {
    return (this.client.readEnded || this.server.readEnded) && this.ctx.halfClosedTimeoutMs > 0;
  }

  expire(): void {
    try {
      this.expired();
    } catch (err) {
      this.crashed(err);
    }
  }

  private expired(): void {
    if (this.state === State.CONNECTING) {
      this.connectFailed(Ending.connect_timeout, 'ETIMEDOUT');
      return;
    }
    const lifetime = this.ctx.maxLifetimeMs;
    const reason =
      this.state === State.QUEUED
        ? Ending.queue_timeout
        : lifetime > 0 && this.ctx.wheel.now >= this.startedAt + lifetime
          ? Ending.max_lifetime
          : this.halfClosedTimed()
            ? Ending.half_closed_timeout
            : Ending.idle_timeout;
    this.ctx.log.debug({ conn: this.id, reason }, 'timeout');
    this.close(reason);
  }
}
