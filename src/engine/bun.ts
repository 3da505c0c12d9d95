import { closeSync, openSync } from 'node:fs';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { ipFamily } from '../units.ts';
import {
  type BunListener,
  type BunRuntime,
  type BunSocketHandler,
  type BunSystemError,
  type BunTcpSocket,
  bunRuntime,
} from './bun-types.ts';
import type {
  AcceptHandler,
  ConnectOptions,
  Engine,
  EngineListener,
  EngineOptions,
  EngineSocket,
  ListenOptions,
  SocketEvents,
} from './engine.ts';
import { NO_EVENTS } from './engine.ts';
import { connectTls, listenTls } from './tls-socket.ts';

/**
 * The Bun engine: `Bun.listen` / `Bun.connect` sockets, all driven by ONE handlers object
 * (`HANDLERS`, named top-level functions); each socket's state is its `BunEngineSocket`, kept in
 * the Bun socket's `data`.
 *
 * Reads: Bun reads into one receive buffer per event loop (512 KiB, uSockets') and hands `data`
 * a NEW Buffer per read, a copy of exactly the bytes read. That allocation is Bun's and cannot be
 * turned off (`binaryType` only picks Buffer, Uint8Array or ArrayBuffer, each a fresh copy).
 * Measured (paired A/B, 1 MiB transfers, proxy pinned): `binaryType` "uint8array" and
 * "arraybuffer" (wrapped by a Buffer view) cost the same CPU per GiB as the default Buffer (paired
 * median ratios 0.96 and 1.00, spread ±20 %), so the default stays. In a bulk profile that copy
 * is ~7 % (libc memmove) and the fresh allocations' page faults, zeroing and unmapping ~9 %; only
 * a Bun API that reads into a caller's buffer would remove them.
 * A read can be up to 512 KiB, larger than the core's pool buffers. Once a pair streams the core
 * asks for `wholeReads`: the chunk (Bun's fresh allocation, ours to keep) goes on in one
 * `onData`, so one write passes it on where readSize pieces took one write each (a 1 MiB
 * transfer: ~66 writes of 16 KiB for ~4 reads, strace), and what the peer does not take now is
 * held as it is, not copied. Before that (the preamble, a client read while its server
 * connects) a longer chunk is passed on in `readSize` pieces (views on Bun's chunk, no copy);
 * when the core pauses between two pieces the rest stays here and is passed on after `resume`
 * before the socket reads again.
 *
 * Writes: a Bun TCP socket's `write(buf, offset, length)` writes what the kernel takes now,
 * returns that count and keeps nothing, so `tryWrite` writes straight from the caller's memory
 * and the core copies only the part not taken. `writeHeld` remembers (buffer, offset, end) and
 * writes the rest from the `drain` handler. Bun allocates nothing per write.
 *
 * Events the core causes (a close inside `end()`/`terminate()`, a failed connect) reach it from
 * a microtask, never from inside the call that caused them, as with Node's next-tick events: the
 * core tears a pair down with two calls in a row and expects no callback between them.
 *
 * Idle CPU, measured (4,000 idle proxied connections, 10 s windows): 0.2 % in the first 10 s
 * after the connections open, 0.1 % until ~30 s, then 0.02–0.03 %. The transient is Bun's
 * GarbageCollectionController: after the heap grew it runs an eden collection every second (about
 * 1 ms each with 8,000 sockets, BUN_JSC_logGC) for 30 quiet ticks, then every 30 s; with
 * BUN_GC_TIMER_DISABLE=1 the first window is 0.04 %. The steady 1 s and 4 s wakeups are Bun's too
 * (a bare Bun.listen holding 4,000 sockets shows them, 0.01–0.03 %); the timer wheel adds none.
 *
 * Limitation, measured: a connect given up while still in progress (connect timeout, client
 * gone) is NOT cancelled. `Bun.connect` returns only a promise, no handle to close before `open`,
 * so the core gets its onClose at once but the descriptor stays with Bun until the connect ends:
 * when the server accepts (then `connectOpened` ends it, and it is gone within a second, server
 * silent or not) or the kernel gives up on the SYN, about 127 s with Linux's default
 * tcp_syn_retries=6. With 20 connects to a listener whose backlog was full (SYNs dropped), all 20
 * were destroyed and all 20 descriptors were still open a second later on Bun; 0 on the node
 * engine, which closes the libuv handle under the connect. A server that drops SYNs under load
 * thus costs the Bun engine one descriptor per timed-out attempt for up to two minutes.
 */
