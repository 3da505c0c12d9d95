import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { type ObserveArgs, parseObserveArgs, withObserveArgs } from './admin/cli-args.ts';
import { type Running, startAdminFor } from './admin/start.ts';
import { checkConfig, reportConfigError } from './cli/check.ts';
import { helpText } from './cli/help.ts';
import { versionText } from './cli/version.ts';
import type { Config } from './config/schema.ts';
import { singleServerBackend } from './config/single-server.ts';
import { defaults } from './defaults.ts';
import type { EngineName } from './engine/engine.ts';
import { handOff } from './engine/handoff.ts';
import { runtimeEngineName } from './engine/select.ts';
import { ConfigError, ErrorCode, SwitchyardError } from './errors.ts';
import { runProcess } from './lifecycle/run.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from './log.ts';
import { type HostPort, parseDuration, parseHostPort, parseSize } from './units.ts';

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
  engine: EngineName;
  workers: number;
  drainTimeoutMs: number;
  /** --admin and --access-log, applied over the config's keys. */
  observe: ObserveArgs;
}

export type CliCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; settings: CliSettings; check: boolean }
  | {
      kind: 'run-config';
      file: string;
      /** --check: validate and exit, bind nothing. */
      check: boolean;
      logLevel: LogLevel;
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
  if (values.version) return { kind: 'version' };
  const str = (key: string) => values[key] as string | undefined;
  const logLevel = optional(str('log-level'), defaults.logLevel as LogLevel, (v) => {
    if (!(LOG_LEVELS as readonly string[]).includes(v)) {
      throw invalid('--log-level', `expected one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
    }
    return v as LogLevel;
  });
  const engine = optional(str('engine'), runtimeEngineName(), (v) => {
    if (v !== 'node' && v !== 'bun') throw invalid('--engine', `expected node or bun, got "${v}"`);
    return v;
  });
  const workers = optional(str('workers'), defaults.workers as number, (v) => {
    if (v === 'auto') return availableParallelism();
    if (!/^\d+$/.test(v) || Number(v) < 1) {
      throw invalid('--workers', `expected a whole number of at least 1 or auto, got "${v}"`);
    }
    return Number(v);
  });
  const drainTimeoutMs = optional(str('drain-timeout'), defaults.drainTimeoutMs as number, (v) =>
    parseDuration(v, '--drain-timeout'),
  );
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
  if (backend.port === 0) throw invalid('--backend', 'port 0 is not a server port');
  const maxConnections = optional(str('max-connections'), defaults.maxConnections, (v) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) {
      throw invalid('--max-connections', `expected a whole number of at least 1, got "${v}"`);
    }
    return Number(v);
  });
  const bufferSize = optional(str('buffer-size'), defaults.bufferSize, (v) => {
    const n = parseSize(v, '--buffer-size');
    if (n < 1024 || n > 16 * 1024 * 1024) {
      throw invalid('--buffer-size', `expected between 1k and 16m, got "${v}"`);
    }
    return n;
  });
  const duration = (key: string, fallback: number) =>
    optional(str(key), fallback, (v) => parseDuration(v, `--${key}`));
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
    process.stdout.write(`${versionText()}\n`);
    return 0;
  }
  const { logLevel, engine, workers, drainTimeoutMs, observe } =
    command.kind === 'run' ? command.settings : command;
  if (command.check) {
    // Checked on this runtime whatever --engine says: validation does not depend on the engine.
    const candidate =
      command.kind === 'run' ? shorthandConfig(command.settings) : (config as Config);
    return checkConfig(withObserveArgs(candidate, observe), workers);
  }
  // Each engine runs on its own runtime: the other one takes over this command.
  if (engine !== runtimeEngineName()) return handOff(engine, argv);
  const valid = withObserveArgs(
    command.kind === 'run' ? shorthandConfig(command.settings) : (config as Config),
    observe,
  );
  const configFile = command.kind === 'run-config' ? command.file : null;
  const log = createLogger(logLevel);
  // The admin server runs where every connection is seen: here, not in each worker.
  let stopAdmin: Promise<() => Promise<void>> = Promise.resolve(async () => {});
  let adminFailed = false;
  const started = (running: Running) => {
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
  return adminFailed ? 1 : code;
}
