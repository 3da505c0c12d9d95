import type { Logger } from 'pino';
import type { EngineSocket, SocketEvents } from '../engine/engine.ts';
import { ErrorCode, NOISY_CODES } from '../errors.ts';
import type { BufferPool } from './buffer-pool.ts';
import { State, type StateCounters, transition } from './state.ts';
import type { TimerEntry, TimerWheel } from './timer-wheel.ts';

/** Why a pair ended; one per closed connection (access logs and metrics use it). */
export const CloseReason = {
  /** Both sides finished with FIN. */
  DONE: 'done',
  CLIENT_RESET: 'client_reset',
  SERVER_RESET: 'server_reset',
  /** The side closed after passing on everything (FIN from one side, peer gone). */
  CLIENT_CLOSED: 'client_closed',
  SERVER_CLOSED: 'server_closed',
  CONNECT_FAILED: 'connect_failed',
  CONNECT_TIMEOUT: 'connect_timeout',
  IDLE_TIMEOUT: 'idle_timeout',
  HALF_CLOSED_TIMEOUT: 'half_closed_timeout',
  CLIENT_ERROR: 'client_error',
  SERVER_ERROR: 'server_error',
  /** Closed by the operator or by shutdown. */
  KILLED: 'killed',
  /** A switchyard bug was caught (e.g. a read while the peer still held bytes). */
  INTERNAL: 'internal',
} as const;

export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/** What every session of one proxy shares. */
export interface SessionContext {
  readonly pool: BufferPool;
  readonly wheel: TimerWheel;
  readonly counters: StateCounters;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly halfClosedTimeoutMs: number;
  /** Opens the backend socket for a new session. */
  connectBackend(events: SocketEvents): EngineSocket;
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
    this.session.backendOpen();
  }

  // ─── The data path. Bytes arrive here, go to the peer, and stop here when the peer is full. ───

  onData(data: Buffer, n: number): void {
    const session = this.session;
    session.lastActivity = session.ctx.wheel.now;
    this.bytesRead += n;
    const to = this.peer;
    if (to.closed) return; // the peer is gone and the pair is being torn down: nowhere to go
    if (to.held !== null) {
      // The engine delivered a read after pause(): forwarding now would reorder bytes.
      session.close(CloseReason.INTERNAL, 'read while the peer still held bytes');
      return;
    }
    // 1. Try to hand the bytes to the peer's socket straight from the engine's read buffer.
    const taken = to.socket.tryWrite(data, n);
    if (taken === n) return;
    // 2. The rest moves into a pool buffer, which is written from and kept until the write is done.
    const pool = session.ctx.pool;
    const buf = pool.acquire();
    data.copy(buf, 0, taken, n);
    if (to.socket.writeHeld(buf, n - taken)) {
      pool.release(buf); // written inside the call: nothing is pending
      return;
    }
    // 3. Backpressure: the peer cannot take more now. Stop reading this side until it drains.
    to.held = buf;
    this.socket.pause();
    session.settle();
  }

  /** The held write on this side's socket completed: free the buffer, resume the peer. */
  onDrain(): void {
    const buf = this.held;
    if (buf === null) return;
    this.held = null;
    const session = this.session;
    session.ctx.pool.release(buf);
    session.lastActivity = session.ctx.wheel.now;
    if (this.finPending) {
      this.finPending = false;
      this.socket.shutdown();
    }
    const from = this.peer;
    // 4. Resume reading where it stopped.
    if (!from.readEnded && !from.closed) from.socket.resume();
    session.settle();
  }

  // ─── Endings ───

  /** FIN from this side: pass it on as FIN; the other direction keeps flowing. */
  onEnd(): void {
    this.readEnded = true;
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
    this.session.sideError(this, code, message);
  }

  onClose(): void {
    this.closed = true;
    const buf = this.held;
    if (buf !== null) {
      // The socket is closed, so the engine's write of this buffer is over (done or cancelled).
      this.held = null;
      this.session.ctx.pool.release(buf);
    }
    this.session.sideClosed();
  }
}

let nextId = 1;

/**
 * A client connection and its backend connection. States, timeouts and teardown live here;
 * the bytes move in Side.onData / Side.onDrain above.
 */
export class Session implements TimerEntry {
  readonly id = nextId++;
  readonly ctx: SessionContext;
  readonly client: Side;
  readonly server: Side;
  state: State = State.CLOSED;
  readonly startedAt: number;
  /** Wheel time of the last byte or FIN in either direction. */
  lastActivity: number;
  /** Wheel time the backend connected, or 0. */
  connectedAt = 0;
  closeReason: CloseReason | null = null;
  wheelSlot = -1;
  wheelIndex = 0;

