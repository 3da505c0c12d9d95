import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ErrorCode, SwitchyardError } from '../errors.ts';
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

/**
 * The Node.js engine: `node:net` sockets in `onread` mode.
 *
 * Reads: every socket reads into ONE buffer per process (`readBuffer`), handed to libuv through
 * the `onread` option. The event loop is single-threaded and the core consumes each chunk before
 * the callback returns, so one buffer serves every connection and no Buffer is allocated per read.
 *
 * Writes: Node has no partial "try write": `socket.write()` either finishes inside the call or
 * keeps a pointer to the caller's memory until it completes. Writing straight from the shared
 * read buffer would let the next read overwrite bytes still queued, so `tryWrite` returns 0 and
 * the core copies the chunk into a pool buffer for `writeHeld` (one memcpy of a cache-warm
 * buffer; the pool buffer goes back at once when the write finished inside the call).
 * Node itself allocates per write: a WriteWrap, and for a short chunk the core's `subarray` view
 * (the `write` API takes no offset/length). Both are small young-generation objects; neither
 * allocates backing memory.
 */
export class NodeEngine implements Engine {
  readonly name = 'node' as const;
  /** The one read buffer every socket of this engine reads into. */
  readonly readBuffer: Buffer;
  /** Whether sockets write straight to the libuv handle (see `streamWrap`). */
  readonly directWrites: boolean;

  constructor(options: EngineOptions) {
    this.readBuffer = Buffer.allocUnsafeSlow(options.readSize);
    this.directWrites = streamWrap !== null && options.directWrites !== false;
  }

  async listen(options: ListenOptions, handler: AcceptHandler): Promise<EngineListener> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new SwitchyardError(
            ErrorCode.LISTEN_FAILED,
            `cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
            { cause: err },
          ),
        );
      });
      server.listen(
        {
          host: options.host,
          port: options.port,
          backlog: options.backlog,
          reusePort: options.reusePort ?? false,
          ipv6Only: false,
        },
        resolve,
      );
    });
    // Errors after a successful bind are accept errors, reported through the handler below.
    server.on('error', () => {});
    // net.Server would wrap each client in a net.Socket without `onread`, which then reads into
    // a new Buffer per chunk, and it has no option to change that. So switchyard takes over the
    // listening handle's accept callback and builds the client socket itself, in onread mode.
    const handle = (server as unknown as { _handle: ServerHandle | null })._handle;
    if (!handle) throw new SwitchyardError(ErrorCode.LISTEN_FAILED, 'listener has no handle');
    const engine = this;
    handle.onconnection = function onConnection(status: number, client?: ClientHandle) {
      if (status < 0 || !client) {
        handler.acceptError(status < 0 ? getSystemErrorName(status) : 'EUNKNOWN');
        return;
      }
      if (!handler.admit()) {
        client.close();
        return;
      }
      client.setNoDelay(true);
      const socket = new net.Socket({
        handle: client,
        allowHalfOpen: true,
        pauseOnCreate: true,
        readable: true,
        writable: true,
        onread: { buffer: engine.readBuffer, callback: socketOnRead },
      } as unknown as net.SocketConstructorOpts);
      const wrapped = new NodeSocket(socket, engine);
      wrapped.events = handler.accept(wrapped);
    };
    const address = server.address() as net.AddressInfo;
    return {
      host: address.address,
      port: address.port,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  connect(options: ConnectOptions): EngineSocket {
    const socket = new net.Socket({
      allowHalfOpen: true,
      onread: { buffer: this.readBuffer, callback: socketOnRead },
    });
    const wrapped = new NodeSocket(socket, this);
    wrapped.events = options.events;
    socket.setNoDelay(true);
    socket.connect(options.port, options.host);
    return wrapped;
  }
}

/** The listening TCP handle's accept callback slot (libuv → JS). */
interface ServerHandle {
  onconnection: (status: number, client?: ClientHandle) => void;
}

interface ClientHandle {
  close(): void;
  setNoDelay(on: boolean): void;
}

const kOwner = Symbol('switchyard.owner');

/**
 * Direct writes to the libuv handle, skipping net.Socket's Writable machinery (queueing, a
 * callback and a nextTick per write). Measured on this machine at 50 keep-alive connections of
 * small requests, it cuts the proxy's user CPU per request by about a third (see the note in
 * issue 4 / bench). It uses `process.binding('stream_wrap')`, which Node keeps on its allow-list
 * for exactly this kind of user; where it is missing, writes go through `socket.write()`.
 */
interface WriteReq {
  oncomplete: ((this: WriteReq, status: number) => void) | null;
  owner: NodeSocket | null;
  buffer: Buffer | null;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}
interface StreamHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
}

const streamWrap: StreamWrapBinding | null = (() => {
  try {
    const b = (process as unknown as { binding(name: string): StreamWrapBinding }).binding(
      'stream_wrap',
    );
    return typeof b.WriteWrap === 'function' && b.streamBaseState ? b : null;
  } catch {
    return null;
  }
})();

/** A write request object for the next direct write; one is spent only when a write goes async. */
let spareReq: WriteReq | null = null;

function onDirectWriteComplete(this: WriteReq, status: number): void {
  const owner = this.owner as NodeSocket;
  this.owner = null;
  this.buffer = null;
  if (status < 0) {
    if (status !== ECANCELED) owner.socket.destroy(errnoError(status, 'write'));
    return;
  }
  owner.events.onDrain();
}

const ECANCELED = -125;

function errnoError(status: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(status);
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${code}`);
  err.code = code;
  err.errno = status;
  err.syscall = syscall;
  return err;
}

