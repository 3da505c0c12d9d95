/**
 * A rate limit for log lines on hot error paths (a flood of refused connects, resets, accept
 * errors): per message key, at most `linesPerWindow` lines per window; the rest are counted, and
 * once the window is over one line says how many were held back ("N similar lines suppressed").
 *
 * Imports nothing of the project but log-writer.ts (which imports nothing of it), so any layer,
 * the core included, can hold one.
 */
import type { Logger } from 'pino';
import { countLogDropped, LogDropReason } from './log-writer.ts';

/** Default lines per key per window. */
export const DEFAULT_LINES_PER_WINDOW = 10;
/** Default window, in milliseconds. */
export const DEFAULT_WINDOW_MS = 1000;

export type LimitedLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface LogLimiterOptions {
  /** Lines each key may write per window (default 10); `0` = none, only the summary lines. */
  linesPerWindow?: number;
  /** The window, in ms (default 1000). */
  windowMs?: number;
  /** A monotonic clock in ms (default performance.now); tests pass their own. */
  now?: () => number;
}

/** One key's window: when it started, lines written in it, lines held back. */
interface Window {
  start: number;
  written: number;
  suppressed: number;
  level: LimitedLevel;
}

/** Writes to `log` at most `linesPerWindow` lines per key and window (see the file comment). */
export class LogLimiter {
  private readonly log: Logger;
  private readonly linesPerWindow: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** Keys are message kinds (a fixed set in the code), so the map stays small. */
  private readonly windows = new Map<string, Window>();
  /** One coarse timer for every key, armed only while some key holds lines back. */
  private timer: NodeJS.Timeout | null = null;

  constructor(log: Logger, options: LogLimiterOptions = {}) {
    this.log = log;
    this.linesPerWindow = options.linesPerWindow ?? DEFAULT_LINES_PER_WINDOW;
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.now = options.now ?? (() => performance.now());
    this.onTimer = this.onTimer.bind(this);
  }

  /**
   * Writes `msg` with `obj` at `level`, unless `key` has written its lines in this window: then
   * the line is counted (logDropped(), reason suppressed) for the window's summary. Returns
   * whether the line was written.
   */
  write(level: LimitedLevel, key: string, obj: object, msg: string): boolean {
    const now = this.now();
    let w = this.windows.get(key);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (w !== undefined) this.summarise(key, w);
      w = { start: now, written: 0, suppressed: 0, level };
      this.windows.set(key, w);
    }
    if (w.written < this.linesPerWindow) {
      w.written++;
      this.log[level](obj, msg);
      return true;
    }
    w.suppressed++;
    w.level = level;
    countLogDropped(LogDropReason.SUPPRESSED);
    this.timer ??= setTimeout(this.onTimer, this.windowMs).unref();
    return false;
  }

  /** Writes the summary of every window that is over, and forgets those keys. */
  flush(): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      if (now - w.start < this.windowMs) continue;
      this.summarise(key, w);
      this.windows.delete(key);
    }
  }

  /** Writes every pending summary now, windows over or not, and stops the timer. */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const [key, w] of this.windows) this.summarise(key, w);
    this.windows.clear();
  }

  private onTimer(): void {
    this.timer = null;
    this.flush();
    for (const w of this.windows.values()) {
      if (w.suppressed > 0) {
        this.timer = setTimeout(this.onTimer, this.windowMs).unref();
        return;
      }
    }
  }

  private summarise(key: string, w: Window): void {
    if (w.suppressed === 0) return;
    const n = w.suppressed;
    w.suppressed = 0;
    this.log[w.level](
      { key, suppressed: n, windowMs: this.windowMs },
      `${n} similar lines suppressed`,
    );
  }
}
