import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { countersOf, keepConfigured, sumStats } from '../core/aggregate.ts';
import { defaults } from '../defaults.ts';
import { ErrorCode, SwitchyardError } from '../errors.ts';
import { selfCommand } from '../runtime-check.ts';
import type { ConnectionRow, SwitchyardStats } from '../stats.ts';
import { type FromWorker, type ToWorker, WORKER_ENV } from './messages.ts';

export interface SupervisorOptions {
  /** Worker processes to keep running (at least 1). */
  workers: number;
  /** Runtime and script each worker runs, then `args`: by default this very command. */
  command?: readonly string[];
  /** The worker's arguments: the same as the supervisor's. */
  args: readonly string[];
  log: Logger;
  /**
   * Milliseconds stop() waits past its drain deadline for a worker to exit before it SIGKILLs
   * it (a worker that hangs, or ignores both SIGTERM and the stop order). Default 5,000: closing
   * what is left after the deadline takes well under a second; 0 = SIGKILL at the deadline.
   */
  stopMarginMs?: number;
}

/** How long reload() waits for a worker to say it applied the config before it stops waiting. */
const RELOAD_ANSWER_MS = 10_000;

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
  /** Its answer to the last liveConnections() request. */
  connections: ConnectionRow[];
  /** The reload count when it was spawned: a reload since then is sent to it once it is ready. */
  configVersion: number;
  /** performance.now() at its spawn: its uptime, on a clock a wall-clock step does not move. */
  spawnedAt: number;
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
  /** Counters of the workers that died, kept in stats() so that no counter goes backwards. */
  private retired: SwitchyardStats = { frontends: {}, backends: {} };
  /** The last config sent by reload(), and how many reloads there have been. */
  private config: Config | null = null;
  private configVersion = 0;
  /**
   * That config as a file (mode 0600 in a private temporary directory), which a worker spawned
   * after a reload is pointed at (`--config`, last one wins): it runs what the others run, even
   * when the file the user named has changed since, or no longer parses. Removed once stopped.
   */
  private configDir: string | null = null;
  private configPath: string | null = null;
  private requests = 0;
  private killTimer: NodeJS.Timeout | null = null;

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
        spawnedAt: 0,
        child: null,
        delayMs: defaults.restartBackoffMs,
        restartTimer: null,
        stats: null,
        connections: [],
        configVersion: 0,
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

  /**
   * The sum of every live worker's last report (at most workerReportMs old), plus the counters
   * of the workers that died (see countersOf): counters never go backwards, while a dead
   * worker's gauges (active, states, ...) leave the sum with it. What a worker counted after its
   * last report and before it died is lost.
   */
  stats(): SwitchyardStats {
    const live = this.slots.flatMap((s) => (s.stats && s.child ? [s.stats] : []));
    return sumStats([...live, this.retired]);
  }

  /** Sends `signal` to every running worker (SIGUSR1: each reopens its access log). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const slot of this.slots) slot.child?.kill(signal);
  }

  /**
   * Every live worker's connections, asked for now (workers do not send them unasked): what the
   * admin server's /api/connections reads through StatsSource.
   */
  connections(): Promise<(ConnectionRow & { worker: number })[]> {
    return this.liveConnections();
  }

  /**
   * The connections of every live worker as of the last liveConnections(); each with its
   * worker's id.
   */
  lastConnections(): (ConnectionRow & { worker: number })[] {
    return this.slots.flatMap((s) =>
      s.child ? s.connections.map((c) => ({ ...c, worker: s.id })) : [],
    );
  }

  /**
   * Asks every ready worker for its live connections; resolves with all of them, each with its
   * worker's id. A worker that has not answered within `timeoutMs` (hung, or busy) is left out
   * and logged, so a stuck worker never holds up the admin server's request.
   */
  async liveConnections(timeoutMs = 1_000): Promise<(ConnectionRow & { worker: number })[]> {
    const id = ++this.requests;
    const ready = this.slots.filter((s) => s.ready && s.child?.connected);
    await Promise.all(
      ready.map(async (slot) => {
        const answer = await this.ask(
          slot,
          { type: 'connections', id },
          (m) => m.type === 'connections' && m.id === id,
          timeoutMs,
        );
        if (answer?.type === 'connections') slot.connections = answer.connections;
        else {
          slot.connections = [];
          this.log.warn(
            { worker: slot.id, workerPid: slot.pid, timeoutMs },
            `worker ${slot.id} did not list its connections in time; left out`,
          );
        }
      }),
    );
    return ready.flatMap((s) => s.connections.map((c) => ({ ...c, worker: s.id })));
  }

  /** Asks every ready worker for a report now; resolves when all answered or after `timeoutMs`. */
  async refresh(timeoutMs = 1_000): Promise<void> {
    const asked = this.slots.filter((s) => s.ready && s.child?.connected);
    await Promise.all(
      asked.map((slot) =>
        this.ask(slot, { type: 'report' }, (m) => m.type === 'report', timeoutMs),
      ),
    );
  }

  /**
   * Passes a validated config on to every worker; each applies it to its new connections. A
   * worker started later (a restart) runs this config too, not what the file holds by then.
   * Resolves once every ready worker has answered (a failure is logged per worker), or after
   * RELOAD_ANSWER_MS for one that does not.
   */
  async reload(config: Config): Promise<void> {
    this.config = config;
    this.configVersion++;
    this.keepConfigForRestarts(config);
    this.retired = keepConfigured(this.retired, config);
    const ready = this.slots.filter((s) => s.ready && s.child?.connected);
    this.log.info({ workers: ready.length }, 'config sent to every worker');
    await Promise.all(ready.map((slot) => this.reloadWorker(slot, config)));
  }

  private async reloadWorker(slot: Slot, config: Config): Promise<void> {
    slot.configVersion = this.configVersion;
    const answer = await this.ask(
      slot,
      { type: 'reload', config },
      (m) => m.type === 'reloaded',
      RELOAD_ANSWER_MS,
    );
    if (answer?.type === 'reloaded' && answer.error !== undefined) {
      this.log.error({ worker: slot.id, err: answer.error }, 'worker reload failed');
    } else if (answer === null && slot.child) {
      this.log.warn(
        { worker: slot.id, workerPid: slot.pid, timeoutMs: RELOAD_ANSWER_MS },
        `worker ${slot.id} did not confirm the reload`,
      );
    }
  }

  /** Writes `config` where workers spawned from now on read it (see configPath). */
  private keepConfigForRestarts(config: Config): void {
    // Only a --config command can be pointed at another file; the shorthand has no reload.
    if (!this.options.args.some((a) => a === '--config' || a.startsWith('--config='))) return;
    try {
      this.configDir ??= mkdtempSync(join(tmpdir(), 'switchyard-supervisor-'));
      const path = join(this.configDir, 'config.json');
      // A parsed Config is valid config input again; JSON is YAML. Renamed into place, so a
      // worker starting meanwhile reads the old file or the new one, never half of one.
      writeFileSync(`${path}.new`, JSON.stringify(config), { mode: 0o600 });
      renameSync(`${path}.new`, path);
      this.configPath = path;
    } catch (err) {
      this.configPath = null;
      this.log.error(
        { err: (err as Error).message },
        'cannot keep the reloaded config for restarted workers: they will read --config again',
      );
    }
  }

  /**
   * Sends `message` to the worker of `slot`; resolves with its first message that `matches`, or
   * null when it exits, its channel closes, or `timeoutMs` passes first.
   */
  private ask(
    slot: Slot,
    message: ToWorker,
    matches: (m: FromWorker) => boolean,
    timeoutMs: number,
  ): Promise<FromWorker | null> {
    const child = slot.child;
    if (!child?.connected) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(null), timeoutMs);
      function onMessage(m: FromWorker) {
        if (matches(m)) finish(m);
      }
      function onGone() {
        finish(null);
      }
      function finish(answer: FromWorker | null) {
        clearTimeout(timer);
        child?.off('message', onMessage);
        child?.off('exit', onGone);
        child?.off('disconnect', onGone);
        resolve(answer);
      }
      child.on('message', onMessage);
      child.once('exit', onGone);
      child.once('disconnect', onGone);
      this.send(slot, message);
    });
  }

  /**
   * Tells every worker to stop accepting and drain for up to `deadlineMs`; dead workers are no
   * longer restarted. A worker still running `stopMarginMs` after the deadline is SIGKILLed.
   * Resolves when every worker has exited.
   */
  stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      // One that cannot hear the order (its channel closed) gets the signal that means the same.
      if (slot.child?.connected) this.send(slot, { type: 'stop', deadlineMs });
      else slot.child?.kill('SIGTERM');
    }
    this.killAfter(deadlineMs + (this.options.stopMarginMs ?? 5_000));
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
    this.killAfter(this.options.stopMarginMs ?? 5_000);
  }

  /** SIGKILLs, after `ms`, every worker that has not exited by then (stop's overall deadline). */
  private killAfter(ms: number): void {
    if (this.killTimer || this.slots.every((s) => s.child === null)) return;
    this.killTimer = setTimeout(() => {
      for (const slot of this.slots) {
        if (!slot.child) continue;
        this.log.error(
          { worker: slot.id, workerPid: slot.pid, afterMs: ms },
          `worker ${slot.id} has not exited ${ms} ms after the stop: SIGKILL`,
        );
        slot.child.kill('SIGKILL');
      }
    }, ms);
  }

  private allExited(): Promise<void> {
    if (this.slots.every((s) => s.child === null)) {
      this.stopped();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.exited = resolve;
    });
  }

  /** Every worker is gone after a stop: no timer left, no config file left behind. */
  private stopped(): void {
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    if (this.configDir) rmSync(this.configDir, { recursive: true, force: true });
    this.configDir = null;
    this.configPath = null;
  }

  private send(slot: Slot, message: ToWorker): void {
    if (slot.child?.connected) slot.child.send(message);
  }

  /** The worker's arguments: the supervisor's, pointed at the last reloaded config if any. */
  private workerArgs(): string[] {
    const args = [...this.options.args];
    if (this.configPath !== null) args.push('--config', this.configPath);
    return args;
  }

  /**
   * Starts the worker of `slot`; resolves once it listens, rejects if it exits first or cannot
   * be spawned at all (no such binary, EAGAIN, ...). Either way its end goes through
   * exitedWorker once, which schedules the next try with the same backoff.
   */
  private spawn(slot: Slot): Promise<void> {
    const [runtime, ...script] = this.options.command ?? selfCommand();
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.spawnedAt = performance.now();
    slot.stats = null;
    slot.connections = [];
    slot.configVersion = this.configVersion;
    return new Promise<void>((resolve, reject) => {
      const supervisor = this;
      let child: ChildProcess;
      let ended = false;
      function workerEnded(code: number | null, signal: NodeJS.Signals | null, err?: Error) {
        if (ended) return;
        ended = true;
        const wasReady = slot.ready;
        if (slot.child === child) slot.child = null;
        slot.ready = false;
        if (!wasReady) {
          const why = err
            ? `cannot be started (${(err as NodeJS.ErrnoException).code ?? err.message})`
            : `exited (${signal ?? code}) before listening`;
          reject(new SwitchyardError(ErrorCode.WORKER_START_FAILED, `worker ${slot.id} ${why}`));
        }
        supervisor.exitedWorker(slot, code, signal, err);
      }
      try {
        child = spawn(runtime as string, [...script, ...this.workerArgs()], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          env: { ...process.env, [WORKER_ENV]: String(slot.id) },
        });
      } catch (err) {
        // Some spawn failures throw rather than emit (an argument list too long, say).
        this.log.error({ worker: slot.id, err: (err as Error).message }, 'cannot start worker');
        slot.child = null;
        slot.pid = null;
        // Asynchronously, as an 'error' event would be: the caller's handlers are in place.
        queueMicrotask(() => workerEnded(null, null, err as Error));
        return;
      }
      slot.child = child;
      slot.pid = child.pid ?? null;
      child.on('message', function supervisorOnMessage(message: FromWorker) {
        if (message.type === 'ready') {
          slot.ready = true;
          supervisor.log.info({ worker: slot.id, workerPid: slot.pid }, `worker ${slot.id} ready`);
          // A reload while it started may have missed it: it gets the config the others run.
          if (supervisor.config && slot.configVersion !== supervisor.configVersion) {
            void supervisor.reloadWorker(slot, supervisor.config);
          }
          resolve();
        } else if (message.type === 'report') {
          slot.stats = message.stats;
        }
      });
      child.on('error', function supervisorOnError(err: Error) {
        if (child.pid !== undefined) {
          // A running worker whose message or signal could not be delivered: its exit follows.
          supervisor.log.warn({ worker: slot.id, err: err.message }, 'worker channel error');
          return;
        }
        // Never spawned: no 'exit' will come.
        supervisor.log.error({ worker: slot.id, err: err.message }, 'cannot start worker');
        workerEnded(null, null, err);
      });
      child.once('exit', function supervisorOnExit(code, signal) {
        workerEnded(code, signal);
      });
    });
  }

  private exitedWorker(
    slot: Slot,
    code: number | null,
    signal: NodeJS.Signals | null,
    spawnError?: Error,
  ): void {
    // Its counters stay in stats(); its gauges leave with it.
    if (slot.stats) this.retired = sumStats([this.retired, countersOf(slot.stats)]);
    slot.stats = null;
    slot.connections = [];
    if (this.stopping) {
      if (!spawnError) {
        this.log.info(
          { worker: slot.id, workerPid: slot.pid, code, signal },
          `worker ${slot.id} exited`,
        );
      }
      if (this.slots.every((s) => s.child === null)) {
        this.stopped();
        this.exited?.();
      }
      return;
    }
    const upMs = performance.now() - slot.spawnedAt;
    if (upMs >= defaults.restartResetMs) slot.delayMs = defaults.restartBackoffMs;
    const delayMs = slot.delayMs;
    slot.delayMs = Math.min(Math.max(delayMs * 2, 1), defaults.restartBackoffMaxMs);
    const what = spawnError
      ? `could not be started (${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message})`
      : `died (${signal ?? `exit ${code}`})`;
    this.log.warn(
      { worker: slot.id, workerPid: slot.pid, code, signal, upMs, restartInMs: delayMs },
      `worker ${slot.id} ${what}; restarting in ${delayMs} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      slot.restarts++;
      this.spawn(slot).then(
        () =>
          this.log.info({ worker: slot.id, workerPid: slot.pid }, `worker ${slot.id} restarted`),
        () => {
          // logged by its end, which schedules the next try
        },
      );
    }, delayMs);
  }
}
