import { defaults } from '../defaults.ts';
import type { HostPort } from '../units.ts';
import type { BackendConfig } from './schema.ts';

/**
 * A backend of one server with every other setting at its default: what `--backend HOST:PORT`
 * means. Kept free of the schema library so the shorthand CLI starts without loading it.
 */
export function singleServerBackend(address: HostPort, connectTimeoutMs: number): BackendConfig {
  return {
    name: 'default',
    balance: defaults.balance,
    connectTimeout: connectTimeoutMs,
    retries: defaults.retries,
    queueTimeout: defaults.queueTimeoutMs,
    maxQueued: defaults.maxQueued,
    healthCheck: undefined,
    servers: [
      {
        name: 'default',
        address,
        weight: defaults.weight,
        maxConnections: defaults.serverMaxConnections,
        backup: false,
      },
    ],
  };
}
