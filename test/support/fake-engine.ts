// An in-process engine (src/engine/engine.ts's contract) that the test drives step by step, for
// Session unit tests only: every event happens when the test says so, and every call the core
// makes on a socket is recorded in order. The real engines are tested on real sockets
// (test/engine/); end-to-end tests use real loopback sockets.
import type {
  AcceptHandler,
  ConnectOptions,
  Engine,
  EngineListener,
  EngineName,
  EngineSocket,
  ListenOptions,
  SocketEvents,
} from '../../src/engine/engine.ts';

/** One fake socket: the core's calls go into `ops`; the test plays the engine's events. */
export class FakeSocket implements EngineSocket {
  readonly engine: FakeEngine;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort: number;
  readonly localAddress = '127.0.0.1';
  readonly localPort: number;
  readonly tls = null;
  events: SocketEvents;
  /** What the core asked, in order: `try n`, `held n`, `pause`, `resume`, `fin`, `reset`, `destroy`. */
  readonly ops: string[] = [];
  /** Bytes the "kernel" accepted, in order (copies). */
  readonly sent: Buffer[] = [];
  /** How many bytes the next tryWrite takes; Infinity = all. */
  takes = Number.POSITIVE_INFINITY;
  /** Whether writeHeld keeps the buffer (false: written inside the call). */
  holdWrites = false;
  /** The buffer of a held write until `drain()`: the core's pool buffer itself, not a copy. */
  held: Buffer | null = null;
  private heldN = 0;
  paused: boolean;
  closed = false;
  /** The core asked for whole reads (EngineSocket.wholeReads); not in `ops`. */
  wholeReadsAsked = false;
  private closing = false;

  constructor(engine: FakeEngine, events: SocketEvents, port: number, paused: boolean) {
    this.engine = engine;
    this.events = events;
    this.remotePort = port;
    this.localPort = port + 1;
    this.paused = paused;
  }

  // ─── EngineSocket: what the core calls ───

  tryWrite(data: Buffer, n: number): number {
    const taken = Math.min(n, this.takes);
    this.ops.push(`try ${taken}`);
    if (taken > 0) this.sent.push(Buffer.from(data.subarray(0, taken)));
    return taken;
  }

  writeHeld(buf: Buffer, n: number): boolean {
    if (this.held !== null) throw new Error('a second held write on one socket');
    this.ops.push(`held ${n}`);
    if (!this.holdWrites) {
      this.sent.push(Buffer.from(buf.subarray(0, n)));
      return true;
    }
    this.held = buf;
    this.heldN = n;
    return false;
  }

  pause(): void {
    this.ops.push('pause');
    this.paused = true;
  }

  resume(): void {
    this.ops.push('resume');
    this.paused = false;
  }

  shutdown(): void {
    this.ops.push('fin');
  }

  wholeReads(): void {
    this.wholeReadsAsked = true;
  }

  reset(): void {
    this.ops.push('reset');
    this.closeLater();
  }

  destroy(): void {
    this.ops.push('destroy');
    this.closeLater();
  }

  // ─── The engine's side: what the test plays ───

  /** The outgoing connect succeeded. */
  open(): void {
    this.paused = false;
    this.events.onOpen();
  }

  /** Delivers a read, whether or not the socket is paused (a test may play a faulty engine). */
  data(text: string | Buffer): void {
    const buf = typeof text === 'string' ? Buffer.from(text) : text;
    this.events.onData(buf, buf.length);
  }

  /** The held write completed: its bytes count as sent, and onDrain follows. */
  drain(): void {
    const buf = this.held;
    if (buf === null) throw new Error('no held write to drain');
    this.sent.push(Buffer.from(buf.subarray(0, this.heldN)));
    this.held = null;
    this.ops.push('drained');
    this.events.onDrain();
  }

  end(): void {
    this.events.onEnd();
  }

  /** The socket failed: onError now, onClose at the next `settle()`. */
  fail(code: string): void {
    this.events.onError(code, `fake ${code}`);
    this.closeLater();
  }

  /** onClose now (once). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.onClose();
  }

  /** Bytes sent so far, as text. */
  text(): string {
    return Buffer.concat(this.sent).toString();
  }

  /** The engine's onClose never comes inside the core's call: queued for `settle()`. */
  private closeLater(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.engine.queue(() => this.close());
  }
}

/** The fake engine: one listener; `accept()` plays a client arriving. */
export class FakeEngine implements Engine {
  readonly name = 'fake' as EngineName;
  handler: AcceptHandler | null = null;
  /** Outgoing sockets, in the order the core asked for them. */
  readonly connects: FakeSocket[] = [];
  private readonly pending: (() => void)[] = [];
  private nextPort = 40_000;

  async listen(options: ListenOptions, handler: AcceptHandler): Promise<EngineListener> {
    this.handler = handler;
    return {
      host: options.host,
      port: options.port === 0 ? 8080 : options.port,
      close: async () => {
        this.handler = null;
      },
    };
  }

  connect(options: ConnectOptions): EngineSocket {
    const socket = new FakeSocket(this, options.events, this.port(), false);
    this.connects.push(socket);
    return socket;
  }

  /** A client connects; null when admit() turned it away. Accepted sockets start paused. */
  accept(): FakeSocket | null {
    const handler = this.handler;
    if (handler === null) throw new Error('not listening');
    if (!handler.admit()) return null;
    const socket = new FakeSocket(this, null as unknown as SocketEvents, this.port(), true);
    socket.events = handler.accept(socket);
    return socket;
  }

  private port(): number {
    this.nextPort += 2;
    return this.nextPort;
  }

  queue(event: () => void): void {
    this.pending.push(event);
  }

  /** Delivers the queued events (closes), as the event loop would after the core's call. */
  settle(): void {
    while (this.pending.length > 0) (this.pending.shift() as () => void)();
  }
}
