import net from 'node:net';
import tls from 'node:tls';
import { getSystemErrorName } from 'node:util';
import type { TlsClientMaterial, TlsInfo, TlsServerMaterial } from '../tls.ts';
import { bindServer } from './bind.ts';
import type {
  AcceptHandler,
  EngineListener,
  EngineSocket,
  ListenOptions,
  SocketEvents,
} from './engine.ts';
import { NO_EVENTS } from './engine.ts';
import { loadStreamBase, UV_EOF, type WriteReq } from './stream-base.ts';

/**
 * TLS on either engine: `node:tls` sockets behind the EngineSocket contract. Node runs OpenSSL's
 * TLSWrap; Bun's `node:tls` runs its own native TLS (BoringSSL on uSockets). Both engines use
 * this module for TLS only; their plain TCP paths are untouched.
 *
 * Why `node:tls` on Bun rather than `Bun.listen({ tls })`: Bun 1.4.5's `Bun.listen` takes ONE
 * TLS options object (an array is refused: "TLSOptions must be an object") and has no public way
 * to add SNI certificates to a listener; its `node:tls` server does (SNICallback, addContext),
 * wildcards included. Measured on both runtimes: SNI exact, `*.` wildcard, default, and ALPN.
 *
 * Listening: a plain `net.Server` with `pauseOnConnect`, so `admit` (the connection cap) is asked
 * before any TLS object exists; an admitted socket is wrapped in a server TLSSocket. The core
 * hears of it (`accept`) only once the handshake is done: a failed or slow handshake is reported
 * to `handshakeFailed` and never becomes a session.
 *
 * Data: TLSSocket is a stream. Reads arrive as decrypted chunks (one TLS record, at most 16 KiB
 * each; larger ones are split to `readSize` pieces like the Bun engine does). Through the stream
 * writes cannot be "tried" (it keeps the buffer until it is encrypted and written), so there
 * `tryWrite` returns 0 and `writeHeld` reports the pool buffer free when the stream has already
 * finished with it. FIN ↔ close_notify: `shutdown` ends the stream (close_notify, then FIN); the peer's
 * close_notify or FIN is `onEnd`. A paused stream stops reading from the kernel once its
 * readable buffer (16 KiB) is full, so backpressure reaches the peer as with plain TCP.
 *
 * Reads on Node, once the handshake is done: the TLSSocket's native TLSWrap handle reports each
 * decrypted chunk (a fresh buffer of at most 16 KiB) to its `onread`; switchyard takes that
 * callback over (`takeReads`) and pauses and resumes the handle itself, as the Node engine does
 * with TCP handles, so a chunk no longer goes through the Readable stream (push, buffering,
 * 'data'). Chunks the stream had already buffered are passed on first; a chunk that arrives
 * after a pause (TLSWrap may still hand over what it decrypted in the same pass) waits in
 * `rest`. Writes go to the handle too (`writeBuffer`): TLSWrap encrypts, or copies, the bytes
 * inside the call, so `tryWrite` takes a whole chunk and keeps nothing; TLSWrap takes one write
 * at a time, so while one is in flight `tryWrite` takes 0 and a held write waits for it. Bytes
 * the stream still writes (given before the handshake was done) keep the stream path until they
 * are out. Bun's `node:tls` has no such handle and keeps the stream path.
 */

/** Where the socket's wrapper is kept on the TLSSocket and its handle (for the named functions). */
const kOwner = Symbol('switchyard.tls.owner');

type OwnedTlsSocket = tls.TLSSocket & { [kOwner]?: TlsEngineSocket };

/** Node's stream_base state, or null (Bun): then reads stay on the stream. */
const STREAM_BASE = loadStreamBase();

/** The TLSWrap handle of a Node TLSSocket: what `takeReads` uses of it. */
interface TlsHandle {
  [kOwner]?: TlsEngineSocket;
  onread: (this: TlsHandle, arrayBuffer: ArrayBuffer) => undefined;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Buffer): number;
  /** net.Socket's own flag for whether the handle reads; kept true to what it does. */
  reading: boolean;
}