  constructor(ctx: SessionContext, clientSocket: EngineSocket) {
    this.ctx = ctx;
    this.startedAt = ctx.wheel.now;
    this.lastActivity = this.startedAt;
    this.client = new Side(this, 'client', clientSocket);
    transition(this, State.CONNECTING, ctx.counters);
    // The backend connect starts now, at accept time; the client is not read until it is up.
    this.server = new Side(this, 'server', clientSocket);
    this.server.socket = ctx.connectBackend(this.server);
    this.client.peer = this.server;
    this.server.peer = this.client;
    ctx.wheel.schedule(this);
  }

  backendOpen(): void {
    if (this.state !== State.CONNECTING) return; // timed out or the client left meanwhile
    this.connectedAt = this.ctx.wheel.now;
    this.lastActivity = this.connectedAt;
    transition(this, State.CONNECTED, this.ctx.counters);
    this.client.socket.resume();
    transition(this, State.READING, this.ctx.counters);
    // Filed under the connect timeout; the idle timeout may be shorter.
    this.ctx.wheel.schedule(this);
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

  private endReason(): CloseReason {
    if (this.client.readEnded && this.server.readEnded) return CloseReason.DONE;
    return this.client.closed ? CloseReason.CLIENT_CLOSED : CloseReason.SERVER_CLOSED;
  }

  sideError(side: Side, code: string, message: string): void {
    const isClient = side === this.client;
    const log = this.ctx.log;
    if (NOISY_CODES.has(code)) {
      log.debug({ conn: this.id, side: side.name, code }, 'peer went away');
    } else {
      log.warn({ conn: this.id, side: side.name, code, err: message }, `${side.name} socket error`);
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      // A reset on one side resets the other, so neither end mistakes it for a clean finish.
      this.abort(isClient ? CloseReason.CLIENT_RESET : CloseReason.SERVER_RESET, side.peer);
      return;
    }
    if (!isClient && this.state === State.CONNECTING) {
      this.close(CloseReason.CONNECT_FAILED);
      return;
    }
    this.close(isClient ? CloseReason.CLIENT_ERROR : CloseReason.SERVER_ERROR);
  }

  sideClosed(): void {
    if (this.state === State.CLOSING) {
      if (this.client.closed && this.server.closed) this.finish();
      return;
    }
    if (this.state === State.CONNECTING) {
      // The client left (or the backend socket died) before the backend connected.
      this.close(this.client.closed ? CloseReason.CLIENT_CLOSED : CloseReason.CONNECT_FAILED);
      return;
    }
    // One socket closed: what it still owes its peer (a held write) finishes first.
    this.settle();
  }

  /** Closes both sockets (FIN) and waits for them; idempotent. */
  close(reason: CloseReason, detail?: string): void {
    if (this.state === State.CLOSING || this.state === State.CLOSED) return;
    this.closeReason = reason;
    if (reason === CloseReason.INTERNAL) {
      this.ctx.log.error({ conn: this.id, code: ErrorCode.ILLEGAL_TRANSITION, detail }, 'bug');
    }
    transition(this, State.CLOSING, this.ctx.counters);
    this.ctx.wheel.cancel(this);
    if (!this.client.closed) this.client.socket.destroy();
    if (!this.server.closed) this.server.socket.destroy();
    if (this.client.closed && this.server.closed) this.finish();
  }

  /** Closes with RST towards `resetSide`, so it sees the failure the other side saw. */
  abort(reason: CloseReason, resetSide: Side): void {
    if (this.state === State.CLOSING || this.state === State.CLOSED) return;
    if (!resetSide.closed) resetSide.socket.reset();
    this.close(reason);
  }

  private finish(): void {
    transition(this, State.CLOSED, this.ctx.counters);
    this.ctx.sessionClosed(this);
  }

  // ─── TimerEntry: one coarse wheel for every timeout ───

  deadline(): number {
    switch (this.state) {
      case State.CONNECTING:
        return this.ctx.connectTimeoutMs > 0 ? this.startedAt + this.ctx.connectTimeoutMs : 0;
      case State.CLOSING:
      case State.CLOSED:
        return 0;
      default: {
        const halfClosed = this.client.readEnded || this.server.readEnded;
        const limit = halfClosed ? this.ctx.halfClosedTimeoutMs : this.ctx.idleTimeoutMs;
        return limit > 0 ? this.lastActivity + limit : 0;
      }
    }
  }

  expire(): void {
    const reason =
      this.state === State.CONNECTING
        ? CloseReason.CONNECT_TIMEOUT
        : this.client.readEnded || this.server.readEnded
          ? CloseReason.HALF_CLOSED_TIMEOUT
          : CloseReason.IDLE_TIMEOUT;
    this.ctx.log.debug({ conn: this.id, reason }, 'timeout');
    this.close(reason);
  }
}
