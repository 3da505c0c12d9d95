/**
 * What the supervisor and its workers say to each other over the IPC channel (JSON, so the same
 * on Node and Bun).
 */
import type { Config } from '../config/schema.ts';
import type { ConnectionRow, SwitchyardStats } from '../stats.ts';

/** Set in a worker's environment to its id (1..N): the CLI then runs as that worker. */
export const WORKER_ENV = 'SWITCHYARD_WORKER';

export type ToWorker =
  /** Send a report (stats) now. */
  | { type: 'report' }
  /** List every live connection, answering with the same id. */
  | { type: 'connections'; id: number }
  /** Apply this config (validated by the supervisor already). */
  | { type: 'reload'; config: Config }
  /** Stop accepting and drain for up to deadlineMs, then exit 0. */
  | { type: 'stop'; deadlineMs: number }
  /** Exit at once. */
  | { type: 'exit-now' };

export type FromWorker =
  /** Every frontend listens. */
  | { type: 'ready'; ports: Record<string, number> }
  /** Every workerReportMs and when asked: counters only, small whatever the connections. */
  | { type: 'report'; stats: SwitchyardStats }
  /** The answer to a `connections` request (only then: 4,000 rows a second cost 1-3 % CPU). */
  | { type: 'connections'; id: number; connections: ConnectionRow[] }
  | { type: 'reloaded'; error?: string };
