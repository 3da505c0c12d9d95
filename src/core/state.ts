import { ErrorCode, SwitchyardError } from '../errors.ts';

/**
 * The states of one proxied pair (client socket + backend socket).
 *
 * - CLOSED: not yet accepted, or fully torn down.
 * - CONNECTING: client accepted, a server being chosen or connected to (a failed connect is
 *   retried on another server without leaving this state); the client is not read yet.
 * - QUEUED: every server that could take the client is at its connection limit; the client
 *   waits in the backend's queue (not read) until a slot frees or the queue timeout passes.
 * - CONNECTED: backend connected; pumping is about to start.
 * - READING: both directions open, nothing pending; waiting for bytes.
 * - WRITING: a direction holds bytes its peer has not taken; that direction's source is paused.
 *   A pair that stays here means a peer is not draining.
 * - HALF_CLOSED: one side sent FIN (passed on), the other direction still flows.
 * - CLOSING: teardown under way; waiting for both sockets to report closed.
 */
export const State = {
  CLOSED: 'CLOSED',
  CONNECTING: 'CONNECTING',
  QUEUED: 'QUEUED',
  CONNECTED: 'CONNECTED',
  READING: 'READING',
  WRITING: 'WRITING',
  HALF_CLOSED: 'HALF_CLOSED',
  CLOSING: 'CLOSING',
} as const;

export type State = (typeof State)[keyof typeof State];

/** The only legal moves. Everything not listed here is a bug in switchyard. */
export const TRANSITIONS: { readonly [From in State]: readonly State[] } = {
  CLOSED: [State.CONNECTING],
  CONNECTING: [State.CONNECTED, State.QUEUED, State.CLOSING],
  QUEUED: [State.CONNECTING, State.CLOSING],
  CONNECTED: [State.READING, State.CLOSING],
  READING: [State.WRITING, State.HALF_CLOSED, State.CLOSING],
  WRITING: [State.READING, State.HALF_CLOSED, State.CLOSING],
  HALF_CLOSED: [State.WRITING, State.CLOSING],
  CLOSING: [State.CLOSED],
};

const STATES = Object.values(State);

// Legal moves as a bit set per state, so the hot check is one AND instead of an array scan.
const INDEX = new Map<State, number>(STATES.map((s, i) => [s, i]));
const LEGAL = new Map<State, number>(
  STATES.map((from) => [from, TRANSITIONS[from].reduce((bits, to) => bits | bitOf(to), 0)]),
);

function bitOf(s: State): number {
  return 1 << (INDEX.get(s) as number);
}

/** Live count of pairs in each state, plus the illegal moves seen. */
export class StateCounters {
  readonly count: Record<State, number> = {
    CLOSED: 0,
    CONNECTING: 0,
    QUEUED: 0,
    CONNECTED: 0,
    READING: 0,
    WRITING: 0,
    HALF_CLOSED: 0,
    CLOSING: 0,
  };
  /** Moves the table rejected. Non-zero means a bug; with `strict` they throw instead. */
  illegal = 0;

  readonly strict: boolean;

  constructor(strict: boolean) {
    this.strict = strict;
  }

  snapshot(): Record<State, number> & { illegal: number } {
    return { ...this.count, illegal: this.illegal };
  }
}

/** Anything that carries a state: a session. */
export interface HasState {
  state: State;
}

/**
 * The one place a state changes. Checks the move against TRANSITIONS, keeps the counters in
 * step, and returns false (strict: throws SWITCHYARD_ERR_ILLEGAL_TRANSITION) on an illegal move,
 * leaving the state unchanged. Staying in the same state is a no-op, not a move. CLOSED is not
 * counted: a closed pair is gone.
 */
export function transition(subject: HasState, to: State, counters: StateCounters): boolean {
  const from = subject.state;
  if (from === to) return true;
  if (!isLegal(from, to)) {
    counters.illegal++;
    if (counters.strict) {
      throw new SwitchyardError(
        ErrorCode.ILLEGAL_TRANSITION,
        `illegal connection state move ${from} -> ${to}`,
      );
    }
    return false;
  }
  if (from !== State.CLOSED) counters.count[from]--;
  if (to !== State.CLOSED) counters.count[to]++;
  subject.state = to;
  return true;
}

/** True when TRANSITIONS allows from -> to. */
export function isLegal(from: State, to: State): boolean {
  return ((LEGAL.get(from) as number) & bitOf(to)) !== 0;
}