/** A TLSSocket behind the EngineSocket contract. */
export class TlsEngineSocket implements EngineSocket {
  events: SocketEvents = NO_EVENTS;
  tls: TlsInfo | null = null;
  readonly stream: OwnedTlsSocket;
  readonly readSize: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The core paused reading. */
  paused: boolean;
  /** Handshake done (a connect's `onOpen` delivered, or an accepted socket). */
  open: boolean;
  /** Rest of a read longer than readSize, or reads that came while paused; passed on after resume. */
  rest: Buffer | null = null;
  restOffset = 0;
  /** The TLSWrap handle whose reads switchyard takes (Node, after the handshake); else null. */
  handle: TlsHandle | null = null;
  /** The peer's end came while `rest` still waited: `onEnd` follows it. */
  endAfterRest = false;
  /** The write given to the handle that has not completed (at most one); null when none. */
  handleWrite: WriteReq | null = null;
  /** A held write waiting for `handleWrite` to complete; null when none. */
  queuedWrite: Buffer | null = null;
  /** Writes given to the stream whose callback has not come yet. */
  writesInFlight = 0;
  /** `writeHeld` returned false: `onDrain` is owed when every write has completed. */
  drainOwed = false;
  closing = false;
  closeDelivered = false;
  errorReported = false;
  /** Bound once per socket: the stream's write callback. */
  readonly afterWrite: (err?: Error | null) => void;

  constructor(stream: tls.TLSSocket, readSize: number, open: boolean, raw?: net.Socket) {
    this.stream = stream as OwnedTlsSocket;
    this.stream[kOwner] = this;
    this.readSize = readSize;
    this.open = open;
    this.paused = open; // accepted: not read before resume; connecting: reads once open
    const peer = raw ?? stream;
    this.remoteAddress = peer.remoteAddress ?? '';
    this.remotePort = peer.remotePort ?? 0;
    this.localAddress = peer.localAddress ?? '';
    this.localPort = peer.localPort ?? 0;
    this.afterWrite = writeDone.bind(this);
    stream.pause();
    stream.on('data', streamOnData);
    stream.on('end', streamOnEnd);
    stream.on('error', streamOnError);
    stream.on('close', streamOnClose);
  }

  tryWrite(data: Buffer, n: number): number {
    // Node, after the handshake, with nothing in flight: the TLSWrap encrypts (or copies) the
    // bytes inside the call, so they are all taken and `data` is free at once. One write at a
    // time (TLSWrap takes no second one before the first completes): while it runs, 0.
    if (this.handle === null || this.handleWrite !== null || this.closing) return 0;
    if (this.writesInFlight > 0) return 0; // the stream still writes (bytes from before the handshake)
    this.writeToHandle(n === data.length ? data : data.subarray(0, n));
    return n;
  }

  writeHeld(buf: Buffer, n: number): boolean {
    if (this.closing || this.stream.destroyed) return true;
    if (this.handle !== null && this.writesInFlight === 0) {
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      // Held until its write (or the one before it) completes: the peer waits for onDrain.
      if (this.handleWrite === null) this.writeToHandle(chunk);
      else this.queuedWrite = chunk;
      this.drainOwed = true;
      return false;
    }
    this.writesInFlight++;
    this.stream.write(n === buf.length ? buf : buf.subarray(0, n), this.afterWrite);
    // Nothing left in the stream: it has finished with the buffer inside the call.
    if (this.stream.writableLength === 0) return true;
    this.drainOwed = true;
    return false;
  }

  pause(): void {
    this.paused = true;
    const h = this.handle;
    if (h === null) {
      this.stream.pause();
    } else if (h.reading) {
      h.reading = false;
      h.readStop();
    }
  }

  resume(): void {
    this.paused = false;
    if (!this.open) return; // a connect reads once its handshake is done
    if (this.rest !== null) process.nextTick(deliverRest, this);
    else this.startReading();
  }

