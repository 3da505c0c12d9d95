/**
 * Starts a config's admin server. The caller decides where: the one process that sees every
 * connection (the access log, by contrast, is opened by each proxy: createProxy).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { type AdminServer, startAdminServer } from './server.ts';
import type { StatsSource } from './source.ts';

/** Starts the admin server when the config has one; null otherwise. */
export async function startAdmin(
  config: Pick<Config, 'admin'>,
  source: StatsSource,
  isReady: () => boolean,
  log: Logger,
): Promise<AdminServer | null> {
  if (!config.admin) return null;
  const admin = await startAdminServer({
    listen: config.admin.listen,
    token: config.admin.token,
    allowedHosts: config.admin.allowedHosts,
    allowChangesWithoutToken: config.admin.allowChangesWithoutToken,
    source,
    isReady,
    log,
  });
  log.info(
    {
      admin: `${admin.address.host}:${admin.address.port}`,
      token: config.admin.token !== undefined,
    },
    'admin server listening',
  );
  return admin;
}

/**
 * Starts the config's admin server (if any) for what the CLI runs: one proxy in this process, or
 * a supervisor summing its workers. Ready at once
 * (it is called once the listeners are up); not ready from the first SIGTERM/SIGINT, while the
 * proxy drains. Resolves with a stop function.
 */
export async function startAdminFor(
  source: StatsSource,
  config: Pick<Config, 'admin'>,
  log: Logger,
): Promise<() => Promise<void>> {
  let ready = true;
  const draining = () => {
    ready = false;
  };
  const admin = await startAdmin(config, source, () => ready, log);
  if (admin === null) return async () => {};
  process.once('SIGTERM', draining);
  process.once('SIGINT', draining);
  return async () => {
    process.off('SIGTERM', draining);
    process.off('SIGINT', draining);
    await admin.close();
  };
}
