/**
 * What the admin server reads: the stats and live connections of whatever runs the proxy (a
 * ProxyHandle in this process, or a supervisor summing its workers: both are one). Every method
 * may answer at once or with a promise.
 */
import type { ConnectionRow, SwitchyardStats } from '../stats.ts';

export interface StatsSource {
  stats(): SwitchyardStats | Promise<SwitchyardStats>;
  connections(): ConnectionRow[] | Promise<ConnectionRow[]>;
  /**
   * Closes one live connection; false when none has that id. Left out where it cannot be done
   * (a supervisor: ids are per worker), which answers as "no such connection".
   */
  closeConnection?(id: number): boolean | Promise<boolean>;
}
