import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { LineWriter } from './log-writer.ts';

export { flushLogs, logDropped, logDroppedByReason } from './log-writer.ts';
export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * How log lines look: `json` lines, `pretty` short human lines, or `auto`: pretty when the
 * line's descriptor is a terminal, JSON otherwise (a pipe, a file, a log collector).
 */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** How long the process log is given to write what it holds before the process exits. */
export const EXIT_FLUSH_MS = 1000;

/**
 * The process's format (the command line's `--log-format`), for the logs it opens later: the
 * access log is opened by createProxy, which knows nothing of the command line.
 */
let processFormat: LogFormat = 'auto';

/** Sets the format of every log this process opens from now on (default `auto`). */
export function setLogFormat(format: LogFormat): void {
  processFormat = format;
}

/** Whether lines for descriptor `fd` are pretty under `format` (default: the process's). */
export function isPretty(fd: number, format: LogFormat = processFormat): boolean {
  return format === 'pretty' || (format === 'auto' && isatty(fd));
}

/**
 * JSON lines on stderr, so stdout stays free for an access log; short human lines instead when
 * stderr is a terminal (or `format` is `pretty`). Asynchronous and bounded (see log-writer.ts): a
 * full or stalled stderr loses lines, counted in logDropped(), and never blocks the proxy. Before
 * exiting, `await flushLogs(EXIT_FLUSH_MS)` writes what is queued.
 */
export function createLogger(level: LogLevel, format: LogFormat = processFormat): Logger {
  const writer = new LineWriter({ fd: 2 });
  return pino({ level, base: { pid: process.pid } }, logDestination(writer, 2, format));
}

/**
 * pino's destination for a LineWriter: the JSON line as pino made it, or that line made human by
 * pino-pretty when `isPretty(fd, format)`.
 *
 * pino-pretty runs here as a formatter (prettyFactory), on this thread, and the LineWriter still
 * does the writing, so a stalled terminal loses lines instead of blocking. Not as a pino
 * transport: that one runs in a worker thread behind thread-stream, which blocks the event loop
 * in Atomics.wait when its buffer is full and in flushSync at exit (the same trap as
 * sonic-boom's, log-writer.ts), and pino-pretty's own destination is a sonic-boom. Formatting
 * costs about 14 µs a line here (measured: 20,000 lines of the `listening` message, 2.5 GHz
 * Xeon, against 0.75 µs to parse one), paid only when a person watches a terminal.
 */
export function logDestination(
  writer: LineWriter,
  fd: number,
  format: LogFormat = processFormat,
  options: { messageFormat?: (log: Record<string, unknown>) => string; ignore?: string } = {},
): DestinationStream {
  if (!isPretty(fd, format)) return writer;
  const pretty = prettyFactory({
    colorize: isatty(fd) && process.env.NO_COLOR === undefined,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: options.ignore ?? 'pid,hostname',
    singleLine: true,
    ...(options.messageFormat
      ? {
          messageFormat: (log: Record<string, unknown>) =>
            (options.messageFormat as (log: Record<string, unknown>) => string)(log),
        }
      : {}),
  });
  return {
    write(line: string) {
      writer.write(pretty(line));
    },
  };
}
