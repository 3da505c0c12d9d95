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
  private readonly slab: Buffer;
  private readonly free: Buffer[];
  /** 1 where the buffer at that index is handed out. A flag array, not a Set: no hashing per chunk. */
  private readonly out: Uint8Array;
  private outCount = 0;
  /** Most buffers out at once since start (a gauge for tests and metrics). */
  highWater = 0;

  constructor(bufferSize: number, capacity: number) {
    this.size = bufferSize;
    this.capacity = capacity;
    const slab = Buffer.allocUnsafeSlow(bufferSize * capacity);
    this.slab = slab;
    this.out = new Uint8Array(capacity);
    // The views are made once here; acquire/release never allocate.
    this.free = new Array<Buffer>(capacity);
    for (let i = 0; i < capacity; i++) {
      this.free[capacity - 1 - i] = slab.subarray(i * bufferSize, (i + 1) * bufferSize);
    }
  }

  /** Buffers handed out and not yet returned. */
  get inUse(): number {
    return this.outCount;
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
    this.out[this.indexOf(buf)] = 1;
    if (++this.outCount > this.highWater) this.highWater = this.outCount;
    return buf;
  }

  /** Gives a buffer back. Returning one twice, or a stranger, throws SWITCHYARD_ERR_POOL_MISUSE. */
  release(buf: Buffer): void {
    const i = this.indexOf(buf);
    if (i < 0 || this.out[i] !== 1) {
      throw new SwitchyardError(
        ErrorCode.POOL_MISUSE,
        'buffer released twice or not from this pool',
      );
    }
    this.out[i] = 0;
    this.outCount--;
    this.free.push(buf);
  }

  /** The buffer's slot in the slab, or -1 for a buffer that is not one of ours. */
  private indexOf(buf: Buffer): number {
    const offset = buf.byteOffset - this.slab.byteOffset;
    if (buf.buffer !== this.slab.buffer || offset < 0 || offset % this.size !== 0) return -1;
    return offset / this.size;
  }
}