  /** Reads again: the handle's reads when they are ours, else the stream's. */
  startReading(): void {
    const h = this.handle;
    if (h === null) {
      this.stream.resume();
    } else if (!h.reading && !this.closing && !this.stream.destroyed) {
      h.reading = true;
      h.readStart();
    }
  }

  /**
   * Node: takes the TLSWrap handle's reads from the stream (see the file comment); called once
   * the handshake is done. Whatever the stream already buffered goes first. No-op on Bun.
   */
  takeReads(): void {
    if (STREAM_BASE === null) return;
    const h = (this.stream as unknown as { _handle?: Partial<TlsHandle> | null })._handle;
    if (
      h === null ||
      h === undefined ||
      typeof h.readStart !== 'function' ||
      typeof h.readStop !== 'function' ||
      typeof h.onread !== 'function'
    ) {
      return;
    }
    const handle = h as TlsHandle;
    handle[kOwner] = this;
    handle.onread = tlsHandleOnRead;
    this.handle = handle;
    // The stream's listener stays for a chunk it still holds; read() hands it over.
    for (let chunk = this.stream.read() as Buffer | null; chunk !== null; ) {
      this.keep(chunk);
      chunk = this.stream.read() as Buffer | null;
    }
    // read() may have started the handle (net.Socket's _read): match what the core wants.
    if (this.paused || this.rest !== null) {
      if (handle.reading) {
        handle.reading = false;
        handle.readStop();
      }
    } else {
      this.startReading();
    }
  }

  /** Adds a chunk to `rest`, to be passed on after resume (copied only when one already waits). */
  keep(chunk: Buffer): void {
    if (this.rest === null) {
      this.rest = chunk;
      this.restOffset = 0;
    } else {
      this.rest = Buffer.concat([this.rest.subarray(this.restOffset), chunk]);
      this.restOffset = 0;
    }
  }

  shutdown(): void {
    if (this.closing) return;
    // close_notify, then FIN, after every write queued before it: the stream's and the handle's
    // (the TLSWrap orders them; test/engine/tls-reads.test.ts asks with 32 MiB in flight).
    this.stream.end();
  }

  /** Gives `chunk` to the TLSWrap handle (none in flight); its completion is handleWriteDone. */
  writeToHandle(chunk: Buffer): void {
    const base = STREAM_BASE as NonNullable<typeof STREAM_BASE>;
    const req = new base.WriteWrap();
    req.oncomplete = handleWriteDone;
    req.owner = this;
    req.buffer = chunk;
    const err = (this.handle as TlsHandle).writeBuffer(req, chunk);
    if (err !== 0) {
      // Reported after the core's call (it may be mid-call), then the socket is closed.
      process.nextTick(failWrite, this, getSystemErrorName(err));
      return;
    }
    this.handleWrite = req;
  }

  reset(): void {
    if (this.closing) return;
    this.closing = true;
    const stream = this.stream as tls.TLSSocket & { resetAndDestroy?: () => void };
    if (typeof stream.resetAndDestroy === 'function' && !stream.connecting) {
      try {
        stream.resetAndDestroy();
        return;
      } catch {
        // the runtime cannot reset this socket: close it instead (the peer sees a FIN)
      }
    }
    stream.destroy();
  }

  destroy(): void {
    if (this.closing) return;
    this.closing = true;
    this.stream.destroy();
  }

  /** A read, from the stream or the handle: passed on, in readSize pieces when longer. */
  received(chunk: Buffer): void {
    if (chunk.length <= this.readSize) {
      this.events.onData(chunk, chunk.length);
      return;
    }
    // Longer than a pool buffer: the stream stays paused until the pieces are passed on (the
    // handle cannot read during this call; a pause by the core stops it).
    if (this.handle === null) this.stream.pause();
    this.rest = chunk;
    this.restOffset = 0;
    deliverRest(this);
  }

  /** Reports `code` (once per socket) and closes. */
  fail(code: string, message: string): void {
    if (this.closing) return;
    if (!this.errorReported) {
      this.errorReported = true;
      this.events.onError(code, message);
    }
    this.destroy();
  }

