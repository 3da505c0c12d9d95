import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { bindServer } from './bind.ts';
import type {
  AcceptHandler,
  ConnectOptions,
  Engine,
  EngineListener,
  EngineOptions,
  EngineSocket,
  ListenOptions,
  ReadBufferPool,
  SocketEvents,
} from './engine.ts';
import { NO_EVENTS } from './engine.ts';
import { loadStreamBase, UV_EOF } from './stream-base.ts';
import { connectTls, listenTls } from './tls-socket.ts';

/**
 * The Node.js engine: libuv TCP handles driven directly, one small object per socket.
 *
 * Why not `net.Socket`: a proxy needs none of its stream machinery, and paid for it on every
 * connection and every chunk. Measured on this machine against HAProxy in the same run
 * (`npm run bench`), `net.Socket` per connection cost about 50 µs of user CPU per churned
 * connection and 6.8 KB of RSS per idle pair, and its Writable queue a callback and a nextTick
 * per write. The handles here are the ones `net.Socket` itself wraps (`tcp_wrap`, `stream_wrap`),
 * reached through `process.binding`, which Node keeps on an allow-list for such users. Where they
 * are missing the engine refuses to start (SWITCHYARD_ERR_ENGINE_UNAVAILABLE) rather than guess.
 * `net.Server` is still used to bind the listener (address parsing, IPv6, SO_REUSEPORT, errors).
 *
 * Reads: every socket reads into ONE buffer per process (`readBuffer`, set with `useUserBuffer`).
 * The loop is single-threaded and the core consumes each chunk before the callback returns, so
 * one buffer serves every connection and no Buffer is allocated per read.
 *
 * Writes: libuv either writes a buffer inside the call or keeps a pointer to it until the write
 * completes; it has no partial "try write" that leaves the rest to the caller. Writing straight
 * from the shared read buffer would let the next read overwrite bytes still queued, so `tryWrite`
 * returns 0 and the core copies the chunk into a pool buffer for `writeHeld` (one memcpy of a
 * cache-warm buffer; the pool buffer goes back at once when the write finished inside the call).
 * A short chunk needs a `subarray` view (the binding takes no offset/length): a small
 * young-generation object, no backing memory. A write request object is allocated only when a
 * write goes asynchronous.
 *
 * Streaming without the copy (`readFrom`): a socket whose read filled the shared buffer is
 * likely mid-transfer, so it gets a pool buffer of its own to read into (`useUserBuffer`). The
 * core writes straight from it; when that write finishes inside the call the socket keeps the
 * buffer, and when it goes asynchronous the core takes the buffer (`lendReadBuffer`), pauses the
 * socket, and the socket takes another pool buffer when it resumes (LIFO: usually the one just
 * released). A short read means the burst is over: the buffer goes back and the socket reads
 * into the shared buffer again. A once-a-second sweep takes the buffer back from a socket that
 * has not read since the last sweep (a transfer that ended on a full read), so an idle socket
 * holds no pool buffer. A socket takes a pool buffer only while reading (not paused) and only
 * when the pool has room, so it never takes one the core would need.
 */
export class NodeEngine implements Engine {
  readonly name = 'node' as const;
  /** The one read buffer every socket of this engine reads into. */
  readonly readBuffer: Buffer;

  constructor(options: EngineOptions) {
    this.readBuffer = Buffer.allocUnsafeSlow(options.readSize);
  }

