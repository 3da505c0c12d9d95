/**
 * A bounded, asynchronous line writer for the access log and the process log: pino formats a
 * line, this writes it to a file or a descriptor, and a log that cannot be written (full disk,
 * I/O error, a pipe whose reader left or stopped reading) loses lines, counted, instead of
 * stalling or killing the proxy.
 *
 * Hand-written rather than pino.destination() (sonic-boom), because of what that does when a
 * write fails, measured with `--access-log /dev/full` (test/faults/log-faults.test.ts): the
 * unhandled ENOSPC 'error' is thrown from a write callback, and pino's exit hook then calls
 * flushSync(), which retries any error but EAGAIN forever with Atomics.wait (100 ms sleeps):
 * the process hangs in a futex and SIGTERM no longer ends it. flushSync() on a pipe nobody reads
 * blocks the same way, and the synchronous mode blocks the event loop on every slow write.
 *
 * Here: one write in flight at a time, lines queued behind it up to a byte cap, and nothing
 * synchronous but one bounded attempt at exit. Files are written with fs.write (a libuv pool
 * thread, never the event loop). A pipe or socket descriptor on Node is written as a non-blocking
 * stream (net.Socket): fs.write on a blocking pipe nobody reads holds a pool thread in write(2),
 * and Node joins that thread at exit, so SIGTERM never ends the process (measured). Bun's
 * net.Socket({ fd }) never returns from such a pipe either, but its exit does not wait for
 * fs.write's thread, so Bun keeps fs.write.
 */
import { close, fstatSync, mkdir, open, write, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname } from 'node:path';

/** Why a log line was not written. */
export const LogDropReason = {
  /** The writer's queue was at its cap (the destination is slower than the lines). */
  FULL: 'full',
  /** The destination failed (ENOSPC, EIO, EPIPE, ...): the lines of that write are lost. */
  ERROR: 'error',
  /** A rate limiter (log-limiter.ts) held the line back and counted it in a summary line. */
  SUPPRESSED: 'suppressed',
} as const;
export type LogDropReason = (typeof LogDropReason)[keyof typeof LogDropReason];

const dropped: Record<LogDropReason, number> = { full: 0, error: 0, suppressed: 0 };

/** Counts `n` log lines of this process that were not written. */
export function countLogDropped(reason: LogDropReason, n = 1): void {
  dropped[reason] += n;
}

/** Log lines (process log and access log) this process did not write, since it started. */
export function logDropped(): number {
  return dropped.full + dropped.error + dropped.suppressed;
}

/** logDropped() by reason. */
export function logDroppedByReason(): Readonly<Record<LogDropReason, number>> {
  return { ...dropped };
}

/** Default cap of the queue, in UTF-16 code units (about bytes for JSON lines): 1 MiB. */
export const DEFAULT_MAX_QUEUED = 1024 * 1024;
/** The largest single fs.write: what is queued is joined up to this size. */
const MAX_WRITE = 64 * 1024;
/** After EAGAIN (a non-blocking pipe that is full), try again this much later. */
const EAGAIN_RETRY_MS = 20;
/** After any other error, writing pauses this long; lines queue up to the cap meanwhile. */
const ERROR_PAUSE_MS = 1000;

/** Where lines go: an open descriptor (1, 2) or a file appended to, created with its directory. */
export type LineTarget = { fd: number } | { path: string };

export interface LineWriterOptions {
  /** Queue cap in UTF-16 code units; lines beyond it are dropped. Default DEFAULT_MAX_QUEUED. */
  maxQueued?: number;
  /** Told of a write or open error when its code differs from the last one (not once a line). */
  onError?: (err: NodeJS.ErrnoException) => void;
}

/** Every writer that exists, for the exit flush and for reopening files on SIGUSR1. */
const writers = new Set<LineWriter>();

/**
 * Writes whole lines to `target`, asynchronously, in order. write() never blocks and never
 * throws; when the destination is slow the queue grows up to its cap, then lines are dropped.
 */
export class LineWriter {
  readonly target: LineTarget;
  private readonly maxQueued: number;
  private readonly onError: ((err: NodeJS.ErrnoException) => void) | undefined;
  /** The descriptor written to; -1 while a file is not open (yet, or after end()). */
  private fd: number;
  private queue: string[] = [];
  /** Queued code units (the cap's measure). */
  private queued = 0;
  /** The buffer of the write in flight (or waiting to be retried), and how many lines it holds. */
  private batch: Buffer | null = null;
  private batchLines = 0;
  private writing = false;
  private opening = false;
  private retry: NodeJS.Timeout | null = null;
  private reopenPending = false;
  /** Set by end(): the file is closed whenever nothing is left to write. */
  private ending = false;
  /** EPIPE on a descriptor: the reader is gone for good, so every later line is dropped. */
  private broken = false;
  private lastErrorCode: string | undefined;
  private idleWaiters: (() => void)[] = [];
  /** The descriptor as a non-blocking stream, when it is a pipe or socket on Node (see above). */
  private readonly stream: Socket | null;

