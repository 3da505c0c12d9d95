import type { Logger } from 'pino';
import { type ProxyHandle, startValidated } from '../api.ts';
import type { Config } from '../config/schema.ts';
import { defaults } from '../defaults.ts';
import type { Engine } from '../engine/engine.ts';
import { reopenLogFiles } from '../log-writer.ts';
import { type FromWorker, type ToWorker, WORKER_ENV } from './messages.ts';

/** This process's worker id, or null when it is not a worker. */
export function workerId(): number | null {
  const id = Number(process.env[WORKER_ENV]);
  return Number.isInteger(id) && id > 0 ? id : null;
}

export interface WorkerOptions {
  engine: Engine;
  log: Logger;
  /** Drain deadline for a SIGTERM sent to this worker alone. */
  drainTimeoutMs: number;
}

/**
 * Runs `config` as one worker of a supervisor: binds every frontend with SO_REUSEPORT, reports
 * its stats over IPC (every defaults.workerReportMs and on request) and its connections on
 * request only, and takes
 * reload, stop and exit orders from the supervisor. SIGUSR1 reopens the log files (the supervisor
 * passes it on). SIGINT and SIGHUP are ignored here: a
 * terminal sends them to the whole process group, and the supervisor passes them on itself.
 * SIGTERM (systemd sends it to every process of the unit) starts the same drain as a stop order.
 * Resolves with the exit code: 1 if it could not start, 0 after a drain, 1 when told to exit at
 * once or when the supervisor is gone (the channel closed).
 */
export async function runWorker(config: Config, options: WorkerOptions): Promise<number> {
  const { log } = options;
  let handle: ProxyHandle;
  try {
    handle = await startValidated(config, { engine: options.engine, log, reusePort: true });
  } catch (err) {
    log.fatal(
      { code: (err as { code?: string }).code, err: (err as Error).message },
      'cannot start',
    );
    return 1;
  }
  const send = (message: FromWorker) => {
    if (process.connected) process.send?.(message);
  };
  const report = () => send({ type: 'report', stats: handle.stats() });
  const ports = () =>
    Object.fromEntries(Object.entries(handle.addresses()).map(([name, a]) => [name, a.port]));
  const timer = defaults.workerReportMs > 0 ? setInterval(report, defaults.workerReportMs) : null;
  timer?.unref();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (deadlineMs: number) => {
      if (stopping) return;
      stopping = true;
      if (timer) clearInterval(timer);
      handle.drain(deadlineMs).then(() => resolve(0));
    };
    const reload = (next: Config) => {
      handle.reload(next).then(
        () => {
          send({ type: 'reloaded' });
          report();
        },
        (err: Error) => {
          log.error({ err: err.message }, 'reload failed');
          send({ type: 'reloaded', error: err.message });
        },
      );
    };
    process.on('message', function workerOnMessage(message: ToWorker) {
      if (message.type === 'report') report();
      else if (message.type === 'connections')
        send({ type: 'connections', id: message.id, connections: handle.connections() });
      else if (message.type === 'reload') reload(message.config);
      else if (message.type === 'stop') stop(message.deadlineMs);
      else if (message.type === 'exit-now') resolve(1);
    });
    process.on('disconnect', function workerOnDisconnect() {
      if (!stopping) log.warn('supervisor gone: exiting');
      resolve(1);
    });
    process.on('SIGINT', function workerOnSigint() {});
    process.on('SIGHUP', function workerOnSighup() {});
    // The supervisor passes logrotate's SIGUSR1 on: reopen this worker's access log file.
    process.on('SIGUSR1', function workerOnSigusr1() {
      log.info('SIGUSR1: reopening the log files');
      reopenLogFiles();
    });
    process.on('SIGTERM', function workerOnSigterm() {
      stop(options.drainTimeoutMs);
    });
    send({ type: 'ready', ports: ports() });
    report();
  });
}