  /** The handshake is done: record what was negotiated, take the reads (Node). */
  secured(): void {
    this.takeReads();
    const s = this.stream;
    const servername = (s as tls.TLSSocket & { servername?: string | false }).servername;
    this.tls = {
      sni: typeof servername === 'string' && servername !== '' ? servername : null,
      alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : null,
      version: s.getProtocol() ?? null,
      cipher: s.getCipher()?.name ?? null,
    };
  }
}

function deliverRest(s: TlsEngineSocket): void {
  const chunk = s.rest;
  if (chunk === null) return;
  const max = s.readSize;
  while (s.restOffset < chunk.length) {
    if (s.paused) return; // the rest waits for the next resume()
    if (s.closing) break;
    const start = s.restOffset;
    const end = Math.min(start + max, chunk.length);
    s.restOffset = end;
    s.events.onData(chunk.subarray(start, end), end - start);
  }
  s.rest = null;
  s.restOffset = 0;
  if (s.endAfterRest) {
    s.endAfterRest = false;
    if (!s.closing && s.open) s.events.onEnd();
    return;
  }
  if (!s.paused && !s.closing) s.startReading();
}

/** The TLSWrap's read callback once switchyard has taken it (takeReads); `this` is the handle. */
function tlsHandleOnRead(this: TlsHandle, arrayBuffer: ArrayBuffer): undefined {
  const s = this[kOwner] as TlsEngineSocket;
  const base = STREAM_BASE as NonNullable<typeof STREAM_BASE>;
  const n = base.state[base.kReadBytesOrError] as number;
  if (n === 0) return;
  if (s.closing) return;
  if (n > 0) {
    const chunk = Buffer.from(arrayBuffer, base.state[base.kArrayBufferOffset], n);
    if (s.paused || s.rest !== null) {
      s.keep(chunk); // decrypted in the same pass as a read before the pause
      return;
    }
    s.received(chunk);
    return;
  }
  this.reading = false; // libuv stopped reading: end or error
  if (n === UV_EOF) {
    if (!s.open) return;
    if (s.rest !== null) s.endAfterRest = true;
    else s.events.onEnd();
    return;
  }
  const code = getSystemErrorName(n);
  s.fail(code, `read ${code}`);
}

// ─── Stream events: named functions, `this` is the TLSSocket ───

function streamOnData(this: OwnedTlsSocket, chunk: Buffer): void {
  const s = this[kOwner] as TlsEngineSocket;
  if (s.closing) return;
  s.received(chunk);
}

function streamOnEnd(this: OwnedTlsSocket): void {
  const s = this[kOwner] as TlsEngineSocket;
  if (s.closing || !s.open) return;
  s.events.onEnd();
}

function streamOnError(this: OwnedTlsSocket, err: NodeJS.ErrnoException): void {
  const s = this[kOwner] as TlsEngineSocket;
  if (s.closing || s.errorReported) return;
  s.errorReported = true;
  s.events.onError(err.code ?? 'EPROTO', err.message);
}

function streamOnClose(this: OwnedTlsSocket): void {
  const s = this[kOwner] as TlsEngineSocket;
  if (s.closeDelivered) return;
  s.closeDelivered = true;
  s.rest = null;
  const events = s.events;
  s.events = NO_EVENTS;
  events.onClose();
}

/** The handle's write completed (`this` is its request): the queued one next, or onDrain. */
function handleWriteDone(this: WriteReq, status: number): void {
  const s = this.owner as TlsEngineSocket;
  this.owner = null;
  this.buffer = null;
  if (s.handleWrite === this) s.handleWrite = null;
  if (s.closing) return;
  if (status < 0) {
    failWrite(s, getSystemErrorName(status));
    return;
  }
  const next = s.queuedWrite;
  if (next !== null) {
    s.queuedWrite = null;
    s.writeToHandle(next);
    return;
  }
  if (s.drainOwed) {
    s.drainOwed = false;
    s.events.onDrain();
  }
}

