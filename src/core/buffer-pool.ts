import { ErrorCode, SwitchyardError } from '../errors.ts';

/**
 * Fixed-size buffers carved out of one allocation made at start-up.
 *
 * The slab is allocated uninitialised, so pages nobody has written to cost no RSS: the pool's
 * resident size follows the number of buffers in use at the peak, not its capacity. Buffers
 * come back LIFO, so the steady state reuses the same few, cache-warm buffers.
 *
 * Who holds one: a direction whose peer has not yet taken all the bytes read for it. It goes back
 * the moment the peer has taken them (see Session in session.ts). Idle connections hold none.
 */
export class BufferPool {
  readonly size: number;
  readonly capacity: number;
  private readonly free: Buffer[];
  private readonly out = new Set<Buffer>();
  /** Most buffers out at once since start (a gauge for tests and metrics). */
  highWater = 0;

  constructor(bufferSize: number, capacity: number) {
    this.size = bufferSize;
    this.capacity = capacity;
    const slab = Buffer.allocUnsafeSlow(bufferSize * capacity);
    // The views are made once here; acquire/release never allocate.
    this.free = new Array<Buffer>(capacity);
    for (let i = 0; i < capacity; i++) {
      this.free[capacity - 1 - i] = slab.subarray(i * bufferSize, (i + 1) * bufferSize);
    }
  }

  /** Buffers handed out and not yet returned. */
  get inUse(): number {
    return this.out.size;
  }

  /** Takes a buffer; throws SWITCHYARD_ERR_POOL_EXHAUSTED when none is left. */
  acquire(): Buffer {
    const buf = this.free.pop();
    if (buf === undefined) {
      throw new SwitchyardError(
        ErrorCode.POOL_EXHAUSTED,
        `buffer pool exhausted (${this.capacity} x ${this.size} bytes)`,
      );
    }
    this.out.add(buf);
    if (this.out.size > this.highWater) this.highWater = this.out.size;
    return buf;
  }

  /** Gives a buffer back. Returning one twice, or a stranger, throws SWITCHYARD_ERR_POOL_MISUSE. */
  release(buf: Buffer): void {
    if (!this.out.delete(buf)) {
      throw new SwitchyardError(
        ErrorCode.POOL_MISUSE,
        'buffer released twice or not from this pool',
      );
    }
    this.free.push(buf);
  }
}
