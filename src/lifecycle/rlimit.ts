import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';

/**
 * Descriptors beyond the connections: listeners, health checks, the admin server, the logs, the
 * runtime's own (event loop, stdio, IPC).
 */
const HEADROOM = 64;

/** Descriptors the config's caps can use at once: 2 per connection (client, server) + headroom. */
export function descriptorsNeeded(config: Config): number {
  const connections = config.frontends.reduce((n, f) => n + f.maxConnections, 0);
  const checks = config.backends.reduce((n, b) => n + b.servers.length, 0);
  return 2 * connections + checks + HEADROOM;
}

/** RLIMIT_NOFILE of this process from /proc/self/limits; null where there is none (not Linux). */
export function readNofile(): { soft: number; hard: number } | null {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return null;
  const num = (v: string | undefined) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: num(m[1]), hard: num(m[2]) };
}

/**
 * Checks RLIMIT_NOFILE against what `config` needs. Below it, the soft limit is raised to the
 * hard one with `prlimit` (util-linux): Node has no setrlimit. Node and Bun already raise the
 * soft limit to the hard one when they start, so this matters for runtimes or builds that do
 * not. Still short: one warning with the numbers. Never throws; the proxy runs either way (it
 * counts EMFILE as accept errors).
 */
export function checkNofile(config: Config, log: Logger): void {
  const need = descriptorsNeeded(config);
  let limit = readNofile();
  if (limit === null || limit.soft >= need) return;
  if (limit.hard > limit.soft) {
    const hard = Number.isFinite(limit.hard) ? String(limit.hard) : 'unlimited';
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], {
        stdio: 'ignore',
        timeout: 2_000,
      });
      const was = limit.soft;
      limit = readNofile() ?? limit;
      log.info(
        { from: was, to: limit.soft },
        `descriptor limit raised from ${was} to ${limit.soft}`,
      );
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'prlimit failed');
    }
  }
  if (limit.soft >= need) return;
  log.warn(
    { soft: limit.soft, hard: limit.hard, need },
    `descriptor limit ${limit.soft} (hard ${limit.hard}) is below the ${need} the connection caps need (2 per connection + ${HEADROOM}): connections beyond it fail with EMFILE; raise it (ulimit -n, LimitNOFILE=)`,
  );
}
