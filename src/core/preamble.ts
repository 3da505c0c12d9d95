/**
 * The preamble: what a client must send before switchyard chooses a server for it, read before
 * any Session or backend connect exists: a PROXY protocol header, then (SNI routing) a TLS
 * ClientHello, or either alone.
 *
 * The client's bytes go into ONE pool buffer (acquired at the first byte, so a client that sends
 * nothing holds none), filled by as many reads as it takes, and each stage parses that buffer
 * incrementally, resuming where it stopped. A stage returns how many bytes it consumed (0: it
 * only looked, as the ClientHello reader does: those bytes go to the server). Consumed bytes
 * are dropped at once (the rest moves to the front: at most once per stage), so the next stage
 * has the whole buffer. Once every stage is done the buffer holds the client's first data,
 * which the session takes as its `early` data (written to the server first): no byte is copied
 * twice and nothing is allocated per read. A stage that needs more than the buffer holds fails.
 *
 * A stage that fails, a client that closes or errs, or a stage not complete within its timeout
 * (from the stage's start: accept for the first; the timeouts add up, so a client trickling one
 * byte at a time gains nothing) closes the client; nothing has reached a server. `failedStage`
 * and `timedOut` say which and why, for the owner's counters.
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
  /** Each stage's time limit in milliseconds, from its start; 0 = none. */
  private readonly timeoutsMs: readonly number[];
  readonly startedAt: number;
  /** When the current stage started (accept for the first). */
  private stageStartedAt: number;
  /** Pool buffer of the bytes read so far; null until the first byte (and once handed over). */
  private buf: Buffer | null = null;
  /** Bytes in `buf` not consumed by a finished stage (they start at 0). */
  private filled = 0;
  private stage = 0;
  /** Done or failed: later events are ignored. */
  private over = false;
  /** The stage that was running when the preamble failed (null: done, or none started). */
  failedStage: PreambleStage | null = null;
  /** The failure was the stage's timeout. */
  timedOut = false;
  wheelSlot = -1;
  wheelIndex = 0;

  constructor(
    owner: PreambleOwner,
    socket: EngineSocket,
    stages: PreambleStage[],
    timeoutsMs: readonly number[],
  ) {
    this.owner = owner;
    this.socket = socket;
    this.stages = stages;
    this.timeoutsMs = timeoutsMs;
    this.startedAt = owner.wheel.now;
    this.stageStartedAt = this.startedAt;
    owner.wheel.schedule(this);
    socket.resume();
  }

  /** The stage running now, or null once every one is done. */
  get current(): PreambleStage | null {
    return this.stages[this.stage] ?? null;
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
    let used = 0; // of this read
    while (this.stage < this.stages.length) {
      // Take what fits of this read; a stage that consumed its bytes made room for more.
      const take = Math.min(n - used, buf.length - this.filled);
      data.copy(buf, this.filled, used, used + take);
      this.filled += take;
      used += take;
      const stage = this.stages[this.stage] as PreambleStage;
      const r = stage.parse(buf, 0, this.filled);
      if (r === STAGE_FAILED) {
        this.fail(stage.error);
        return;
      }
      if (r === STAGE_NEED_MORE) {
        if (this.filled === buf.length) {
          this.fail(`not complete in ${buf.length} bytes (a buffer)`);
        }
        return; // the next read goes on where this one stopped
      }
      this.stage++;
      if (r > 0) {
        buf.copyWithin(0, r, this.filled);
        this.filled -= r;
      }
      if (this.stage < this.stages.length) {
        this.stageStartedAt = this.owner.wheel.now;
        this.owner.wheel.schedule(this); // refiled under the next stage's timeout
      }
    }
    // Done. The client's first data: the buffer, then what did not fit of this read (bytes
    // after a ClientHello that filled the buffer: a client that sent 0-RTT data with it).
    const rest = n - used;
    if (this.filled + rest > buf.length) {
      this.fail('first data longer than a buffer');
      return;
    }
    if (rest > 0) data.copy(buf, this.filled, used, n);
    const length = this.filled + rest;
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
    const limit = this.timeoutsMs[this.stage] ?? 0;
    return this.over || limit <= 0 ? 0 : this.stageStartedAt + limit;
  }

  expire(): void {
    this.timedOut = true;
    this.fail(`not complete within ${this.timeoutsMs[this.stage]} ms`);
  }

  /** Ends the preamble once: the client is closed, the owner told, the buffer returned. */
  fail(reason: string): void {
    if (this.over) return;
    this.over = true;
    // Past the last stage only the first data can fail (too long): the last stage's bytes.
    this.failedStage = this.current ?? this.stages.at(-1) ?? null;
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
