/**
 * Node's `stream_wrap` binding, the one place it is loaded (the Node engine's TCP handles and the
 * TLS socket's TLSWrap handle both use it): the shared state through which a native stream
 * handle's `onread` learns how many bytes it was given (or the error) and where in the
 * ArrayBuffer they start, and whether the last write completed inside the call; and the request
 * objects of writes and shutdowns. Node only: Bun has no `process.binding('stream_wrap')`, and
 * null is returned there.
 */
export interface StreamBase {
  readonly state: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  readonly kLastWriteWasAsync: number;
  /** The request object a handle's writeBuffer takes; its `oncomplete(status)` ends the write. */
  readonly WriteWrap: new () => WriteReq;
  /** The request object a handle's shutdown takes. */
  readonly ShutdownWrap: new () => unknown;
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
      kLastWriteWasAsync?: unknown;
      WriteWrap?: unknown;
      ShutdownWrap?: unknown;
    };
    if (
      !(b.streamBaseState instanceof Int32Array) ||
      typeof b.kReadBytesOrError !== 'number' ||
      typeof b.kArrayBufferOffset !== 'number' ||
      typeof b.kLastWriteWasAsync !== 'number' ||
      typeof b.WriteWrap !== 'function' ||
      typeof b.ShutdownWrap !== 'function'
    ) {
      return null;
    }
    return {
      state: b.streamBaseState,
      kReadBytesOrError: b.kReadBytesOrError,
      kArrayBufferOffset: b.kArrayBufferOffset,
      kLastWriteWasAsync: b.kLastWriteWasAsync,
      WriteWrap: b.WriteWrap as new () => WriteReq,
      ShutdownWrap: b.ShutdownWrap as new () => unknown,
    };
  } catch {
    return null;
  }
}

/** libuv's end of stream. */
export const UV_EOF = -4095;
