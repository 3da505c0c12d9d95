/**
 * The command line's observability options: `--admin HOST:PORT` (token from the environment, so
 * it never shows in `ps`) and `--access-log FILE|stdout|off`. They apply over the config's keys.
 */

import { parseAdminAddress } from '../config/address.ts';
import type { Config } from '../config/schema.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';

/** The environment variable `--admin` takes its token from. */
export const ADMIN_TOKEN_ENV = 'SWITCHYARD_ADMIN_TOKEN';

export interface ObserveArgs {
  admin?: NonNullable<Config['admin']>;
  accessLog?: string;
}

/** Parses the two options; throws SwitchyardError(INVALID_ARGUMENT) naming the bad one. */
export function parseObserveArgs(
  admin: string | undefined,
  accessLog: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ObserveArgs {
  const out: ObserveArgs = {};
  if (admin !== undefined) {
    const listen = parseAdminAddress(admin, '--admin');
    const token = env[ADMIN_TOKEN_ENV];
    out.admin = token ? { listen, token } : { listen };
  }
  if (accessLog !== undefined) {
    if (accessLog.trim() === '') {
      throw new SwitchyardError(
        ErrorCode.INVALID_ARGUMENT,
        '--access-log: expected a file, stdout or off',
      );
    }
    out.accessLog = accessLog;
  }
  return out;
}

/** `config` with the command line's options over its own `admin` and `accessLog`. */
export function withObserveArgs(config: Config, args: ObserveArgs): Config {
  return {
    ...config,
    ...(args.admin ? { admin: args.admin } : {}),
    ...(args.accessLog !== undefined ? { accessLog: args.accessLog } : {}),
  };
}
