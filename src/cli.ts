import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { StatsSource } from './admin/source.ts';
import { startAdminFor } from './admin/start.ts';
import { checkConfig, reportConfigError } from './cli/check.ts';
import { helpText } from './cli/help.ts';
import { type ObserveArgs, parseObserveArgs, withObserveArgs } from './cli/observe-args.ts';
import { versionText } from './cli/version.ts';
import type { Config } from './config/schema.ts';
import { singleServerBackend } from './config/single-server.ts';
import { defaults, limits } from './defaults.ts';
import type { EngineName } from './engine/engine.ts';
import { runtimeEngineName } from './engine/select.ts';
import { ConfigError, ErrorCode, SwitchyardError } from './errors.ts';
import { handOff } from './lifecycle/handoff.ts';
import { runProcess } from './lifecycle/run.ts';
import {
  createLogger,
  EXIT_FLUSH_MS,
  flushLogs,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  setLogFormat,
} from './log.ts';
import {
  bufferSizeProblem,
  type HostPort,
  parseHostPort,
  parseSize,
  parseTimerDuration,
  parseWhole,
  serverAddressProblem,
} from './units.ts';

/** Settings the command line resolves to. */
export interface CliSettings {
  listen: HostPort;
  backend: HostPort;
  maxConnections: number;
  bufferSize: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  halfClosedTimeoutMs: number;
  logLevel: LogLevel;
  /** --log-format: auto (pretty on a terminal), json or pretty. */
  logFormat: LogFormat;
  engine: EngineName;
  workers: number;
  drainTimeoutMs: number;
  /** --admin and --access-log, applied over the config's keys. */
  observe: ObserveArgs;
}

export type CliCommand =
  | { kind: 'help' }
  | { kind: 'version'; engine: EngineName }
  | { kind: 'run'; settings: CliSettings; check: boolean }
  | {
      kind: 'run-config';
      file: string;
      /** --check: validate and exit, bind nothing. */
      check: boolean;
      logLevel: LogLevel;
      logFormat: LogFormat;
      engine: EngineName;
      workers: number;
      drainTimeoutMs: number;
      observe: ObserveArgs;
    };

/** Options that describe the one-server shorthand, so cannot be mixed with --config. */
const SHORTHAND_OPTIONS = [
  'listen',
  'backend',
  'max-connections',
  'buffer-size',
  'connect-timeout',
  'idle-timeout',
  'half-closed-timeout',
] as const;