function failWrite(s: TlsEngineSocket, code: string): void {
  s.fail(code, `write ${code}`);
}

function writeDone(this: TlsEngineSocket, err?: Error | null): void {
  this.writesInFlight--;
  if (err || this.writesInFlight > 0 || !this.drainOwed) return; // an error comes as 'error'
  this.drainOwed = false;
  this.events.onDrain();
}

// ─── Origination ───

/** Starts a TLS connect: `onOpen` once the server is verified (see ConnectOptions.tls). */
export function connectTls(
  host: string,
  port: number,
  events: SocketEvents,
  material: TlsClientMaterial,
  readSize: number,
): EngineSocket {
  // allowHalfOpen is passed on to the TLSSocket by both runtimes, though @types/node omits it.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    host,
    port,
    allowHalfOpen: true,
    rejectUnauthorized: material.verify,
  };
  // SNI: the configured name, else the host when it is a name (an address is never sent).
  const servername = material.servername ?? (net.isIP(host) === 0 ? host : null);
  if (servername !== null) options.servername = servername;
  // A servername given for an address: the certificate must be for that name, not the address.
  if (material.servername !== null) {
    const name = material.servername;
    options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(name, cert);
  }
  if (material.ca !== null) options.ca = material.ca;
  if (material.cert !== null && material.key !== null) {
    options.cert = material.cert;
    options.key = material.key;
  }
  const stream = tls.connect(options);
  const s = new TlsEngineSocket(stream, readSize, false);
  s.events = events;
  stream.setNoDelay(true);
  stream.once('secureConnect', connectSecured);
  return s;
}

function connectSecured(this: OwnedTlsSocket): void {
  const s = this[kOwner] as TlsEngineSocket;
  if (s.closing) return;
  s.open = true;
  s.secured();
  s.events.onOpen();
  if (!s.paused && !s.closing) s.startReading();
}

// ─── Termination ───

/** The secure contexts of one TlsServerMaterial and the SNI lookup over them. */
class Certificates {
  readonly byName = new Map<string, tls.SecureContext>();
  readonly fallback: tls.SecureContext;
  readonly material: TlsServerMaterial;

  constructor(material: TlsServerMaterial) {
    this.material = material;
    const contexts = material.certificates.map((c) =>
      tls.createSecureContext({
        cert: c.cert,
        key: c.key,
        minVersion: material.minVersion,
        ...(material.clientCa !== null ? { ca: material.clientCa } : {}),
      }),
    );
    material.certificates.forEach((c, i) => {
      for (const name of c.names) {
        if (!this.byName.has(name)) this.byName.set(name, contexts[i] as tls.SecureContext);
      }
    });
    this.fallback = contexts[0] as tls.SecureContext;
  }

  /** Exact name, then `*.` + the name less its first label, then the default. */
  pick(servername: string): tls.SecureContext {
    const name = servername.toLowerCase();
    const exact = this.byName.get(name);
    if (exact) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = this.byName.get(`*${name.slice(dot)}`);
      if (wildcard) return wildcard;
    }
    return this.fallback;
  }
}

/** A client admitted on a TLS listener, while its handshake runs. */
class Handshake {
  readonly listener: TlsListener;
  readonly socket: TlsEngineSocket;
  timer: ReturnType<typeof setTimeout> | undefined;
  done = false;

  constructor(listener: TlsListener, socket: TlsEngineSocket) {
    this.listener = listener;
    this.socket = socket;
  }

  fail(code: string, message: string, timedOut: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.socket.destroy();
    this.listener.handler.handshakeFailed(code, message, timedOut);
  }
}

/** Records what a failing handshake reported, until its close. */
const HANDSHAKE_EVENTS: SocketEvents = NO_EVENTS;

class TlsListener implements EngineListener {
  readonly server: net.Server;
  readonly handler: AcceptHandler;
  readonly readSize: number;
  certificates: Certificates;
  host = '';
  port = 0;
  /** Bound once: the SNI callback, reading the current certificates (a reload swaps them). */
  readonly sni: (
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ) => void;