export class BunEngine implements Engine {
  readonly name = 'bun' as const;
  /** The largest chunk `onData` delivers: the size of the core's pool buffers. */
  readonly readSize: number;
  readonly bun: BunRuntime;
  /** Sockets with work for the microtask: a close to report or a held-back read to pass on. */
  readonly queue: BunEngineSocket[] = [];
  flushScheduled = false;
  /** Bound once: the microtask callback. */
  readonly flush: () => void;

  constructor(options: EngineOptions) {
    const bun = bunRuntime();
    if (!bun) throw new SwitchyardError(ErrorCode.ENGINE_UNAVAILABLE, 'not running on Bun');
    this.bun = bun;
    this.readSize = options.readSize;
    this.flush = flushQueue.bind(this);
  }

  async listen(options: ListenOptions, handler: AcceptHandler): Promise<EngineListener> {
    // TLS goes through Bun's node:tls (tls-socket.ts says why); plain TCP stays on Bun.listen.
    if (options.tls) {
      return listenTls(
        options,
        handler,
        options.tls,
        this.readSize,
        (err) =>
          new SwitchyardError(
            ErrorCode.LISTEN_FAILED,
            `cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
            { cause: err },
          ),
      );
    }
    let listener: BunListener<SocketData>;
    try {
      // Bun.listen takes no backlog: uSockets asks listen(2) for its own (512). The kernel caps
      // it with net.core.somaxconn either way.
      listener = this.bun.listen<SocketData>({
        hostname: options.host,
        port: options.port,
        reusePort: options.reusePort ?? false,
        allowHalfOpen: true,
        // Every accepted socket starts with this as its `data`; `open` replaces it.
        data: new ListenContext(this, handler),
        socket: HANDLERS,
      });
    } catch (err) {
      const e = err as BunSystemError;
      throw new SwitchyardError(
        ErrorCode.LISTEN_FAILED,
        `cannot listen on ${options.host}:${options.port}: ${e.code ?? e.message}`,
        { cause: err },
      );
    }
    return {
      host: listener.hostname,
      port: listener.port,
      close: async () => listener.stop(false),
    };
  }

  connect(options: ConnectOptions): EngineSocket {
    if (options.tls) {
      return connectTls(options.host, options.port, options.events, options.tls, this.readSize);
    }
    const s = new BunEngineSocket(this, null);
    s.events = options.events;
    // The core resolves names (cached, src/core/dns.ts) and hands the engine an IP; Bun.connect
    // would look a name up on every connect.
    if (ipFamily(options.host) === 0) {
      s.fail('EINVAL', `connect: "${options.host}" is not an IP address`);
      return s;
    }
    try {
      // The promise needs no catch: with `connectError` set, Bun does not report its rejection.
      this.bun.connect<SocketData>({
        hostname: options.host,
        port: options.port,
        allowHalfOpen: true,
        data: s,
        socket: HANDLERS,
      });
    } catch (err) {
      const e = err as BunSystemError;
      s.fail(e.code ?? 'EINVAL', e.message);
    }
    return s;
  }

  /** Runs `s`'s pending work from a microtask. */
  defer(s: BunEngineSocket): void {
    if (s.queued) return;
    s.queued = true;
    this.queue.push(s);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
  }
}

function flushQueue(this: BunEngine): void {
  this.flushScheduled = false;
  const queue = this.queue;
  // Work done here may queue more sockets; they are taken in the same pass.
  for (let i = 0; i < queue.length; i++) {
    const s = queue[i] as BunEngineSocket;
    s.queued = false;
    if (s.closeDue) s.deliverClose();
    else if (s.rest !== null && !s.paused) s.deliverRest();
  }
  queue.length = 0;
}

/** What an accepted socket's `data` is until `open` has made it a BunEngineSocket. */
class ListenContext {
  readonly engine: BunEngine;
  readonly handler: AcceptHandler;

  constructor(engine: BunEngine, handler: AcceptHandler) {
    this.engine = engine;
    this.handler = handler;
  }
}

type SocketData = BunEngineSocket | ListenContext;
type BunSocket = BunTcpSocket<SocketData>;

/** A Bun TCP socket behind the EngineSocket contract; it is also that socket's `data`. */
class BunEngineSocket implements EngineSocket {
  events: SocketEvents = NO_EVENTS;
  readonly tls = null;
  readonly engine: BunEngine;
  /** The Bun socket; null while a connect is in progress. */
  socket: BunSocket | null;

  /** The core asked for no reads (pause) and has not resumed yet. */
  paused = false;
  /** Bun is not polling this socket for reads. Stays true while `rest` is being passed on. */
  bunPaused = false;

  /** Held write: `held[heldOffset..heldEnd)` is still to be written; null when none. */
  held: Buffer | null = null;
  heldOffset = 0;
  heldEnd = 0;

  /** Held-back read: `rest[restOffset..)` of a chunk larger than readSize; null when none. */
  rest: Buffer | null = null;
  restOffset = 0;

  /** `shutdown` was asked while a held write (or the connect) was still in progress. */
  shutdownPending = false;
  /** We sent FIN. */
  finSent = false;
  /** `onEnd` was delivered. */
  readEnded = false;
  /** The core closed or reset this socket. */
  closing = false;
  /** `onClose` is due (Bun closed the socket, or the core closed it before it opened). */
  closeDue = false;
  /** `onClose` was delivered; nothing more is. */
  closeDelivered = false;
  /** The peer's FIN is the reason for a clean close: report `onEnd` before `onClose`. */
  endOnClose = false;
  /** System code to report with `onError` before `onClose`; '' when the close was clean. */
  errorCode = '';
  errorMessage = '';
  /** In the engine's microtask queue. */
  queued = false;
  /** The core takes a read longer than readSize whole (wholeReads). */
  whole = false;

  constructor(engine: BunEngine, socket: BunSocket | null) {
    this.engine = engine;
    this.socket = socket;
  }

  get remoteAddress(): string {
    return this.socket?.remoteAddress ?? '';
  }
  get remotePort(): number {
    return this.socket?.remotePort ?? 0;
  }
  get localAddress(): string {
    return this.socket?.localAddress ?? '';
  }
  get localPort(): number {
    return this.socket?.localPort ?? 0;
  }

  tryWrite(data: Buffer, n: number): number {
    const socket = this.socket;
    if (socket === null || this.held !== null || this.closing) return 0;
    const written = socket.write(data, 0, n);
    // -1: Bun has closed the socket; its `close` (or `connectError`) reports why.
    return Math.max(written, 0);
  }

  writeHeld(buf: Buffer, n: number): boolean {
    const socket = this.socket;
    let written = 0;
    if (socket !== null && !this.closing) {
      written = socket.write(buf, 0, n);
      if (written === n) return true;
      if (written < 0) written = 0;
    }
    // The rest goes out from `drain` (Bun emits one after open too, for a connect in progress).
    this.held = buf;
    this.heldOffset = written;
    this.heldEnd = n;
    return false;
  }

  wholeReads(): void {
    this.whole = true;
  }

  pause(): void {
    this.paused = true;
    const socket = this.socket;
    if (socket !== null && !this.bunPaused && !this.closeDue) {
      socket.pause();
      this.bunPaused = true;
    }
  }

  resume(): void {
    this.paused = false;
    // A held-back read goes first, from the microtask; Bun reads again once it is passed on.
    if (this.rest !== null) this.engine.defer(this);
    else this.resumeReading();
  }

  shutdown(): void {
    if (this.finSent || this.closing || this.closeDue) return;
    const socket = this.socket;
    if (socket === null || this.held !== null) {
      this.shutdownPending = true;
      return;
    }
    this.finSent = true;
    socket.shutdown();
  }

  reset(): void {
    if (this.closing || this.closeDelivered) return;
    this.closing = true;
    const socket = this.socket;
    // `close` runs inside terminate(); the socket is already marked, so it only schedules onClose.
    if (socket !== null && !this.closeDue) socket.terminate();
    this.closeLater();
  }

  destroy(): void {
    if (this.closing || this.closeDelivered) return;
    this.closing = true;
    const socket = this.socket;
    if (socket !== null && !this.closeDue) socket.end();
    this.closeLater();
  }

  // ─── Engine side ───

  resumeReading(): void {
    const socket = this.socket;
    if (socket !== null && this.bunPaused && !this.paused && !this.closeDue) {
      this.bunPaused = false;
      socket.resume();
    }
  }

  /**
   * Passes `rest` on in readSize pieces until the core pauses or the chunk is done (the rest at
   * once when the core takes whole reads).
   */
  deliverRest(): void {
    const chunk = this.rest as Buffer;
    const max = this.whole ? chunk.length : this.engine.readSize;
    const length = chunk.length;
    while (this.restOffset < length) {
      if (this.paused) return; // the rest waits for resume()
      if (this.closing || this.closeDue) break; // nowhere to go: dropped, like unread kernel bytes
      const start = this.restOffset;
      const end = Math.min(start + max, length);
      this.restOffset = end;
      this.events.onData(chunk.subarray(start, end), end - start);
    }
    this.rest = null;
    this.restOffset = 0;
    this.resumeReading();
  }

  /** Marks the socket closed (with `code` as the reason) and reports it from the microtask. */
  fail(code: string, message: string): void {
    if (this.closeDue || this.closeDelivered) return;
    if (!this.closing) {
      this.errorCode = code;
      this.errorMessage = message;
    }
    this.closeLater();
  }

  closeLater(): void {
    if (this.closeDelivered) return;
    this.closeDue = true;
    this.engine.defer(this);
  }

  /** onEnd (peer FIN) or onError, then onClose; once, last. */
  deliverClose(): void {
    if (this.closeDelivered) return;
    this.closeDelivered = true;
    // Whatever the socket still held is over: the core frees its buffer in onClose.
    this.held = null;
    this.rest = null;
    const events = this.events;
    this.events = NO_EVENTS;
    if (this.errorCode !== '') events.onError(this.errorCode, this.errorMessage);
    else if (this.endOnClose) events.onEnd();
    events.onClose();
  }
}

// ─── The one handlers object every Bun socket of this engine shares ───

function socketOnOpen(socket: BunSocket): void {
  const data = socket.data;
  if (data instanceof BunEngineSocket) {
    connectOpened(data, socket);
    return;
  }
  // Accepted. The cap is checked before anything is allocated for the connection.
  if (!data.handler.admit()) {
    socket.end();
    return;
  }
  // Not read until the core resumes it. No read can arrive before this handler returns, so Bun
  // is told to pause only if the core has not resumed the socket inside accept(): it usually has
  // (it reads the client while the backend connects), and a pause undone at once costs Bun three
  // epoll_ctl, a setsockopt(TCP_CORK) and a drain callback (strace, one connection).
  // No setNoDelay: Bun sets TCP_NODELAY on every accepted and connected socket itself.
  const s = new BunEngineSocket(data.engine, socket);
  s.paused = true;
  socket.data = s;
  s.events = data.handler.accept(s);
  if (s.paused && !s.bunPaused && !s.closing && !s.closeDue) {
    socket.pause();
    s.bunPaused = true;
  }
}

function connectOpened(s: BunEngineSocket, socket: BunSocket): void {
  if (s.closing) {
    // The core gave up on this connect (timeout, client gone) and has had its onClose. Only now
    // can it be closed: Bun gives no handle to cancel a connect in progress (see the class doc).
    socket.end();
    return;
  }
  s.socket = socket;
  if (s.paused) {
    socket.pause();
    s.bunPaused = true;
  }
  s.events.onOpen();
  if (s.shutdownPending && s.held === null && !s.closing) {
    s.shutdownPending = false;
    s.shutdown();
  }
}

function socketOnData(socket: BunSocket, chunk: Buffer): void {
  // Only sockets past `open` read, and `open` made their data a BunEngineSocket.
  const s = socket.data as BunEngineSocket;
  const n = chunk.length;
  if (n <= s.engine.readSize || s.whole) {
    s.events.onData(chunk, n);
    return;
  }
  s.rest = chunk;
  s.restOffset = 0;
  s.deliverRest();
}

function socketOnDrain(socket: BunSocket): void {
  const s = socket.data as BunEngineSocket;
  const buf = s.held;
  // Bun also calls drain after open and after resume, with nothing of ours waiting.
  if (buf === null || s.closing) return;
  const written = socket.write(buf, s.heldOffset, s.heldEnd - s.heldOffset);
  if (written > 0) s.heldOffset += written;
  // Short again: Bun calls drain once more when writable. -1: closed, `close` follows.
  if (s.heldOffset < s.heldEnd) return;
  s.held = null;
  if (s.shutdownPending) {
    s.shutdownPending = false;
    s.shutdown();
  }
  s.events.onDrain();
}

function socketOnEnd(socket: BunSocket): void {
  const s = socket.data as BunEngineSocket;
  if (s.closeDue || s.closeDelivered) return;
  s.readEnded = true;
  s.events.onEnd();
}

function socketOnClose(socket: BunSocket, error?: BunSystemError): void {
  const s = socket.data;
  // A client turned away at the cap, or a connect the core had already given up on.
  if (!(s instanceof BunEngineSocket) || s.closeDue || s.closeDelivered) return;
  if (error) {
    s.fail(error.code ?? 'EUNKNOWN', error.message);
    return;
  }
  // uSockets closes a socket that gets FIN after sending its own, without calling `end`: that
  // close is the peer's FIN, and the core must see it as one.
  if (s.finSent && !s.readEnded && !s.closing) s.endOnClose = true;
  s.closeLater();
}

function socketOnConnectError(socket: BunSocket, error: BunSystemError): void {
  const s = socket.data as BunEngineSocket;
  const code = error.code ?? 'ECONNREFUSED';
  s.fail(code === 'ECONNREFUSED' ? (ownShortage() ?? code) : code, error.message);
}

/**
 * Bun (1.4) reports a connect that could not even create its socket (EMFILE, ENFILE) as
 * ECONNREFUSED, which would blame the server for this process's shortage. Opening one descriptor
 * tells them apart: it fails the same way when the shortage is ours. Only failed connects pay
 * for it (an open and a close); a shortage that ended in between reads as the server's refusal.
 */
function ownShortage(): string | null {
  try {
    closeSync(openSync('/dev/null', 'r'));
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? code : null;
  }
}

/**
 * Bun calls this when one of the handlers above threw, i.e. a switchyard bug (the core's strict
 * state checks throw too). Bun would leave the socket open: it is torn down here, once, and the
 * error is rethrown outside the handler so it surfaces as an uncaught exception (Bun prints it)
 * instead of being swallowed.
 */
function socketOnHandlerError(socket: BunSocket, error: Error): void {
  const s = socket.data;
  if (s instanceof BunEngineSocket && !s.closing) {
    s.closing = true;
    socket.terminate();
    s.closeLater();
  }
  queueMicrotask(() => {
    throw error;
  });
}

const HANDLERS: BunSocketHandler<SocketData> = {
  open: socketOnOpen,
  data: socketOnData,
  drain: socketOnDrain,
  end: socketOnEnd,
  close: socketOnClose,
  error: socketOnHandlerError,
  connectError: socketOnConnectError,
};
