import { constants } from 'node:os';
import type { Logger } from 'pino';
import { reopenLogFiles } from '../log-writer.ts';

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/** What the process does on each signal. */
export interface SignalActions {
  /** First SIGTERM or SIGINT: stop accepting and drain; resolves once everything is closed. */
  stop(signal: NodeJS.Signals): Promise<void>;
  /** A second SIGTERM or SIGINT while stopping: give up on the drain (close what is left). */
  abort?(signal: NodeJS.Signals): void;
  /** SIGHUP: reload the config. */
  hangup(): void;
  /** SIGUSR1: open the log files again at their paths (logrotate); default reopenLogFiles(). */
  reopenLogs?(): void;
}

/**
 * Installs the stop and reload signals and resolves with the exit code: 0 once the first
 * SIGTERM/SIGINT's `stop` is done; 128 + the signal's number (143 for SIGTERM, 130 for SIGINT)
 * at once on a second one, for the caller to exit with while the drain is still running.
 * SIGUSR1 reopens the log files (after logrotate renamed them). The handlers are removed when
 * it resolves.
 */
export function untilStopped(actions: SignalActions, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const done = (code: number) => {
      for (const s of STOP_SIGNALS) process.off(s, onStopSignal);
      process.off('SIGHUP', onHangup);
      process.off('SIGUSR1', onReopen);
      resolve(code);
    };
    function onStopSignal(signal: NodeJS.Signals) {
      if (stopping) {
        log.warn({ signal }, `second ${signal}: exiting now`);
        actions.abort?.(signal);
        done(128 + constants.signals[signal]);
        return;
      }
      stopping = true;
      actions.stop(signal).then(
        () => done(0),
        (err: Error) => {
          log.error({ err: err.message }, 'stop failed');
          done(1);
        },
      );
    }
    function onHangup() {
      if (stopping) log.warn('SIGHUP while stopping: ignored');
      else actions.hangup();
    }
    function onReopen() {
      // Replaces SIGUSR1's default (Node: start the inspector; Bun: exit).
      log.info('SIGUSR1: reopening the log files');
      (actions.reopenLogs ?? reopenLogFiles)();
    }
    for (const s of STOP_SIGNALS) process.on(s, onStopSignal);
    process.on('SIGHUP', onHangup);
    process.on('SIGUSR1', onReopen);
  });
}