  constructor(handler: AcceptHandler, material: TlsServerMaterial, readSize: number) {
    this.handler = handler;
    this.readSize = readSize;
    this.certificates = new Certificates(material);
    this.sni = (servername, cb) => cb(null, this.certificates.pick(servername));
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (raw) =>
      this.connection(raw),
    );
  }

  setTls(material: TlsServerMaterial): void {
    this.certificates = new Certificates(material);
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  connection(raw: net.Socket): void {
    raw.on('error', ignore); // until the TLSSocket owns it
    if (!this.handler.admit()) {
      raw.destroy();
      return;
    }
    raw.setNoDelay(true);
    const certs = this.certificates;
    const m = certs.material;
    const stream = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: certs.fallback,
      SNICallback: this.sni,
      ...(m.alpn.length > 0 ? { ALPNProtocols: [...m.alpn] } : {}),
      requestCert: m.clientCa !== null,
      rejectUnauthorized: m.clientCa !== null,
    });
    const socket = new TlsEngineSocket(stream, this.readSize, true, raw);
    const hs = new Handshake(this, socket);
    socket.events = {
      ...HANDSHAKE_EVENTS,
      onError: (code, message) => hs.fail(code, message, false),
      onClose: () => hs.fail('ECONNRESET', 'closed during the handshake', false),
    };
    if (m.handshakeTimeoutMs > 0) {
      hs.timer = setTimeout(handshakeTimedOut, m.handshakeTimeoutMs, hs);
      hs.timer.unref();
    }
    stream.once('secure', () => this.secured(hs, m));
    // The handshake needs the stream to read; the core's reads start with its resume().
    stream.resume();
    stream.pause();
  }

  secured(hs: Handshake, m: TlsServerMaterial): void {
    if (hs.done) return;
    const stream = hs.socket.stream;
    const problem = m.clientCa !== null ? clientCertProblem(stream) : null;
    if (problem !== null) {
      hs.fail(problem, `client certificate refused: ${problem}`, false);
      return;
    }
    hs.done = true;
    clearTimeout(hs.timer);
    hs.socket.secured();
    hs.socket.events = this.handler.accept(hs.socket);
  }
}

/**
 * Why the client's certificate is refused, or null. A missing certificate never gets here: with
 * requestCert and rejectUnauthorized both runtimes fail the handshake itself. A certificate from
 * another CA: Bun fails the handshake too (UNABLE_TO_VERIFY_LEAF_SIGNATURE); Node's OpenSSL
 * accepts it and leaves the verdict to the caller: `authorized` is set by tls.Server only, so
 * the TLSWrap's verifyError() is asked (measured on Node 26 and Bun 1.4.5).
 */
function clientCertProblem(stream: tls.TLSSocket): string | null {
  const handle = (stream as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  if (typeof handle?.verifyError === 'function') {
    const err = handle.verifyError() as NodeJS.ErrnoException | null;
    return err === null ? null : (err.code ?? err.message);
  }
  return stream.authorized ? null : String(stream.authorizationError ?? 'not authorized');
}

function handshakeTimedOut(hs: Handshake): void {
  hs.fail('ETIMEDOUT', 'TLS handshake timed out', true);
}

function ignore(): void {}

/** Binds a TLS listener (either engine); see the file comment. */
export async function listenTls(
  options: ListenOptions,
  handler: AcceptHandler,
  material: TlsServerMaterial,
  readSize: number,
  listenError: (err: NodeJS.ErrnoException) => Error,
): Promise<EngineListener> {
  const listener = new TlsListener(handler, material, readSize);
  const server = listener.server;
  await bindServer(server, options, listenError);
  server.on('error', (err: NodeJS.ErrnoException) => handler.acceptError(err.code ?? 'EUNKNOWN'));
  const address = server.address() as net.AddressInfo;
  listener.host = address.address;
  listener.port = address.port;
  return listener;
}