/** Parses argv (without node and script). Throws SwitchyardError(INVALID_ARGUMENT) naming the argument. */
export function parseCli(argv: string[]): CliCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        backend: { type: 'string' },
        'max-connections': { type: 'string' },
        'buffer-size': { type: 'string' },
        'connect-timeout': { type: 'string' },
        'idle-timeout': { type: 'string' },
        'half-closed-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        engine: { type: 'string' },
        admin: { type: 'string' },
        'access-log': { type: 'string' },
        workers: { type: 'string' },
        'drain-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        check: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new SwitchyardError(ErrorCode.INVALID_ARGUMENT, (err as Error).message);
  }
  if (values.help) return { kind: 'help' };
  const str = (key: string) => values[key] as string | undefined;
  const logLevel = optional(str('log-level'), defaults.logLevel as LogLevel, (v) => {
    if (!(LOG_LEVELS as readonly string[]).includes(v)) {
      throw invalid('--log-level', `expected one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
    }
    return v as LogLevel;
  });
  const logFormat = optional(str('log-format'), 'auto' as LogFormat, (v) => {
    if (!(LOG_FORMATS as readonly string[]).includes(v)) {
      throw invalid('--log-format', `expected one of ${LOG_FORMATS.join(', ')}, got "${v}"`);
    }
    return v as LogFormat;
  });
  const engine = optional(str('engine'), runtimeEngineName(), (v) => {
    if (v !== 'node' && v !== 'bun') throw invalid('--engine', `expected node or bun, got "${v}"`);
    return v;
  });
  const workers = optional(str('workers'), defaults.workers as number, (v) =>
    v === 'auto'
      ? Math.min(availableParallelism(), limits.workers.max)
      : parseWhole(v, '--workers', limits.workers),
  );
  const drainTimeoutMs = optional(str('drain-timeout'), defaults.drainTimeoutMs as number, (v) =>
    parseTimerDuration(v, '--drain-timeout'),
  );
  // The version of what would run with these flags: --engine bun asks bun.
  if (values.version) return { kind: 'version', engine };
  const observe = parseObserveArgs(str('admin'), str('access-log'));
  const configFile = str('config');
  if (configFile !== undefined) {
    for (const key of SHORTHAND_OPTIONS) {
      if (str(key) !== undefined) throw invalid(`--${key}`, 'cannot be combined with --config');
    }
    return {
      kind: 'run-config',
      file: configFile,
      check: values.check === true,
      logLevel,
      logFormat,
      engine,
      workers,
      drainTimeoutMs,
      observe,
    };
  }
  const required = (key: string, what: string): string => {
    const v = str(key);
    if (v === undefined)
      throw new SwitchyardError(ErrorCode.INVALID_ARGUMENT, `--${key} is required (${what})`);
    return v;
  };
  const listen = parseHostPort(required('listen', 'HOST:PORT'), '--listen');
  const backend = parseHostPort(required('backend', 'HOST:PORT'), '--backend');
  // The bounds and their reasons are the config schema's (src/defaults.ts limits, src/units.ts).
  const notServer = serverAddressProblem(backend);
  if (notServer !== null) throw invalid('--backend', notServer);
  const maxConnections = optional(str('max-connections'), defaults.maxConnections, (v) =>
    parseWhole(v, '--max-connections', limits.maxConnections),
  );
  const bufferSize = optional(str('buffer-size'), defaults.bufferSize, (v) => {
    const n = parseSize(v, '--buffer-size');
    const problem = bufferSizeProblem(n);
    if (problem !== null) throw invalid('--buffer-size', `${problem}, got "${v}"`);
    return n;
  });
  const duration = (key: string, fallback: number) =>
    optional(str(key), fallback, (v) => parseTimerDuration(v, `--${key}`));
  return {
    kind: 'run',
    check: values.check === true,
    settings: {
      listen,
      backend,
      maxConnections,
      bufferSize,
      connectTimeoutMs: duration('connect-timeout', defaults.connectTimeoutMs),
      idleTimeoutMs: duration('idle-timeout', defaults.idleTimeoutMs),
      halfClosedTimeoutMs: duration('half-closed-timeout', defaults.halfClosedTimeoutMs),
      logLevel,
      logFormat,
      engine,
      workers,
      drainTimeoutMs,
      observe,
    },
  };
}

/** The shorthand as a config: one frontend, one backend of one server. */
export function shorthandConfig(s: CliSettings): Config {
  return {
    frontends: [
      { name: 'default', listen: s.listen, backend: 'default', maxConnections: s.maxConnections },
    ],
    backends: [singleServerBackend(s.backend, s.connectTimeoutMs)],
    timeouts: { idle: s.idleTimeoutMs, halfClosed: s.halfClosedTimeoutMs },
    bufferSize: s.bufferSize,
  };
}

function optional<T>(value: string | undefined, fallback: T, parse: (v: string) => T): T {
  return value === undefined ? fallback : parse(value);
}

function invalid(arg: string, reason: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.INVALID_ARGUMENT, `${arg}: ${reason}`);
}

/** Runs the CLI. Resolves with the exit code once the proxy has stopped (or failed to start). */
export async function run(argv: string[] = process.argv.slice(2)): Promise<number> {
  let command: CliCommand;
  let config: Config | undefined;
  try {
    command = parseCli(argv);
    if (command.kind === 'run-config') {
      // Loaded only here: the YAML and schema libraries would slow every other start.
      const { loadConfigFile } = await import('./config/load.ts');
      config = loadConfigFile(command.file);
    }
    // --admin over the config's admin, refused (status 2) beyond loopback without a token.
    if (command.kind === 'run') {
      config = withObserveArgs(shorthandConfig(command.settings), command.settings.observe);
    } else if (command.kind === 'run-config') {
      config = withObserveArgs(config as Config, command.observe);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      reportConfigError(err);
      return 2;
    }
    if (err instanceof SwitchyardError && err.code === ErrorCode.INVALID_ARGUMENT) {
      process.stderr.write(`switchyard: ${err.message} (see --help)\n`);
      return 2;
    }
    throw err;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (command.kind === 'version') {
    if (command.engine !== runtimeEngineName()) return handOff(command.engine, argv);
    process.stdout.write(`${versionText(command.engine)}\n`);
    return 0;
  }
  const { logLevel, logFormat, engine, workers, drainTimeoutMs } =
    command.kind === 'run' ? command.settings : command;
  if (command.check) {
    // Checked on this runtime whatever --engine says: validation does not depend on the engine.
    // `config` has --admin and --access-log applied already (above).
    return checkConfig(config as Config, workers);
  }
  // Each engine runs on its own runtime: the other one takes over this command.
  if (engine !== runtimeEngineName()) return handOff(engine, argv);
  const valid = config as Config;
  const configFile = command.kind === 'run-config' ? command.file : null;
  setLogFormat(logFormat); // the access log, opened later by createProxy, follows it too
  const log = createLogger(logLevel);
  // The admin server runs where every connection is seen: here, not in each worker.
  let stopAdmin: Promise<() => Promise<void>> = Promise.resolve(async () => {});
  let adminFailed = false;
  const started = (running: StatsSource) => {
    stopAdmin = startAdminFor(running, valid, log).catch((err: Error) => {
      // Asked for and impossible (its port taken): stop as any start failure does, status 1.
      log.fatal({ code: (err as { code?: string }).code, err: err.message }, 'cannot start');
      adminFailed = true;
      process.kill(process.pid, 'SIGTERM');
      return async () => {};
    });
  };
  const code = await runProcess(valid, {
    engine,
    log,
    workers,
    drainTimeoutMs,
    configFile,
    argv,
    started,
  });
  await (await stopAdmin)();
  // The logs are asynchronous: what they hold is written before the caller exits (bounded).
  await flushLogs(EXIT_FLUSH_MS);
  return adminFailed ? 1 : code;
}
