/**
 * `switchyard --check`, as `haproxy -c` and `nginx -t`: the config the command would run is parsed,
 * validated and cross-checked, and nothing is bound, connected or opened. Problems are reported
 * in the same `path.to.key: reason` lines as a refused start.
 */
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';

/** Writes every problem of `err` to stderr, one line each, after one line saying how many. */
export function reportConfigError(err: ConfigError): void {
  // `total`: a long list is capped (src/config/load.ts), the count is not.
  const n = (err as { total?: number }).total ?? err.problems.length;
  process.stderr.write(
    `switchyard: invalid config, ${n} problem${n === 1 ? '' : 's'}:\n${err.problems.join('\n')}\n`,
  );
}

/**
 * Checks `config` (a file's, or the shorthand's, with --admin and --access-log applied) as the
 * start would, for `workers` processes. Prints `config ok: …` and resolves 0, or reports every
 * problem and resolves 2.
 */
export async function checkConfig(config: Config, workers: number): Promise<number> {
  // Loaded only here, as in run(): the schema library is not needed by a plain start.
  const { parseConfig } = await import('../config/load.ts');
  const { readTlsFiles } = await import('../config/tls-files.ts');
  let valid: Config;
  try {
    // Validated once more as a whole: the command-line options over the file's keys included.
    valid = parseConfig(config);
    readTlsFiles(valid); // certificates and keys: readable, PEM, matching
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    reportConfigError(err);
    return 2;
  }
  // The one start-up refusal outside the config module (src/lifecycle/run.ts, supervise()):
  // workers share each port through SO_REUSEPORT, so port 0 would give each a port of its own.
  const problems =
    workers > 1
      ? valid.frontends.flatMap((f, i) =>
          f.listen.port === 0
            ? [`frontends.${i}.listen: --workers ${workers} needs a fixed port, not 0`]
            : [],
        )
      : [];
  if (problems.length > 0) {
    reportConfigError(new ConfigError(problems));
    return 2;
  }
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  process.stdout.write(
    `config ok: ${count(valid.frontends.length, 'frontend')}, ${count(valid.backends.length, 'backend')}\n`,
  );
  return 0;
}
