/**
 * `switchyard --help`: the options in groups, each with its default as src/defaults.ts has it
 * (formatted here, never restated), so the help cannot drift from what runs.
 */

import { defaults } from '../defaults.ts';
import { runtimeEngineName } from '../engine/select.ts';
import { LOG_LEVELS } from '../log.ts';
import { ADMIN_TOKEN_ENV } from './observe-args.ts';

/** One option: how it is written, what it does, and its default ('' when it has none). */
type Option = readonly [flag: string, meaning: string, fallback: string];

/** Milliseconds as the largest whole unit the command line accepts: 5000 → 5s, 3600000 → 1h. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Bytes as the command line writes them: 16384 → 16k, 1048576 → 1m. */
export function formatSize(bytes: number): string {
  if (bytes !== 0 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}m`;
  if (bytes !== 0 && bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}

function groups(): [title: string, options: Option[]][] {
  return [
    [
      'Listen and backend',
      [
        ['--config FILE', 'YAML: frontends, backends, servers, health checks', ''],
        ['--listen HOST:PORT', 'accept here; [::1]:PORT for IPv6, :PORT on every interface', ''],
        ['--backend HOST:PORT', 'the server every connection is forwarded to', ''],
      ],
    ],
    [
      'Limits',
      [
        [
          '--max-connections N',
          'simultaneous clients; one more is closed at once',
          String(defaults.maxConnections),
        ],
        [
          '--buffer-size SIZE',
          'largest read, and the size of each pool buffer',
          formatSize(defaults.bufferSize),
        ],
      ],
    ],
    [
      'Timeouts (0 = none)',
      [
        [
          '--connect-timeout DUR',
          'for the backend to accept a connect',
          formatDuration(defaults.connectTimeoutMs),
        ],
        [
          '--idle-timeout DUR',
          'no byte in either direction, then the pair closes',
          formatDuration(defaults.idleTimeoutMs),
        ],
        [
          '--half-closed-timeout DUR',
          'one side finished and the other silent, then it closes',
          formatDuration(defaults.halfClosedTimeoutMs),
        ],
      ],
    ],
    [
      'Admin',
      [
        [
          '--admin HOST:PORT|PORT',
          `HTTP /metrics, /api, stats page; PORT alone: ${defaults.adminHost}`,
          'off',
        ],
      ],
    ],
    [
      'Logging',
      [
        ['--log-level LEVEL', LOG_LEVELS.join('|'), defaults.logLevel],
        [
          '--log-format FORMAT',
          'json, pretty, or auto: short human lines on a terminal, else JSON',
          'auto',
        ],
        ['--access-log FILE|stdout|off', 'one JSON line per closed connection', defaults.accessLog],
      ],
    ],
    [
      'Process',
      [
        [
          '--engine node|bun',
          'socket engine, each on its own runtime',
          `${runtimeEngineName()}: this runtime`,
        ],
        [
          '--workers N|auto',
          'processes sharing each port (SO_REUSEPORT); auto = CPUs',
          String(defaults.workers),
        ],
        [
          '--drain-timeout DUR',
          'on SIGTERM/SIGINT, time open connections get',
          formatDuration(defaults.drainTimeoutMs),
        ],
        ['--check', 'validate the config, bind nothing; exit 0 (ok) or 2', ''],
        ['-h, --help', 'print this help', ''],
        ['-v, --version', 'print the version, the runtime and the engine', ''],
      ],
    ],
  ];
}

/** The whole help text, without a final newline. */
export function helpText(): string {
  const all = groups();
  const flagWidth = Math.max(...all.flatMap(([, group]) => group.map(([flag]) => flag.length)));
  // `(default X)` after the meaning: test/e2e/engine.test.ts and people grep for it.
  const row = ([flag, meaning, fallback]: Option) =>
    `  ${flag.padEnd(flagWidth)}  ${meaning}${fallback ? ` (default ${fallback})` : ''}`;
  const lines = [
    'Usage: switchyard --config FILE [options]',
    '       switchyard --listen HOST:PORT --backend HOST:PORT [options]',
    '',
    'With --config, runs the frontends and backends of a YAML file (see the README). Without it,',
    'forwards every TCP connection accepted on --listen to --backend (one frontend, one server).',
  ];
  for (const [title, group] of all) {
    lines.push('', `${title}:`);
    for (const option of group) lines.push(row(option));
  }
  lines.push(
    '',
    `The admin token comes from $${ADMIN_TOKEN_ENV}, never the command line (ps shows that).`,
    'Durations: 500ms, 5s, 1m, 1h. Sizes: 16384, 16k, 1m. A bad argument exits 2 naming it.',
    'SIGHUP reloads --config (kept when invalid). SIGTERM/SIGINT drain; a second one exits at once.',
  );
  return lines.join('\n');
}
