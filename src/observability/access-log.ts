/**
 * The access log: one JSON line (pino) per finished connection, with who, where, how long, how
 * many bytes, how it ended (`cause`: a word of core/ending.ts, as in the metrics) and which side
 * sent FIN first (`fin`). Written off the data path: a line is made when a connection has
 * closed, or when the connection cap turned a client away.
 */
import pino, { type Logger } from 'pino';
import { Ending, type Rejection } from '../core/ending.ts';
import type { ConnectionLog } from '../core/proxy.ts';
import type { Session } from '../core/session.ts';
import { defaults } from '../defaults.ts';

/** Where the access log goes: a file path, `stdout`, or `off`. */
export type AccessLogTarget = string;

/** The access log `target` asks for (a file, `stdout`), or null for `off` / left out. */
export function openAccessLog(target: AccessLogTarget | undefined): AccessLog | null {
  const t = target ?? defaults.accessLog;
  return t === 'off' ? null : new AccessLog(t);
}

// Every line is the same kind of record: no level or pid, but a type that tells it apart from
// the process log when both go to one place. (An empty level object makes pino write invalid JSON.)
const LINE_OPTIONS = {
  base: null,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: () => ({ type: 'access' }) },
};

/** A ConnectionLog writing JSON lines to a file or stdout through pino. */
export class AccessLog implements ConnectionLog {
  private readonly dest: ReturnType<typeof pino.destination>;
  private readonly target: AccessLogTarget;
  private readonly toStdout: boolean;
  readonly log: Logger;
  private ended = false;
  private late: Logger | null = null;

  /** `target`: a file (appended to, created with its directory) or `stdout`. */
  constructor(target: AccessLogTarget) {
    this.target = target;
    this.toStdout = target === 'stdout';
    // Asynchronous writes: a line per connection must not block the event loop on disk.
    // close() flushes what is buffered.
    this.dest = pino.destination(
      this.toStdout ? { fd: 1, sync: false } : { dest: target, sync: false, mkdir: true },
    );
    this.log = pino(LINE_OPTIONS, this.dest);
  }

  closed(session: Session): void {
    const connectMs = session.connectedAt > 0 ? session.connectedAt - session.startedAt : null;
    this.out().info({
      id: session.id,
      client: session.clientName,
      frontend: session.frontend,
      backend: session.backend.name,
      server: session.tried.at(-1)?.name ?? null,
      connect_ms: connectMs,
      duration_ms: Date.now() - session.startedAt,
      bytes_in: session.client.bytesRead,
      bytes_out: session.server.bytesRead,
      cause: session.closeReason ?? Ending.done,
      fin: session.firstFin,
    });
  }

  rejected(frontend: string, ending: Rejection): void {
    // The engine turns the client away before any socket object exists: its address is unknown.
    this.out().info({
      client: null,
      frontend,
      backend: null,
      server: null,
      connect_ms: null,
      duration_ms: 0,
      bytes_in: 0,
      bytes_out: 0,
      cause: ending,
      fin: null,
    });
  }

  /**
   * Writes out every buffered line and closes the file. Connections killed by a shutdown report
   * closed a loop turn later: they are waited for briefly, and a line that still comes after
   * is written synchronously rather than lost.
   */
  async close(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const dest = this.dest as unknown as NodeJS.EventEmitter & {
      flushSync(): void;
      end(): void;
      fd: number;
    };
    if (dest.fd < 0) await new Promise((resolve) => dest.once('ready', resolve));
    try {
      dest.flushSync();
    } catch {
      // nothing buffered, or already closed
    }
    if (!this.toStdout) {
      await new Promise<void>((resolve) => {
        dest.once('close', () => resolve());
        dest.end();
      });
    }
    this.ended = true;
  }

  /** The logger for the next line: the asynchronous one, or after close() a synchronous one. */
  private out(): Logger {
    if (this.ended && this.late === null) {
      const target = this.toStdout ? { fd: 1, sync: true } : { dest: this.target, sync: true };
      this.late = pino(LINE_OPTIONS, pino.destination(target));
    }
    return this.late ?? this.log;
  }
}