interface OwnedSocket extends net.Socket {
  [kOwner]: NodeSocket;
}

const NO_EVENTS: SocketEvents = {
  onOpen() {},
  onData() {},
  onDrain() {},
  onEnd() {},
  onError() {},
  onClose() {},
};

/** A net.Socket behind the EngineSocket contract. */
class NodeSocket implements EngineSocket {
  events: SocketEvents = NO_EVENTS;
  readonly socket: net.Socket;
  readonly readBuffer: Buffer;
  readonly directWrites: boolean;
  /**
   * Writes that finished inside `write()` whose callback has not run yet. Node still calls the
   * callback of such a write (on the next tick); those calls must not be taken for a drain.
   * Callbacks run in write order, so a counter is enough.
   */
  syncWrites = 0;
  /**
   * Callback of the socket.write() fallback, bound on first use and kept, so a write allocates no
   * closure and a socket that only ever writes directly carries none.
   */
  afterWrite: ((err?: Error | null) => void) | null = null;

  constructor(socket: net.Socket, engine: NodeEngine) {
    this.socket = socket;
    this.readBuffer = engine.readBuffer;
    this.directWrites = engine.directWrites;
    (socket as OwnedSocket)[kOwner] = this;
    // Handlers exist from the moment the socket does: nothing a peer does can throw.
    socket.on('error', socketOnError);
    socket.on('connect', socketOnConnect);
    socket.on('end', socketOnEnd);
    socket.on('close', socketOnClose);
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  tryWrite(_data: Buffer, _n: number): number {
    return 0;
  }

  writeHeld(buf: Buffer, n: number): boolean {
    const socket = this.socket;
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    const handle = (socket as unknown as { _handle: StreamHandle | null })._handle;
    if (this.directWrites && handle !== null && !socket.connecting && socket.writableLength === 0) {
      const wrap = streamWrap as StreamWrapBinding;
      const req = spareReq ?? new wrap.WriteWrap();
      const err = handle.writeBuffer(req, chunk);
      if (err !== 0) {
        spareReq = req;
        socket.destroy(errnoError(err, 'write'));
        return true;
      }
      if (wrap.streamBaseState[wrap.kLastWriteWasAsync] === 0) {
        spareReq = req; // written inside the call; libuv never saw the request object
        return true;
      }
      // libuv keeps `chunk` until it calls req.oncomplete.
      spareReq = null;
      req.oncomplete = onDirectWriteComplete;
      req.owner = this;
      req.buffer = chunk;
      return false;
    }
    this.afterWrite ??= socketAfterWrite.bind(this);
    socket.write(chunk, this.afterWrite);
    // Nothing left in the stream's queue: libuv wrote every byte inside the call.
    if (socket.writableLength === 0) {
      this.syncWrites++;
      return true;
    }
    return false;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  shutdown(): void {
    this.socket.end();
  }

  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function socketOnRead(this: net.Socket, n: number): boolean {
  const owner = (this as OwnedSocket)[kOwner];
  owner.events.onData(owner.readBuffer, n);
  return true;
}

function socketAfterWrite(this: NodeSocket, err?: Error | null): void {
  if (this.syncWrites > 0) {
    this.syncWrites--;
    return;
  }
  // A failed write is reported once, through 'error'.
  if (!err) this.events.onDrain();
}

function socketOnConnect(this: net.Socket): void {
  (this as OwnedSocket)[kOwner].events.onOpen();
}

function socketOnEnd(this: net.Socket): void {
  (this as OwnedSocket)[kOwner].events.onEnd();
}

function socketOnError(this: net.Socket, err: NodeJS.ErrnoException): void {
  (this as OwnedSocket)[kOwner].events.onError(err.code ?? 'EUNKNOWN', err.message);
}

function socketOnClose(this: net.Socket): void {
  const owner = (this as OwnedSocket)[kOwner];
  const events = owner.events;
  owner.events = NO_EVENTS;
  events.onClose();
}