  constructor(target: LineTarget, options: LineWriterOptions = {}) {
    this.target = target;
    this.fd = 'fd' in target ? target.fd : -1;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.onError = options.onError;
    this.onWritten = this.onWritten.bind(this);
    this.onOpened = this.onOpened.bind(this);
    this.onRetry = this.onRetry.bind(this);
    this.onStreamWritten = this.onStreamWritten.bind(this);
    this.stream = 'fd' in target ? openStream(target.fd) : null;
    writers.add(this);
  }

  /** Queues one line (pino's DestinationStream). Drops it, counted, when full or broken. */
  write(line: string): boolean {
    if (this.broken) {
      countLogDropped(LogDropReason.ERROR);
      return true;
    }
    if (this.queued + line.length > this.maxQueued) {
      countLogDropped(LogDropReason.FULL);
      return true;
    }
    this.queue.push(line);
    this.queued += line.length;
    this.kick();
    return true;
  }

  /** True when nothing is queued or being written. */
  get idle(): boolean {
    return this.queue.length === 0 && this.batch === null && !this.opening;
  }

  /** Opens the file again at its path (after logrotate renamed it); no-op for a descriptor. */
  reopen(): void {
    if (!('path' in this.target)) return;
    if (this.writing || this.opening) {
      this.reopenPending = true;
      return;
    }
    this.broken = false;
    this.openFile();
  }

