/** Stable error codes. Tests and callers compare `err.code`, never the message. */
export const ErrorCode = {
  /** A command-line argument or option is missing or malformed. */
  INVALID_ARGUMENT: 'SWITCHYARD_ERR_INVALID_ARGUMENT',
  /** A connection state move that the transition table does not allow. */
  ILLEGAL_TRANSITION: 'SWITCHYARD_ERR_ILLEGAL_TRANSITION',
  /** The buffer pool had nothing to hand out (should be impossible under the connection cap). */
  POOL_EXHAUSTED: 'SWITCHYARD_ERR_POOL_EXHAUSTED',
  /** A buffer went back to the pool twice, or one the pool never handed out. */
  POOL_MISUSE: 'SWITCHYARD_ERR_POOL_MISUSE',
  /** The requested engine cannot run here. */
  ENGINE_UNAVAILABLE: 'SWITCHYARD_ERR_ENGINE_UNAVAILABLE',
  /** The listener could not bind. */
  LISTEN_FAILED: 'SWITCHYARD_ERR_LISTEN_FAILED',
  /** The config file (or config object) is unreadable or invalid; the message lists every problem. */
  INVALID_CONFIG: 'SWITCHYARD_ERR_INVALID_CONFIG',
  /**
   * No server of the backend was up (or every one had been tried); the client was closed at once.
   * Logged with the connection's ending (`no_server`), not thrown: one connection's problem.
   */
  NO_SERVER: 'SWITCHYARD_ERR_NO_SERVER',
  /** Every server was at its connection limit and the backend's queue was full (logged, as NO_SERVER). */
  QUEUE_FULL: 'SWITCHYARD_ERR_QUEUE_FULL',
  /** The admin HTTP server could not bind its address. */
  ADMIN_LISTEN_FAILED: 'SWITCHYARD_ERR_ADMIN_LISTEN_FAILED',
  /** A worker process could not start its listeners (the supervisor stops and exits 1). */
  WORKER_START_FAILED: 'SWITCHYARD_ERR_WORKER_START_FAILED',
  /**
   * A switchyard bug was caught: a read delivered after pause (the connection ends as
   * `internal`), or an object used before it was started.
   */
  INTERNAL: 'SWITCHYARD_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error class switchyard throws; `code` is stable, `message` is for people. */
export class SwitchyardError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SwitchyardError';
    this.code = code;
  }
}

/** An invalid config: `problems` holds one `path.to.key: reason` line per problem. */
export class ConfigError extends SwitchyardError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(ErrorCode.INVALID_CONFIG, `invalid config:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Failures of this process, not of the server it was connecting to: out of descriptors, memory,
 * buffers or local ports. They are counted as local errors, never as failed health checks or
 * passive evidence, so the proxy's own shortage does not take a healthy server down.
 */
export const LOCAL_ERROR_CODES: ReadonlySet<string> = new Set([
  'EMFILE',
  'ENFILE',
  'EADDRNOTAVAIL',
  'ENOBUFS',
  'ENOMEM',
]);

/** Peer-caused endings that are routine on the internet: debug level, never warn. */
export const NOISY_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);
