/**
 * The socket layer, the only part of switchyard that differs between runtimes. Everything above
 * this interface (src/core, the CLI) is shared; nothing above it imports `node:net` or `Bun`.
 *
 * The contract is the one a readiness-based proxy needs and no more:
 * - reads are pushed: `onData(data, n)` with bytes that are valid only during the call;
 * - writes are tried: `tryWrite` takes what the kernel accepts now and never keeps the caller's
 *   memory; `writeHeld` writes from a pool buffer the caller promises not to touch until
 *   `onDrain`;
 * - reading can be paused and resumed (backpressure);
 * - a socket can be half-closed (FIN), reset (RST) or closed;
 * - `onClose` is called exactly once per socket, last.
 */

import type { TlsClientMaterial, TlsInfo, TlsServerMaterial } from '../tls.ts';

/** Events an engine socket reports to its owner. `this` is the owner; no closures per socket. */
export interface SocketEvents {
  /** Outgoing connect established. */
  onOpen(): void;
  /** `data[0..n)` was read. The bytes are the engine's: copy what must outlive this call. */
  onData(data: Buffer, n: number): void;
  /** The write started by `writeHeld` (returning false) has completed; its buffer is free. */
  onDrain(): void;
  /** The peer sent FIN: no more data will come from it. */
  onEnd(): void;
  /** The socket failed; `onClose` follows. `code` is the system code, e.g. ECONNRESET. */
  onError(code: string, message: string): void;
  /** The socket is closed and its descriptor released. Called once, last. */
  onClose(): void;
}

/** Pool buffers an engine may read into (the core's BufferPool is one). */
export interface ReadBufferPool {
  readonly size: number;
  readonly capacity: number;
  readonly inUse: number;
  acquire(): Buffer;
  release(buf: Buffer): void;
}

/** Events that go nowhere: a socket whose owner is gone (closed, rejected, abandoned). */
export const NO_EVENTS: SocketEvents = {
  onOpen() {},
  onData() {},
  onDrain() {},
  onEnd() {},
  onError() {},
  onClose() {},
};

/** One TCP socket as the core sees it. */
export interface EngineSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Where events go. Set once, right after accept or before connect completes. */
  events: SocketEvents;
  /** What a TLS socket negotiated (set before accept / onOpen); null for plain TCP. */
  readonly tls: TlsInfo | null;
  /**
   * Writes as much of `data[0..n)` as the kernel takes right now and returns how many bytes that
   * was. The engine keeps no reference to `data`: the caller may reuse it at once and must offer
   * the rest again with `writeHeld`. An engine that cannot write without keeping the memory
   * (Node) returns 0.
   */
  tryWrite(data: Buffer, n: number): number;
  /**
   * Writes `buf[0..n)`. Returns true when every byte is already written (the buffer is free);
   * false when the engine still needs the buffer: the caller must leave it untouched until
   * `onDrain`. At most one held write per socket at a time.
   */
  writeHeld(buf: Buffer, n: number): boolean;
  /** Stops reading (the kernel's receive window then pushes back on the sender). */
  pause(): void;
  /** Resumes reading after `pause`. */
  resume(): void;
  /** Sends FIN once any held write is out; reading continues. */
  shutdown(): void;
  /** Aborts with RST (SO_LINGER 0) and closes. */
  reset(): void;
  /** Closes (FIN if the kernel has no unread bytes). Idempotent. */
  destroy(): void;
  /**
   * Optional (the Node engine). Lets the socket read into buffers of `pool` while it streams
   * full reads, so the bytes can be written on without a copy; it still reads into the engine's
   * shared buffer otherwise, and an idle socket holds no pool buffer.
   */
  readFrom?(pool: ReadBufferPool): void;
  /**
   * True during `onData` when `data` is a pool buffer (of the pool given to `readFrom`) that the
   * socket can give up with `lendReadBuffer`; false when it is the engine's shared buffer.
   */
  readonly readBufferLendable?: boolean;
  /**
   * During `onData`, when `readBufferLendable`: `data` becomes the caller's (it releases it to
   * the pool when done with it) and the socket reads into another buffer from now on.
   */
  lendReadBuffer?(): void;
  /**
   * Optional (the Bun engine). From now on `onData` may deliver a whole read longer than
   * `readSize`: memory the engine allocated for that read alone and gives away, which the caller
   * may keep (as a held write) until it is written. The core asks for it once a pair streams, so
   * a large read goes on in one write instead of readSize pieces; engines whose reads reuse a
   * buffer do not offer it.
   */
  wholeReads?(): void;
}

/** What a listener asks of the core for each incoming connection. */
export interface AcceptHandler {
  /** Checked before any per-connection object exists: false closes the client at once. */
  admit(): boolean;
  /** Takes ownership of a newly accepted socket (reading not started) and returns its owner. */
  accept(socket: EngineSocket): SocketEvents;
  /** The kernel refused an accept (EMFILE, ENFILE, ...); the listener keeps going. */
  acceptError(code: string): void;
  /**
   * A client admitted on a TLS listener did not complete its handshake: it failed (`code` is
   * the TLS or system code) or passed the handshake timeout (`code` ETIMEDOUT). It never
   * reached `accept`; its socket is closed.
   */
  handshakeFailed(code: string, message: string, timedOut: boolean): void;
}

export interface ListenOptions {
  host: string;
  port: number;
  backlog: number;
  /** SO_REUSEPORT, so several processes can share the port. */
  reusePort?: boolean;
  /**
   * Terminate TLS: each client is handed to `accept` once its handshake is done (and only then
   * counts as accepted); `admit` is still asked at the TCP accept.
   */
  tls?: TlsServerMaterial;
}

export interface EngineListener {
  /** The bound address (port resolved when 0 was asked). */
  readonly host: string;
  readonly port: number;
  /** Stops accepting. Established connections are not touched. */
  close(): Promise<void>;
  /** A TLS listener's certificates for new handshakes (a reload); established ones keep theirs. */
  setTls?(tls: TlsServerMaterial): void;
}

export interface ConnectOptions {
  /** An IP address: names are resolved by the core (src/core/dns.ts); a name fails with EINVAL. */
  host: string;
  port: number;
  /** Owner of the new socket; `onOpen` or `onError` + `onClose` follow. */
  events: SocketEvents;
  /**
   * Originate TLS: `onOpen` comes once the handshake is done and the server verified; a failed
   * verification is `onError` (its code, e.g. ERR_TLS_CERT_ALTNAME_INVALID) then `onClose`.
   */
  tls?: TlsClientMaterial;
}

/** A runtime's socket layer. One per process; it owns the shared read buffer. */
export interface Engine {
  readonly name: EngineName;
  listen(options: ListenOptions, handler: AcceptHandler): Promise<EngineListener>;
  /** Starts a non-blocking connect; the socket starts reading when it opens. */
  connect(options: ConnectOptions): EngineSocket;
}

export type EngineName = 'node' | 'bun';

/** Options every engine takes. */
export interface EngineOptions {
  /** Size of the read buffer: the largest chunk one read delivers. */
  readSize: number;
}
