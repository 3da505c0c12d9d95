/**
 * The few Bun APIs the Bun engine calls, declared here instead of pulling in @types/bun (whose
 * globals would clash with @types/node). Checked against Bun 1.4.5 (the pinned devDependency);
 * the notes say what was observed there, where the docs are vague.
 */

/** A TCP socket from `Bun.listen` (accepted) or `Bun.connect`. */
export interface BunTcpSocket<Data> {
  /** Per-socket state; an accepted socket starts with its listener's `data`. */
  data: Data;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Writes what the kernel takes now and returns that many bytes; -1 once the socket is closed.
   * Plain TCP sockets keep nothing: the untaken rest is the caller's to offer again on `drain`.
   */
  write(data: Uint8Array, byteOffset: number, byteLength: number): number;
  /** Stops polling for readable: no `data` (nor `end`) until `resume`. Errors still arrive. */
  pause(): void;
  resume(): void;
  /** With no argument: shutdown(SHUT_WR), a FIN; reading goes on. */
  shutdown(): void;
  /** Close with SO_LINGER 0 (RST). `close` runs inside this call. */
  terminate(): void;
  /** FIN and close the descriptor. `close` runs inside this call. */
  end(): void;
  setNoDelay(noDelay: boolean): boolean;
}

/** The callbacks of every socket of a listener or connect. One object, shared. */
export interface BunSocketHandler<Data> {
  open(socket: BunTcpSocket<Data>): void;
  /** `chunk` is a new Buffer per read (Bun copies from its loop-wide receive buffer). */
  data(socket: BunTcpSocket<Data>, chunk: Buffer): void;
  /** Writable again after a short write. Also fires after open and after resume. */
  drain(socket: BunTcpSocket<Data>): void;
  /** The peer sent FIN (only with allowHalfOpen; not when we had already sent ours). */
  end(socket: BunTcpSocket<Data>): void;
  /** Once per opened socket; `error` set (with a system `code`) for a reset and the like. */
  close(socket: BunTcpSocket<Data>, error?: BunSystemError): void;
  /** One of these handlers threw (plain TCP has no other use for it). */
  error(socket: BunTcpSocket<Data>, error: Error): void;
  /** The connect failed. No `close` follows. */
  connectError(socket: BunTcpSocket<Data>, error: BunSystemError): void;
}

export interface BunSystemError extends Error {
  code?: string;
}

export interface BunListener<Data> {
  readonly hostname: string;
  readonly port: number;
  data: Data;
  /** Stops accepting; with true, also closes every accepted socket. */
  stop(closeActiveConnections?: boolean): void;
}

export interface BunListenOptions<Data> {
  hostname: string;
  port: number;
  reusePort?: boolean;
  allowHalfOpen?: boolean;
  data?: Data;
  socket: BunSocketHandler<Data>;
}

export interface BunConnectOptions<Data> {
  hostname: string;
  port: number;
  allowHalfOpen?: boolean;
  data?: Data;
  socket: BunSocketHandler<Data>;
}

/** `globalThis.Bun`, as far as switchyard uses it. */
export interface BunRuntime {
  /** Binds synchronously; throws an Error with a system `code` (EADDRINUSE, ...) when it cannot. */
  listen<Data>(options: BunListenOptions<Data>): BunListener<Data>;
  /** Resolves once open; rejects after `connectError` (not reported as unhandled when it is set). */
  connect<Data>(options: BunConnectOptions<Data>): Promise<BunTcpSocket<Data>>;
}

/** The Bun global when running under Bun, else undefined. */
export function bunRuntime(): BunRuntime | undefined {
  return (globalThis as { Bun?: BunRuntime }).Bun;
}
