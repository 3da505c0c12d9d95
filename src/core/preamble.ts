/**
 * The preamble: what a client must send before switchyard chooses a server for it, read before
 * any Session or backend connect exists. Today that is a PROXY protocol header; a later stage
 * (a TLS ClientHello for SNI routing) reads the bytes after it the same way.
 *
 * The client's bytes go into ONE pool buffer (acquired at the first byte, so a client that sends
 * nothing holds none), and each stage parses that buffer incrementally, resuming where it
 * stopped. A stage returns how many bytes it consumed (0: it only looked, as a ClientHello
 * reader would); the next stage starts after them. Once every stage is done the rest of the
 * buffer is the client's first data: it moves to the front of the same buffer, which the
 * session takes as its `early` data (written to the server first), so no byte is copied twice
 * and nothing is allocated per read.
 *
 * A stage that fails, a client that closes or errs, or a preamble not complete within the
 * timeout (from accept, on the shared timer wheel: a client trickling one byte at a time gains
 * nothing) closes the client; nothing has reached a server.
 */
import type { EngineSocket, SocketEvents } from '../engine/engine.ts';
import type { BufferPool } from './buffer-pool.ts';
import type { TimerEntry, TimerWheel } from './timer-wheel.ts';

/** Parse results a stage returns besides a byte count. */
export const STAGE_NEED_MORE = -1;
export const STAGE_FAILED = -2;

/** One parser of the preamble. */
export interface PreambleStage {
  /**
   * Parses buf[start..end) (the same buffer, appended to between calls). Returns
   * STAGE_NEED_MORE, STAGE_FAILED (with `error` set), or the bytes it consumed.
   */
  parse(buf: Uint8Array, start: number, end: number): number;
  readonly error: string;
}

/** What a preamble reports to: the frontend that accepted the client. */
export interface PreambleOwner {
  readonly pool: BufferPool;
  readonly wheel: TimerWheel;
  /**
   * Every stage is done: `early[0..earlyLength)` is the client's first data (a pool buffer, now
   * the owner's), or null. The socket is paused when there is early data.
   */
  preambleDone(preamble: Preamble, early: Buffer | null, earlyLength: number): void;
  /** The preamble failed (`reason` for the log); the client socket is closed right after. */
  preambleFailed(preamble: Preamble, reason: string): void;
}

export class Preamble implements SocketEvents, TimerEntry {
  readonly owner: PreambleOwner;
  readonly socket: EngineSocket;
  readonly stages: readonly PreambleStage[];
  readonly startedAt: number;
  private readonly timeoutMs: number;
  /** Pool buffer of the bytes read so far; null until the first byte (and once handed over). */
  private buf: Buffer | null = null;
  private filled = 0;
  /** Where the current stage's bytes start (the stages before consumed the rest). */
  private start = 0;
  private stage = 0;
  /** Done or failed: later events are ignored. */
  private over = false;
  wheelSlot = -1;
  wheelIndex = 0;

  constructor(
    owner: PreambleOwner,
    socket: EngineSocket,
    stages: PreambleStage[],
    timeoutMs: number,
  ) {
    this.owner = owner;
    this.socket = socket;
    this.stages = stages;
    this.timeoutMs = timeoutMs;
    this.startedAt = owner.wheel.now;
    owner.wheel.schedule(this);
    socket.resume();
  }

  onOpen(): void {}
  onDrain(): void {}

  onData(data: Buffer, n: number): void {
    try {
      this.read(data, n);
    } catch (err) {
      this.fail(`internal error: ${(err as Error)?.message}`);
    }
  }

  private read(data: Buffer, n: number): void {
    if (this.over) return;
    if (this.buf === null) this.buf = this.owner.pool.acquire();
    const buf = this.buf;
    const take = Math.min(n, buf.length - this.filled);
    data.copy(buf, this.filled, 0, take);
    this.filled += take;
    while (this.stage < this.stages.length) {
      const stage = this.stages[this.stage] as PreambleStage;
      const r = stage.parse(buf, this.start, this.filled);
      if (r === STAGE_FAILED) {
        this.fail(stage.error);
        return;
      }
      if (r === STAGE_NEED_MORE) {
        if (this.filled === buf.length) this.fail(`no complete preamble in ${buf.length} bytes`);
        return;
      }
      this.start += r;
      this.stage++;
    }
    // Done. The client's first data: the rest of the buffer, then what did not fit of this read.
    const rest = n - take;
    const kept = this.filled - this.start;
    // A stage that consumes its bytes (the PROXY header) leaves room for the rest of the read:
    // this read began inside that stage's bytes. Only stages that merely look could overflow.
    if (kept + rest > buf.length) {
      this.fail('a preamble longer than a buffer');
      return;
    }
    if (kept > 0 && this.start > 0) buf.copyWithin(0, this.start, this.filled);
    if (rest > 0) data.copy(buf, kept, take, n);
    const length = kept + rest;
    this.over = true;
    this.buf = null;
    this.owner.wheel.cancel(this);
    if (length === 0) {
      this.owner.pool.release(buf);
      this.owner.preambleDone(this, null, 0);
      return;
    }
    this.socket.pause(); // the session writes these bytes first; it resumes the client after
    this.owner.preambleDone(this, buf, length);
  }

  onEnd(): void {
    this.fail('the client sent FIN before the preamble was complete');
  }

  onError(code: string): void {
    this.fail(`client socket error ${code}`);
  }

  onClose(): void {
    this.fail('the client closed before the preamble was complete');
  }

  deadline(): number {
    return this.over ? 0 : this.startedAt + this.timeoutMs;
  }

  expire(): void {
    this.fail(`no complete preamble within ${this.timeoutMs} ms`);
  }

  /** Ends the preamble once: the client is closed, the owner told, the buffer returned. */
  fail(reason: string): void {
    if (this.over) return;
    this.over = true;
    this.owner.wheel.cancel(this);
    if (this.buf !== null) {
      this.owner.pool.release(this.buf);
      this.buf = null;
    }
    this.owner.preambleFailed(this, reason); // before the close: it reads the peer's address
    this.socket.destroy();
  }

  /** Closes the client without a verdict (shutdown, the operator). */
  kill(): void {
    this.fail('killed');
  }
}
