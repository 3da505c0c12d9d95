/**
 * How a connection ended: the one vocabulary of the session, the metrics
 * (`switchyard_connections_closed_total{reason}` and `…_rejected_total{reason}`), the access log
 * (`cause`), the live table and the stats page. Who sent FIN first is a separate fact (the access
 * log's `fin`), not part of these words.
 *
 * `side` says where the cause lies: the client, the server, or switchyard itself (`local`: a
 * timeout, a limit, the operator). `rejected` endings turn a client away at accept, before a
 * session exists; they are counted apart from closed sessions. Adding an ending is one line here.
 *
 * This module imports nothing, so every layer (and src/stats.ts) may use it.
 */
export const ENDINGS = {
  done: { side: 'local', rejected: false, about: 'both sides finished with FIN' },
  client_closed: {
    side: 'client',
    rejected: false,
    about: 'the client closed after all it was owed was passed on',
  },
  server_closed: {
    side: 'server',
    rejected: false,
    about: 'the server closed after all it was owed was passed on',
  },
  client_reset: { side: 'client', rejected: false, about: 'the client reset (RST) the connection' },
  server_reset: { side: 'server', rejected: false, about: 'the server reset (RST) the connection' },
  client_error: { side: 'client', rejected: false, about: 'the client socket failed' },
  server_error: { side: 'server', rejected: false, about: 'the server socket failed' },
  connect_failed: {
    side: 'server',
    rejected: false,
    about: 'every connect attempt failed (refused, reset, unreachable)',
  },
  connect_timeout: {
    side: 'server',
    rejected: false,
    about: 'the last connect attempt passed the connect timeout',
  },
  local_error: {
    side: 'local',
    rejected: false,
    about: 'switchyard could not open the server connection (descriptors, memory, ports)',
  },
  no_server: { side: 'local', rejected: false, about: 'no server of the backend was up' },
  queue_timeout: {
    side: 'local',
    rejected: false,
    about: 'waited for a server slot past the queue timeout',
  },
  queue_full: {
    side: 'local',
    rejected: false,
    about: 'every server was at its limit and the queue was full',
  },
  idle_timeout: {
    side: 'local',
    rejected: false,
    about: 'no byte either way for the idle timeout',
  },
  half_closed_timeout: {
    side: 'local',
    rejected: false,
    about: 'one side finished and the other stayed silent past the half-closed timeout',
  },
  killed: { side: 'local', rejected: false, about: 'closed by the operator or by shutdown' },
  max_lifetime: { side: 'local', rejected: false, about: 'open longer than limits.maxLifetime' },
  internal: { side: 'local', rejected: false, about: 'a switchyard bug was caught' },
  tls_handshake: {
    side: 'client',
    rejected: true,
    about: 'the TLS handshake failed (protocol, version, no or a refused client certificate)',
  },
  tls_handshake_timeout: {
    side: 'client',
    rejected: true,
    about: 'the client did not complete the TLS handshake within its timeout',
  },
  rejected_at_cap: {
    side: 'local',
    rejected: true,
    about: "turned away at the frontend's connection cap (before a socket object exists)",
  },
  proxy_header: {
    side: 'client',
    rejected: true,
    about:
      'no valid PROXY header in time (missing, malformed, too long, slow), or a sender not in proxyProtocol.from',
  },
  client_hello: {
    side: 'client',
    rejected: true,
    about:
      'an SNI-routing frontend read no valid TLS ClientHello (not TLS, malformed, over 16 KiB, or the client left first)',
  },
  client_hello_timeout: {
    side: 'client',
    rejected: true,
    about: 'an SNI-routing frontend did not get a whole ClientHello within handshakeTimeout',
  },
  denied: { side: 'local', rejected: true, about: 'the client address is denied or not allowed' },
  source_limit: {
    side: 'local',
    rejected: true,
    about: 'the client address has limits.perSourceConnections open already',
  },
  source_rate: {
    side: 'local',
    rejected: true,
    about: 'the client address opened connections faster than limits.perSourceRate',
  },
  accept_rate: {
    side: 'local',
    rejected: true,
    about: 'the frontend took connections faster than limits.acceptRate',
  },
} as const satisfies Record<string, EndingInfo>;

/** What the table says of one ending. */
export interface EndingInfo {
  /** Where the cause lies. */
  readonly side: 'client' | 'server' | 'local';
  /** Turned away at accept (no session), rather than a session that closed. */
  readonly rejected: boolean;
  /** One line for people (the metrics' HELP, the README). */
  readonly about: string;
}

/** Every ending's name. */
export type Ending = keyof typeof ENDINGS;

/** Endings of a session that existed (`switchyard_connections_closed_total`). */
export type SessionEnding = {
  [K in Ending]: (typeof ENDINGS)[K]['rejected'] extends false ? K : never;
}[Ending];

/** Endings of a client turned away at accept (`switchyard_connections_rejected_total`). */
export type Rejection = Exclude<Ending, SessionEnding>;

/** The names as constants: `Ending.idle_timeout === 'idle_timeout'`. */
export const Ending = Object.freeze(
  Object.fromEntries(Object.keys(ENDINGS).map((k) => [k, k])) as { readonly [K in Ending]: K },
);

/** Which side sent FIN first, if any: a fact apart from the ending. */
export type Fin = 'client' | 'server' | null;
