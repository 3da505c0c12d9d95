import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { sumStats } from '../core/aggregate.ts';
import { defaults } from '../defaults.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import type { SwitchyardStats, ConnectionRow as WorkerConnection } from '../stats.ts';
import { type FromWorker, type ToWorker, WORKER_ENV } from './messages.ts';

export interface SupervisorOptions {
  /** Worker processes to keep running (at least 1). */
  workers: number;
  /** Runtime and script each worker runs, then `args`: by default this very command. */
  command?: readonly string[];
  /** The worker's arguments: the same as the supervisor's. */
  args: readonly string[];
  log: Logger;
}

/** One worker process as the supervisor sees it. */
export interface WorkerInfo {
  id: number;
  pid: number | null;
  /** Listening and reporting. */
  ready: boolean;
  /** Times it has been restarted after dying. */
  restarts: number;
  /** When the running process started (ms since the epoch). */
  startedAt: number;
}

interface Slot extends WorkerInfo {
  child: ChildProcess | null;
  /** The next restart delay, in ms. */
  delayMs: number;
  restartTimer: NodeJS.Timeout | null;
  stats: SwitchyardStats | null;
  connections: WorkerConnection[];
}

/**
 * The process the user started, when --workers is more than 1: it binds nothing, keeps N worker
 * processes running (a dead one is restarted after 100 ms, doubling to 10 s, back to 100 ms once
 * a worker stayed up 10 s), passes reloads and stops on to them, and sums their reports so that
 * stats() and connections() cover every worker.
 */
export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly log: Logger;
  private readonly slots: Slot[] = [];
  private stopping = false;
  private exited: (() => void) | null = null;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.log = options.log;
    for (let id = 1; id <= options.workers; id++) {
      this.slots.push({
        id,
        pid: null,
        ready: false,
        restarts: 0,
        startedAt: 0,
        child: null,
        delayMs: defaults.restartBackoffMs,
        restartTimer: null,
        stats: null,
        connections: [],
      });
    }
  }

  /**
   * Starts every worker; resolves once all listen. Rejects with WORKER_START_FAILED (and stops
   * the others) when one exits before it listens: a bad port, say, that a restart would not fix.
   */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    } catch (err) {
      this.exitNow();
      throw err;
    }
    this.log.info({ workers: this.slots.length }, `${this.slots.length} workers ready`);
  }

  /** Each worker's id, pid and restarts. */
  workers(): WorkerInfo[] {
    return this.slots.map(({ id, pid, ready, restarts, startedAt }) => ({
      id,
      pid,
      ready,
      restarts,
      startedAt,
    }));
  }

  /** The sum of every live worker's last report (see sumStats); at most workerReportMs old. */
  stats(): SwitchyardStats {
    return sumStats(this.slots.flatMap((s) => (s.stats && s.child ? [s.stats] : [])));
  }

  /** Every live connection of every worker, with the worker's id. */
  connections(): (WorkerConnection & { worker: number })[] {
    return this.slots.flatMap((s) =>
      s.child ? s.connections.map((c) => ({ ...c, worker: s.id })) : [],
    );
  }

  /** Asks every ready worker for a report now; resolves when all answered or after `timeoutMs`. */
  async refresh(timeoutMs = 1_000): Promise<void> {
    const asked = this.slots.filter((s) => s.ready && s.child?.connected);
    await Promise.all(
      asked.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const child = slot.child as ChildProcess;
            const timer = setTimeout(finish, timeoutMs);
            function onReport(message: FromWorker) {
              if (message.type === 'report') finish();
            }
            function finish() {
              clearTimeout(timer);
              child.off('message', onReport);
              child.off('exit', finish);
              resolve();
            }
            child.on('message', onReport);
            child.once('exit', finish);
            this.send(slot, { type: 'report' });
          }),
      ),
    );
  }

  /** Passes a validated config on to every worker; each applies it to its new connections. */
  reload(config: Config): void {
    for (const slot of this.slots) this.send(slot, { type: 'reload', config });
    this.log.info({ workers: this.slots.length }, 'config sent to every worker');
  }

  /**
   * Tells every worker to stop accepting and drain for up to `deadlineMs`; dead workers are no
   * longer restarted. Resolves when every worker has exited.
   */
  stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      this.send(slot, { type: 'stop', deadlineMs });
    }
    return this.allExited();
  }

  /** Tells every worker to exit at once (a second signal); SIGKILL for one that cannot hear. */
  exitNow(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      if (slot.child?.connected) this.send(slot, { type: 'exit-now' });
      else slot.child?.kill('SIGKILL');
    }
  }

  private allExited(): Promise<void> {
    if (this.slots.every((s) => s.child === null)) return Promise.resolve();
    return new Promise((resolve) => {
      this.exited = resolve;
    });
  }

  private send(slot: Slot, message: ToWorker): void {
    if (slot.child?.connected) slot.child.send(message);
  }

  /** Starts the worker of `slot`; resolves once it listens, rejects if it exits first. */
  private spawn(slot: Slot): Promise<void> {
    const [runtime, ...script] = this.options.command ?? [process.execPath, process.argv[1] ?? ''];
    const child = spawn(runtime as string, [...script, ...this.options.args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [WORKER_ENV]: String(slot.id) },
    });
    slot.child = child;
    slot.pid = child.pid ?? null;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.stats = null;
    slot.connections = [];
    return new Promise<void>((resolve, reject) => {
      const supervisor = this;
      child.on('message', function supervisorOnMessage(message: FromWorker) {
        if (message.type === 'ready') {
          slot.ready = true;
          supervisor.log.info({ worker: slot.id, workerPid: slot.pid }, `worker ${slot.id} ready`);
          resolve();
        } else if (message.type === 'report') {
          slot.stats = message.stats;
          slot.connections = message.connections;
        } else if (message.type === 'reloaded' && message.error !== undefined) {
          supervisor.log.error({ worker: slot.id, err: message.error }, 'worker reload failed');
        }
      });
      child.on('error', function supervisorOnSpawnError(err: Error) {
        supervisor.log.error({ worker: slot.id, err: err.message }, 'cannot start worker');
      });
      child.once('exit', function supervisorOnExit(code, signal) {
        const wasReady = slot.ready;
        slot.child = null;
        slot.ready = false;
        if (!wasReady) {
          reject(
            new SwitchyardError(
              ErrorCode.WORKER_START_FAILED,
              `worker ${slot.id} exited (${signal ?? code}) before listening`,
            ),
          );
        }
        supervisor.exitedWorker(slot, code, signal);
      });
    });
  }

  private exitedWorker(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) {
      this.log.info(
        { worker: slot.id, workerPid: slot.pid, code, signal },
        `worker ${slot.id} exited`,
      );
      if (this.slots.every((s) => s.child === null)) this.exited?.();
      return;
    }
    const upMs = Date.now() - slot.startedAt;
    if (upMs >= defaults.restartResetMs) slot.delayMs = defaults.restartBackoffMs;
    const delayMs = slot.delayMs;
    slot.delayMs = Math.min(Math.max(delayMs * 2, 1), defaults.restartBackoffMaxMs);
    this.log.warn(
      { worker: slot.id, workerPid: slot.pid, code, signal, upMs, restartInMs: delayMs },
      `worker ${slot.id} died (${signal ?? `exit ${code}`}); restarting in ${delayMs} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      slot.restarts++;
      this.spawn(slot).then(
        () =>
          this.log.info({ worker: slot.id, workerPid: slot.pid }, `worker ${slot.id} restarted`),
        () => {
          // logged by its exit, which schedules the next try
        },
      );
    }, delayMs);
  }
}
