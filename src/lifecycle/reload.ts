import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';

/**
 * Reads and validates `file` for a reload (SIGHUP). Resolves with the new config, or null when it
 * is invalid or unreadable: then every problem is logged, one line each, and the caller keeps the
 * running config.
 */
export async function readReloadConfig(file: string, log: Logger): Promise<Config | null> {
  // Loaded only here, as in the CLI: the YAML and schema libraries are not needed otherwise.
  const { loadConfigFile } = await import('../config/load.ts');
  const { readTlsFiles } = await import('../config/tls-files.ts');
  try {
    const config = loadConfigFile(file);
    // Certificates and keys are re-read by the reload itself; a bad one is named here first.
    readTlsFiles(config);
    return config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) {
      log.error({ code: err.code, file, problem }, `reload rejected: ${problem}`);
    }
    const n = err.problems.length;
    log.error(
      { code: err.code, file, problems: n },
      `config not reloaded (${n} problem${n === 1 ? '' : 's'}); the running config stays`,
    );
    return null;
  }
}
