/**
 * The command line's observability options: `--admin HOST:PORT` (token from the environment, so
 * it never shows in `ps`) and `--access-log FILE|stdout|off`. They apply over the config's keys:
 * `--admin` replaces the address only, SWITCHYARD_ADMIN_TOKEN the token only, so a config's token
 * is never dropped by moving the server.
 */

import { parseAdminAddress } from '../config/address.ts';
import type { Config } from '../config/schema.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { formatHostPort, isLoopbackHost } from '../units.ts';

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

/**
 * `config` with the command line's options over its own `admin` and `accessLog`: the flag's
 * address over `admin.listen`, the environment's token (when set) over `admin.token`. Throws
 * SwitchyardError(INVALID_ARGUMENT) when that leaves a non-loopback admin server without a token.
 */
export function withObserveArgs(config: Config, args: ObserveArgs): Config {
  const token = args.admin?.token ?? config.admin?.token;
  if (args.admin && token === undefined && !isLoopbackHost(args.admin.listen.host)) {
    const where = formatHostPort(args.admin.listen.host, args.admin.listen.port);
    throw new SwitchyardError(
      ErrorCode.INVALID_ARGUMENT,
      `--admin: ${where} is not a loopback address; set ${ADMIN_TOKEN_ENV} (or admin.token in the config) to listen there`,
    );
  }
  return {
    ...config,
    ...(args.admin
      ? {
          admin:
            token === undefined
              ? { listen: args.admin.listen }
              : { listen: args.admin.listen, token },
        }
      : {}),
    ...(args.accessLog !== undefined ? { accessLog: args.accessLog } : {}),
  };
}