  /**
   * Resolves once everything queued is written, or after `timeoutMs` (what is still queued
   * then is counted as dropped by `end`, or left queued by `flush`). Never blocks.
   */
  flush(timeoutMs: number): Promise<void> {
    if (this.idle || this.broken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.idleWaiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /**
   * Writes what is queued (for at most `timeoutMs`), then closes the file. A line written after
   * this opens it again and it is closed again once written: late lines are not lost.
   */
  async end(timeoutMs: number): Promise<void> {
    this.ending = true;
    await this.flush(timeoutMs);
    if (!this.idle) {
      this.dropQueue();
      if (this.retry !== null) {
        clearTimeout(this.retry);
        this.retry = null;
        this.dropBatch();
      }
    }
    this.closeIfDone();
    if (this.fd < 0 || !('path' in this.target)) writers.delete(this);
  }

  /**
   * At process exit: one synchronous attempt at what is queued, only when no write is in flight
   * or waiting (else the destination is slow, and waiting on it is what must not happen). The
   * rest is counted as dropped.
   */
  flushAtExit(): void {
    if (this.queue.length === 0) return;
    if (this.writing || this.opening || this.retry !== null || this.fd < 0 || this.broken) {
      this.dropQueue();
      return;
    }
    // A pipe or socket may be blocking and full: only files and terminals are written here.
    try {
      const stat = fstatSync(this.fd);
      if (!stat.isFile() && !stat.isCharacterDevice()) {
        this.dropQueue();
        return;
      }
      const buf = Buffer.from(this.queue.join(''));
      const lines = this.queue.length;
      this.queue = [];
      this.queued = 0;
      if (writeSync(this.fd, buf) < buf.length) countLogDropped(LogDropReason.ERROR, lines);
    } catch {
      countLogDropped(LogDropReason.ERROR, this.queue.length);
      this.queue = [];
      this.queued = 0;
    }
  }

  /** Starts the next write when none is in flight. */
  private kick(): void {
    if (this.writing || this.opening || this.retry !== null) return;
    if (this.fd < 0) {
      if (this.queue.length > 0) this.openFile();
      return;
    }
    if (this.batch === null) {
      if (this.queue.length === 0) {
        this.becameIdle();
        return;
      }
      this.takeBatch();
    }
    this.writing = true;
    const batch = this.batch as Buffer;
    if (this.stream !== null) this.stream.write(batch, this.onStreamWritten);
    else write(this.fd, batch, 0, batch.length, null, this.onWritten);
  }

  /** A stream write's callback: called once the kernel took every byte, or with the error. */
  private onStreamWritten(err: Error | null | undefined): void {
    if (err) this.onWritten(err as NodeJS.ErrnoException, 0);
    else this.onWritten(null, (this.batch as Buffer).length);
  }

  /** Moves queued lines, up to MAX_WRITE, into one buffer for the next write. */
  private takeBatch(): void {
    let n = 0;
    let size = 0;
    while (
      n < this.queue.length &&
      (n === 0 || size + (this.queue[n] as string).length <= MAX_WRITE)
    ) {
      size += (this.queue[n] as string).length;
      n++;
    }
    // The queue is short-lived strings; the batch buffer is freed when its write is done.
    this.batch = Buffer.from(
      n === this.queue.length ? this.queue.join('') : this.queue.slice(0, n).join(''),
    );
    this.batchLines = n;
    this.queue.splice(0, n);
    this.queued -= size;
  }

  private onWritten(err: NodeJS.ErrnoException | null, written: number): void {
    this.writing = false;
    if (err) {
      if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK') {
        // A non-blocking pipe that is full: the same bytes again a little later.
        this.retry = setTimeout(this.onRetry, EAGAIN_RETRY_MS).unref();
        return;
      }
      this.failed(err);
      this.dropBatch();
      if (err.code === 'EPIPE' && !('path' in this.target)) {
        this.broken = true;
        this.dropQueue();
        this.becameIdle();
        return;
      }
      this.retry = setTimeout(this.onRetry, ERROR_PAUSE_MS).unref();
      return;
    }
    this.lastErrorCode = undefined;
    const batch = this.batch as Buffer;
    if (written < batch.length) {
      this.batch = batch.subarray(written);
    } else {
      this.batch = null;
      this.batchLines = 0;
    }
    if (this.reopenPending && this.batch === null) {
      this.reopenPending = false;
      this.openFile();
      return;
    }
    this.kick();
  }

  private onRetry(): void {
    this.retry = null;
    this.kick();
  }

  private openFile(): void {
    const { path } = this.target as { path: string };
    this.opening = true;
    mkdir(dirname(path), { recursive: true }, (err) => {
      if (err) this.onOpened(err, -1);
      else open(path, 'a', this.onOpened);
    });
  }

  private onOpened(err: NodeJS.ErrnoException | null, fd: number): void {
    this.opening = false;
    if (err) {
      this.failed(err);
      if (this.fd < 0) {
        // Nowhere to write: what is queued is lost; try again after a pause.
        this.dropQueue();
        this.retry = setTimeout(this.onRetry, ERROR_PAUSE_MS).unref();
      }
      // On a failed reopen the old descriptor stays in use.
      this.kick();
      return;
    }
    const old = this.fd;
    this.fd = fd;
    if (old >= 0) close(old, ignore);
    if (this.reopenPending) {
      this.reopenPending = false;
      this.openFile();
      return;
    }
    this.kick();
  }

  private becameIdle(): void {
    this.closeIfDone();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** After end(): closes the file once nothing is left (descriptors 1 and 2 stay open). */
  private closeIfDone(): void {
    if (!this.ending || !('path' in this.target) || this.fd < 0) return;
    if (!this.idle || this.writing || this.retry !== null) return;
    const fd = this.fd;
    this.fd = -1;
    close(fd, ignore);
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (err.code === this.lastErrorCode) return;
    this.lastErrorCode = err.code;
    try {
      this.onError?.(err);
    } catch {
      // a report that fails is one more line lost, not a reason to stop writing
    }
  }

  private dropBatch(): void {
    if (this.batch === null) return;
    countLogDropped(LogDropReason.ERROR, this.batchLines);
    this.batch = null;
    this.batchLines = 0;
  }

  private dropQueue(): void {
    if (this.queue.length === 0) return;
    countLogDropped(LogDropReason.ERROR, this.queue.length);
    this.queue = [];
    this.queued = 0;
  }
}

function ignore() {}

/** `fd` as a non-blocking net.Socket when it is a pipe or socket and the runtime is Node, else null. */
function openStream(fd: number): Socket | null {
  if (process.versions.bun !== undefined) return null;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFIFO() && !stat.isSocket()) return null;
    const stream = new Socket({ fd, readable: false, writable: true });
    // Errors reach the write callbacks; the event must still be handled, or it is thrown.
    stream.on('error', ignore);
    // A log must not keep the process alive.
    stream.unref();
    return stream;
  } catch {
    return null;
  }
}

/** Opens every log file again at its path (SIGUSR1, after logrotate renamed them). */
export function reopenLogFiles(): void {
  for (const w of writers) w.reopen();
}

/** Resolves once every writer has written what it holds, or after `timeoutMs`. */
export async function flushLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...writers].map((w) => w.flush(timeoutMs)));
}

// A normal exit (process.exit after the drain) writes what is still queued, when it can
// without waiting.
process.on('exit', function logWritersOnExit() {
  for (const w of writers) w.flushAtExit();
});
