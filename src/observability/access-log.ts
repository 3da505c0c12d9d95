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
import { logDestination } from '../log.ts';
import { LineWriter } from '../log-writer.ts';
import type { TlsInfo } from '../tls.ts';

/** Where the access log goes: a file path, `stdout`, or `off`. */
export type AccessLogTarget = string;

/**
 * The access log `target` asks for (a file, `stdout`), or null for `off` / left out. `log`, when
 * given, is told when writing the access log fails (once per error code in a row).
 */
export function openAccessLog(target: AccessLogTarget | undefined, log?: Logger): AccessLog | null {
  const t = target ?? defaults.accessLog;
  return t === 'off' ? null : new AccessLog(t, log);
}

// Every line is the same kind of record: no level or pid, but a type that tells it apart from
// the process log when both go to one place. (An empty level object makes pino write invalid JSON.)
const LINE_OPTIONS = {
  base: null,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: () => ({ type: 'access' }) },
};

/** One access line for people: `#7 127.0.0.1:5555 web→app/a done 12 ms in 5 B out 5 B fin client`. */
function accessLine(l: Record<string, unknown>): string {
  const server = l.server === null ? '' : `/${l.server}`;
  const backend = l.backend === null ? '' : `→${l.backend}${server}`;
  const id = l.id === undefined ? '' : `#${l.id} `;
  return `${id}${l.client ?? '-'} ${l.frontend}${backend} ${l.cause} ${Math.round(Number(l.duration_ms))} ms in ${l.bytes_in} B out ${l.bytes_out} B${l.fin ? ` fin ${l.fin}` : ''}`;
}

/** How long close() may spend writing what is queued; a slow destination loses the rest. */
const CLOSE_FLUSH_MS = 1000;

/**
 * A ConnectionLog writing JSON lines to a file or stdout: pino formats, a LineWriter writes
 * (asynchronously, bounded, never blocking the data path; see log-writer.ts).
 */
/** A TLS client's negotiated parameters as log fields; none for plain TCP. */
function tlsFields(tls: TlsInfo | null): Record<string, string | null> {
  if (tls === null) return {};
  return { sni: tls.sni, alpn: tls.alpn, tls_version: tls.version, tls_cipher: tls.cipher };
}

export class AccessLog implements ConnectionLog {
  private readonly writer: LineWriter;
  readonly log: Logger;

  /** `target`: a file (appended to, created with its directory) or `stdout`. */
  constructor(target: AccessLogTarget, processLog?: Logger) {
    const onError = processLog
      ? (err: NodeJS.ErrnoException) =>
          processLog.error(
            { code: err.code, err: err.message, target },
            'access log: write failed; lines are dropped until it works again',
          )
      : undefined;
    this.writer = new LineWriter(target === 'stdout' ? { fd: 1 } : { path: target }, { onError });
    // On a terminal (stdout, or --log-format pretty), one short line: time, the pair, the ending.
    const destination =
      target === 'stdout'
        ? logDestination(this.writer, 1, undefined, {
            messageFormat: accessLine,
            ignore:
              'type,id,client,frontend,backend,server,connect_ms,duration_ms,bytes_in,bytes_out,cause,fin',
          })
        : this.writer;
    this.log = pino(LINE_OPTIONS, destination);
  }
  closed(session: Session): void {
    const connectMs = session.connectedAt > 0 ? session.connectedAt - session.startedAt : null;
    this.log.info({
      id: session.id,
      client: session.clientName,
      frontend: session.frontend,
      backend: session.backend.name,
      server: session.tried.at(-1)?.name ?? null,
      connect_ms: connectMs,
      duration_ms: session.ctx.wheel.now - session.startedAt, // monotonic: never negative
      bytes_in: session.client.bytesRead,
      bytes_out: session.server.bytesRead,
      cause: session.closeReason ?? Ending.done,
      fin: session.firstFin,
      ...tlsFields(session.tls),
      // SNI routing: the ClientHello's name (a terminated handshake's is in tlsFields).
      ...(session.tls === null && session.sni !== null ? { sni: session.sni } : {}),
    });
  }

  rejected(frontend: string, ending: Rejection, client: string | null = null): void {
    // At the cap and the accept rate the engine turns the client away before any socket object
    // exists: its address is unknown (null).
    this.log.info({
      client,
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

  /** Opens the file again at its path (logrotate renamed it); no-op for stdout. */
  reopen(): void {
    this.writer.reopen();
  }

  /**
   * Writes out what is queued (for at most a second) and closes the file. Connections killed by
   * a shutdown report closed a loop turn later: such a late line opens the file again, and is
   * written and closed asynchronously like any other.
   */
  async close(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    await this.writer.end(CLOSE_FLUSH_MS);
  }
}
