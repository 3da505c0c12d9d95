import pino, { type Logger } from 'pino';
import { LineWriter } from './log-writer.ts';

export { flushLogs, logDropped, logDroppedByReason } from './log-writer.ts';
export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How long the process log is given to write what it holds before the process exits. */
export const EXIT_FLUSH_MS = 1000;

/**
 * JSON lines on stderr, so stdout stays free for an access log. Asynchronous and bounded (see
 * log-writer.ts): a full or stalled stderr loses lines, counted in logDropped(), and never
 * blocks the proxy. Before exiting, `await flushLogs(EXIT_FLUSH_MS)` writes what is queued.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid } }, new LineWriter({ fd: 2 }));
}