  async listen(options: ListenOptions, handler: AcceptHandler): Promise<EngineListener> {
    // TLS goes through node:tls sockets (tls-socket.ts); plain TCP stays on bare handles.
    if (options.tls) {
      return listenTls(options, handler, options.tls, this.readBuffer.length, (err) =>
        listenFailed(options, err),
      );
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await bindServer(server, options, (err) => listenFailed(options, err));
    // Errors after a successful bind are accept errors, reported through the handler below.
    server.on('error', () => {});
    // Take over the listening handle's accept callback: each client arrives as a bare TCP handle.
    const listening = (server as unknown as { _handle: ServerHandle | null })._handle;
    if (!listening) throw new SwitchyardError(ErrorCode.LISTEN_FAILED, 'listener has no handle');
    const engine = this;
    listening.onconnection = function onConnection(status: number, client?: TcpHandle) {
      if (status < 0 || !client) {
        // libuv already handles EMFILE by accepting and closing (its reserve-descriptor trick).
        handler.acceptError(status < 0 ? getSystemErrorName(status) : 'EUNKNOWN');
        return;
      }
      if (!handler.admit()) {
        client.close();
        return;
      }
      client.setNoDelay(true);
      const socket = new NodeSocket(client, engine.readBuffer);
      socket.events = handler.accept(socket);
    };
    const address = server.address() as net.AddressInfo;
    return {
      host: address.address,
      port: address.port,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  connect(options: ConnectOptions): EngineSocket {
    if (options.tls) {
      return connectTls(
        options.host,
        options.port,
        options.events,
        options.tls,
        this.readBuffer.length,
      );
    }
    const handle = new binding.TCP(binding.SOCKET);
    handle.setNoDelay(true); // libuv applies it when the socket is created
    const socket = new NodeSocket(handle, this.readBuffer);
    socket.events = options.events;
    socket.connecting = true;
    // The core resolves names (cached, src/core/dns.ts) and hands the engine an IP: no
    // per-connection lookup here, and no getaddrinfo on libuv's thread pool per connect.
    const family = net.isIP(options.host);
    if (family !== 0) startConnect(socket, options.host, options.port, family);
    else socket.fail('EINVAL', `connect: "${options.host}" is not an IP address`);
    return socket;
  }
}

function listenFailed(options: ListenOptions, err: NodeJS.ErrnoException): SwitchyardError {
  return new SwitchyardError(
    ErrorCode.LISTEN_FAILED,
    `cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
    { cause: err },
  );
}

// ─── The bindings ───

/** A libuv TCP handle as `tcp_wrap` exposes it (the subset switchyard uses). */
interface TcpHandle {
  [kOwner]?: NodeSocket;
  onread: (this: TcpHandle) => undefined;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Buffer): void;
  writeBuffer(req: WriteReq, data: Buffer): number;
  shutdown(req: ShutdownReq): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  close(callback?: (this: TcpHandle) => void): void;
  /** Closes with RST (SO_LINGER 0); returns an error when that is not possible. */
  reset(callback?: (this: TcpHandle) => void): number;
  setNoDelay(on: boolean): number;
  getpeername(out: { address?: string; port?: number }): number;
  getsockname(out: { address?: string; port?: number }): number;
}

interface ServerHandle {
  onconnection: (status: number, client?: TcpHandle) => void;
}

interface WriteReq {
  oncomplete: ((this: WriteReq, status: number) => void) | null;
  owner: NodeSocket | null;
  buffer: Buffer | null;
}

interface ShutdownReq {
  oncomplete: ((this: ShutdownReq, status: number) => void) | null;
  owner: NodeSocket | null;
}

interface ConnectReq {
  oncomplete: ((this: ConnectReq, status: number) => void) | null;
  owner: NodeSocket | null;
  address: string;
  port: number;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  SOCKET: number;
  TCPConnectWrap: new () => ConnectReq;
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const binding: Bindings = loadBindings();

function loadBindings(): Bindings {
  try {
    const load = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = load('tcp_wrap') as {
      TCP: Bindings['TCP'];
      TCPConnectWrap: Bindings['TCPConnectWrap'];
      constants: { SOCKET: number };
    };
    const stream = loadStreamBase();
    if (typeof tcp.TCP !== 'function' || stream === null) throw new Error('unexpected shape');
    return {
      TCP: tcp.TCP,
      SOCKET: tcp.constants.SOCKET,
      TCPConnectWrap: tcp.TCPConnectWrap,
      WriteWrap: stream.WriteWrap as unknown as Bindings['WriteWrap'],
      ShutdownWrap: stream.ShutdownWrap as Bindings['ShutdownWrap'],
      streamBaseState: stream.state,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch (err) {
    throw new SwitchyardError(
      ErrorCode.ENGINE_UNAVAILABLE,
      `this Node.js (${process.version}) does not expose the TCP handles the node engine drives`,
      { cause: err },
    );
  }
}

const UV_ECANCELED = -125;

const kOwner = Symbol('switchyard.owner');

/** A write request object for the next write; one is used up only when a write goes async. */
let spareWriteReq: WriteReq | null = null;

/** Sockets holding a pool buffer to read into, for the sweep. */
const ownersOfPoolBuffers = new Set<NodeSocket>();
let sweepTimer: NodeJS.Timeout | null = null;
/** How often a socket that stopped reading gives its pool buffer back; ms. */
const SWEEP_MS = 1000;

function startSweep(): void {
  if (sweepTimer !== null) return;
  sweepTimer = setInterval(sweep, SWEEP_MS);
  sweepTimer.unref();
}

/** Takes the pool buffer back from every socket that has not read since the last sweep. */
function sweep(): void {
  for (const socket of ownersOfPoolBuffers) {
    if (socket.recentReads === 0) socket.returnPoolBuffer();
    else socket.recentReads = 0;
  }
  // Nothing to watch: no timer while no socket streams (idle CPU).
  if (ownersOfPoolBuffers.size === 0 && sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
  }
}

// ─── One socket ───

/** A libuv TCP handle behind the EngineSocket contract. */
class NodeSocket implements EngineSocket {
  events: SocketEvents = NO_EVENTS;
  readonly tls = null;
  readonly handle: TcpHandle;
  readonly readBuffer: Buffer;
  /** Backend connect in flight (reading starts when it completes). */
  connecting = false;
  /** Reading wanted by the core (resume) — actual libuv reading also needs connected, no EOF. */
  wantRead = false;
  /** libuv reading now. */
  reading = false;
  /** EOF seen: libuv stopped reading for good. */
  eof = false;
  /** Our FIN has gone out (shutdown completed). */
  finSent = false;
  /** A shutdown request is with libuv and has not completed: reset() cannot send an RST now. */
  shutdownInFlight = false;
  /** close() or reset() called; `onClose` follows once libuv has closed the handle. */
  closing = false;
  private peer: { address?: string; port?: number } | null = null;
  /** Where streaming reads may take buffers from (readFrom); null: the shared buffer only. */
  pool: ReadBufferPool | null = null;
  /** The pool buffer libuv reads into now; null when it reads into the shared `readBuffer`. */
  own: Buffer | null = null;
  /** The last read was lent to the core: take a pool buffer again on resume. */
  streaming = false;
  /** Reads since the last sweep (the sweep takes `own` back from a socket that had none). */
  recentReads = 0;
  /** During onData: the bytes are in `own`, which the core may take (lendReadBuffer). */
  readBufferLendable = false;

  constructor(handle: TcpHandle, readBuffer: Buffer) {
    this.handle = handle;
    this.readBuffer = readBuffer;
    handle[kOwner] = this;
    handle.onread = handleOnRead;
    handle.useUserBuffer(readBuffer);
  }

  private peerName(): { address?: string; port?: number } {
    if (this.peer === null) {
      const out: { address?: string; port?: number } = {};
      if (!this.closing) this.handle.getpeername(out);
      this.peer = out;
    }
    return this.peer;
  }

  get remoteAddress(): string {
    return this.peerName().address ?? '';
  }
  get remotePort(): number {
    return this.peerName().port ?? 0;
  }
  get localAddress(): string {
    const out: { address?: string } = {};
    if (!this.closing) this.handle.getsockname(out);
    return out.address ?? '';
  }
  get localPort(): number {
    const out: { port?: number } = {};
    if (!this.closing) this.handle.getsockname(out);
    return out.port ?? 0;
  }

  tryWrite(_data: Buffer, _n: number): number {
    return 0;
  }

  readFrom(pool: ReadBufferPool): void {
    this.pool = pool;
  }

  lendReadBuffer(): void {
    if (this.own === null) return;
    // The core owns it now (a write holds it): libuv must not read into it again.
    this.own = null;
    this.readBufferLendable = false;
    this.streaming = true;
    ownersOfPoolBuffers.delete(this);
    if (!this.closing) this.handle.useUserBuffer(this.readBuffer);
  }

  /** Starts reading into a pool buffer of its own, if the pool can spare one. */
  takePoolBuffer(): void {
    const pool = this.pool;
    if (pool === null || this.own !== null || this.closing) return;
    // The pool has one buffer per direction of every session, and a direction holds at most one
    // at a time: this one (reading), or the one its peer's write holds (lent or copied; the
    // socket is paused then and takes none). So it is never short; the check is a guard.
    if (pool.inUse >= pool.capacity) return;
    const buf = pool.acquire();
    this.own = buf;
    this.recentReads = 1;
    this.handle.useUserBuffer(buf);
    ownersOfPoolBuffers.add(this);
    startSweep();
  }

  /** Gives the pool buffer back and reads into the shared buffer again. */
  returnPoolBuffer(): void {
    const buf = this.own;
    if (buf === null) return;
    this.own = null;
    ownersOfPoolBuffers.delete(this);
    if (!this.closing) this.handle.useUserBuffer(this.readBuffer);
    (this.pool as ReadBufferPool).release(buf);
  }

  writeHeld(buf: Buffer, n: number): boolean {
    if (this.closing) return true; // nothing will be written; the close is already on its way
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    const req = spareWriteReq ?? new binding.WriteWrap();
    const err = this.handle.writeBuffer(req, chunk);
    if (err !== 0) {
      spareWriteReq = req;
      this.fail(getSystemErrorName(err), `write ${getSystemErrorName(err)}`);
      return true;
    }
    if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) {
      spareWriteReq = req; // written inside the call: libuv never saw the request object
      return true;
    }
    // libuv keeps `chunk` until it calls req.oncomplete.
    spareWriteReq = null;
    req.oncomplete = writeOnComplete;
    req.owner = this;
    req.buffer = chunk;
    return false;
  }

  pause(): void {
    this.wantRead = false;
    this.syncReading();
  }

  resume(): void {
    this.wantRead = true;
    if (this.streaming) {
      this.streaming = false;
      this.takePoolBuffer();
    }
    this.syncReading();
  }

  /** Makes libuv's reading match what the core wants and what the socket allows. */
  syncReading(): void {
    const should = this.wantRead && !this.connecting && !this.eof && !this.closing;
    if (should === this.reading) return;
    this.reading = should;
    const err = should ? this.handle.readStart() : this.handle.readStop();
    if (err !== 0) this.fail(getSystemErrorName(err), 'read');
  }

  shutdown(): void {
    if (this.closing) return;
    const req = new binding.ShutdownWrap();
    req.oncomplete = shutdownOnComplete;
    req.owner = this;
    // libuv sends the FIN after every queued write (and never inside this call).
    const err = this.handle.shutdown(req);
    if (err !== 0) this.fail(getSystemErrorName(err), 'shutdown');
    else this.shutdownInFlight = true;
  }

  reset(): void {
    if (this.closing) return;
    // uv_tcp_close_reset refuses (EINVAL) while a shutdown is in flight, and has no descriptor to
    // set SO_LINGER on before a connect has started. A refused reset cannot be followed by a
    // close: tcp_wrap marks the handle closing whether or not the reset worked, after which
    // close() returns at once and onClose never comes (sessions stayed in CLOSING for good, with
    // both descriptors). So those cases close instead: the peer then sees our FIN (it was about
    // to go out anyway) where it would have seen an RST.
    if (this.shutdownInFlight || this.connecting) {
      this.destroy();
      return;
    }
    this.closing = true;
    this.reading = false;
    if (this.handle.reset(handleOnClose) !== 0) {
      // Any other refusal (a setsockopt error) leaves the handle in the same state: the
      // descriptor is lost to us, but the core must not wait for a close that cannot come.
      process.nextTick(handleOnClose.bind(this.handle));
    }
  }

  destroy(): void {
    if (this.closing) return;
    this.closing = true;
    this.reading = false;
    this.handle.close(handleOnClose);
  }

  /** Reports an error, then closes. The report is deferred: the core may be mid-call. */
  fail(code: string, message: string): void {
    if (this.closing) return;
    this.destroy();
    const events = this.events;
    process.nextTick(reportError, events, code, message);
  }
}

function reportError(events: SocketEvents, code: string, message: string): void {
  events.onError(code, message);
}

// ─── libuv callbacks: named functions, `this` is the handle or request ───

function handleOnRead(this: TcpHandle): undefined {
  const socket = this[kOwner] as NodeSocket;
  const n = binding.streamBaseState[binding.kReadBytesOrError] as number;
  if (n > 0) {
    const own = socket.own;
    if (own === null) {
      socket.events.onData(socket.readBuffer, n);
      // A full read: more is probably coming. Read the next ones into a pool buffer.
      if (n === socket.readBuffer.length && socket.pool !== null && socket.reading) {
        socket.takePoolBuffer();
      }
      return;
    }
    socket.recentReads++;
    socket.readBufferLendable = true;
    socket.events.onData(own, n);
    socket.readBufferLendable = false;
    // Not lent, and a short read: the burst is over, the buffer goes back.
    if (socket.own !== null && n < own.length) socket.returnPoolBuffer();
    return;
  }
  if (n === 0) return;
  // libuv stopped reading on its own (EOF or error).
  socket.reading = false;
  if (n === UV_EOF) {
    socket.eof = true;
    socket.events.onEnd();
    // FIN both ways: nothing more can move on this socket, so it closes, as net.Socket and Bun do.
    if (socket.finSent) socket.destroy();
    return;
  }
  const code = getSystemErrorName(n);
  socket.fail(code, `read ${code}`);
}

function handleOnClose(this: TcpHandle): void {
  const socket = this[kOwner] as NodeSocket;
  this[kOwner] = undefined;
  socket.returnPoolBuffer(); // libuv reads no more: the buffer is free
  const events = socket.events;
  socket.events = NO_EVENTS;
  events.onClose();
}

function writeOnComplete(this: WriteReq, status: number): void {
  const socket = this.owner as NodeSocket;
  this.owner = null;
  this.buffer = null;
  if (status === 0) {
    socket.events.onDrain();
    return;
  }
  if (status === UV_ECANCELED) return; // the socket was closed under the write
  const code = getSystemErrorName(status);
  socket.fail(code, `write ${code}`);
}

function shutdownOnComplete(this: ShutdownReq, status: number): void {
  const socket = this.owner as NodeSocket;
  this.owner = null;
  socket.shutdownInFlight = false;
  // A failed shutdown (the peer already reset) surfaces as a read error or a close.
  if (status !== 0 || socket.closing) return;
  socket.finSent = true;
  if (socket.eof) socket.destroy();
}

function startConnect(socket: NodeSocket, address: string, port: number, family: number): void {
  const req = new binding.TCPConnectWrap();
  req.oncomplete = connectOnComplete;
  req.owner = socket;
  req.address = address;
  req.port = port;
  const err =
    family === 6
      ? socket.handle.connect6(req, address, port)
      : socket.handle.connect(req, address, port);
  if (err !== 0) {
    const code = getSystemErrorName(err);
    socket.fail(code, `connect ${code} ${address}:${port}`);
  }
}

function connectOnComplete(this: ConnectReq, status: number): void {
  const socket = this.owner as NodeSocket;
  this.owner = null;
  if (socket.closing) return;
  socket.connecting = false;
  if (status !== 0) {
    const code = getSystemErrorName(status);
    socket.fail(code, `connect ${code} ${this.address}:${this.port}`);
    return;
  }
  // Reading starts now: the backend may speak first.
  socket.wantRead = true;
  socket.syncReading();
  socket.events.onOpen();
}
