/**
 * What the admin server reads: the stats, live connections and servers of whatever runs the
 * proxy (one process's handle now; a supervisor aggregating its workers can implement the same).
 * Every method may answer at once or with a promise.
 */
import type { ProxyHandle, SwitchyardStats } from '../api.ts';
import type { BackendStats } from '../core/backend.ts';
import type { ConnectionInfo } from '../core/proxy.ts';

export interface StatsSource {
  stats(): SwitchyardStats | Promise<SwitchyardStats>;
  connections(): LiveConnection[] | Promise<LiveConnection[]>;
  backends(): BackendStats[] | Promise<BackendStats[]>;
  /** Closes one live connection; false when none has that id. */
  closeConnection(id: number): boolean | Promise<boolean>;
}

export type LiveConnection = ConnectionInfo & { frontend: string };

/** The StatsSource of a proxy running in this process. */
export function handleSource(handle: ProxyHandle): StatsSource {
  return {
    stats: () => handle.stats(),
    connections: () => handle.connections(),
    backends: () => Object.values(handle.stats().backends),
    closeConnection: (id) => handle.closeConnection(id),
  };
}
