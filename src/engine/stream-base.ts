/**
 * Node's stream_base shared state: how a native stream handle's `onread` callback learns how many
 * bytes it was given (or the error), and where in the ArrayBuffer they start. Node only: Bun
 * has no `process.binding('stream_wrap')`, and null is returned there.
 */
export interface StreamBase {
  readonly state: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  /** The request object a handle's writeBuffer takes; its `oncomplete(status)` ends the write. */
  readonly WriteWrap: new () => WriteReq;
}

/** A write request, as `writeBuffer` takes it; `buffer` keeps the bytes alive while it runs. */
export interface WriteReq {
  oncomplete: ((this: WriteReq, status: number) => void) | null;
  owner: unknown;
  buffer: Buffer | null;
}

export function loadStreamBase(): StreamBase | null {
  try {
    const load = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const b = load('stream_wrap') as {
      streamBaseState?: unknown;
      kReadBytesOrError?: unknown;
      kArrayBufferOffset?: unknown;
      WriteWrap?: unknown;
    };
    if (
      !(b.streamBaseState instanceof Int32Array) ||
      typeof b.kReadBytesOrError !== 'number' ||
      typeof b.kArrayBufferOffset !== 'number' ||
      typeof b.WriteWrap !== 'function'
    ) {
      return null;
    }
    return {
      state: b.streamBaseState,
      kReadBytesOrError: b.kReadBytesOrError,
      kArrayBufferOffset: b.kArrayBufferOffset,
      WriteWrap: b.WriteWrap as new () => WriteReq,
    };
  } catch {
    return null;
  }
}

/** libuv's end of stream. */
export const UV_EOF = -4095;
