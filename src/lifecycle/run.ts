import type { Logger } from 'pino';
import { type ProxyHandle, startValidated } from '../api.ts';
import type { Config } from '../config/schema.ts';
import type { EngineName } from '../engine/engine.ts';
import { createEngine } from '../engine/select.ts';
import { reopenLogFiles } from '../log-writer.ts';
import { readReloadConfig } from './reload.ts';
import { checkNofile } from './rlimit.ts';
import { untilStopped } from './signals.ts';
import { Supervisor } from './supervisor.ts';
import { runWorker, workerId } from './worker.ts';

export interface RunOptions {
  engine: EngineName;
  log: Logger;
  /** Worker processes; 1 runs the proxy in this process. */
  workers: number;
  drainTimeoutMs: number;
  /** The --config file SIGHUP re-reads; null for the command-line shorthand. */
  configFile: string | null;
  /** This command's arguments, which workers run again. */
  argv: readonly string[];
  /** Told of what runs once it listens: the proxy, or the supervisor of the workers. */
  started?: (running: ProxyHandle | Supervisor) => void;
}

/**
 * Runs a validated config until SIGTERM/SIGINT: in this process (one worker), as one worker of a
 * supervisor (SWITCHYARD_WORKER set), or as the supervisor of `workers` processes. Resolves with
 * the exit code: 0 after a drain, 143/130 on a second signal, 1 when it could not start, 2 for
 * --workers with a port 0 (each worker would get a port of its own).
 */
export async function runProcess(config: Config, options: RunOptions): Promise<number> {
  // SIGHUP's default action ends the process: while it starts, a SIGHUP is ignored instead.
  process.on('SIGHUP', hangupWhileStarting);
  try {
    return await runStarted(config, options);
  } finally {
    process.off('SIGHUP', hangupWhileStarting);
  }
}

function hangupWhileStarting() {}

async function runStarted(config: Config, options: RunOptions): Promise<number> {
  const { log } = options;
  const id = workerId();
  // Each worker holds its own connections; the supervisor holds none.
  if (id !== null || options.workers <= 1)
    checkNofile(config, id === null ? log : log.child({ worker: id }));
  if (id !== null) {
    const engine = await createEngine(options.engine, { readSize: config.bufferSize });
    return runWorker(config, {
      engine,
      log: log.child({ worker: id }),
      drainTimeoutMs: options.drainTimeoutMs,
    });
  }
  if (options.workers > 1) return supervise(config, options);
  let proxy: ProxyHandle;
  try {
    const engine = await createEngine(options.engine, { readSize: config.bufferSize });
    proxy = await startValidated(config, { engine, log, readSize: config.bufferSize });
  } catch (err) {
    const code = (err as { code?: string }).code;
    log.fatal({ code, err: (err as Error).message }, 'cannot start');
    return 1;
  }
  options.started?.(proxy);
  return untilStopped(
    {
      stop: (signal) => {
        log.info(
          { signal, drainTimeoutMs: options.drainTimeoutMs },
          'stopping: no new connections; draining open ones',
        );
        return proxy.drain(options.drainTimeoutMs).then(() => log.info('stopped'));
      },
      hangup: () => {
        // reload() is all or nothing: when it throws, the running config is untouched.
        reloadFile(options, (next) => proxy.reload(next)).catch((err: Error) =>
          log.error(
            { code: (err as { code?: string }).code, err: err.message },
            'reload failed; the running config stays',
          ),
        );
      },
    },
    log,
  );
}

async function supervise(config: Config, options: RunOptions): Promise<number> {
  const { log } = options;
  const unbound = config.frontends.filter((f) => f.listen.port === 0).map((f) => f.name);
  if (unbound.length > 0) {
    process.stderr.write(
      `switchyard: --workers ${options.workers} needs a fixed port (frontend ${unbound.join(', ')} listens on port 0)\n`,
    );
    return 2;
  }
  const supervisor = new Supervisor({ workers: options.workers, args: options.argv, log });
  try {
    await supervisor.start();
  } catch (err) {
    log.fatal(
      { code: (err as { code?: string }).code, err: (err as Error).message },
      'cannot start',
    );
    return 1;
  }
  options.started?.(supervisor);
  return untilStopped(
    {
      stop: (signal) => {
        log.info(
          { signal, drainTimeoutMs: options.drainTimeoutMs },
          'stopping: workers stop accepting and drain',
        );
        return supervisor.stop(options.drainTimeoutMs).then(() => log.info('stopped'));
      },
      abort: () => supervisor.exitNow(),
      // The access logs are the workers': each reopens its own; the supervisor its process log.
      reopenLogs: () => {
        reopenLogFiles();
        supervisor.signalWorkers('SIGUSR1');
      },
      hangup: () => {
        reloadFile(options, async (next) => supervisor.reload(next)).catch((err: Error) =>
          log.error({ err: err.message }, 'reload failed; the running config stays'),
        );
      },
    },
    log,
  );
}

/** SIGHUP: re-reads the --config file and applies it when valid. */
async function reloadFile(options: RunOptions, apply: (config: Config) => Promise<void>) {
  const { log, configFile } = options;
  if (configFile === null) {
    log.warn('SIGHUP: nothing to reload (no --config file)');
    return;
  }
  log.info({ file: configFile }, 'SIGHUP: reloading the config');
  const next = await readReloadConfig(configFile, log);
  if (next) await apply(next);
}
