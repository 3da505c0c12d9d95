/**
 * The words the keys of a keyed number can be (src/stats.ts KeyTypes), read off the vocabulary
 * tables at load: so /metrics, the history and the stats page follow core/state.ts and
 * core/ending.ts as they are, never a copy of them.
 */
import { ENDINGS, type Ending, type Rejection, type SessionEnding } from '../core/ending.ts';
import { State } from '../core/state.ts';
import { LogDropReason } from '../log-writer.ts';
import type { KeyTypes } from '../stats.ts';

const ending = Object.keys(ENDINGS) as Ending[];

/** The states a live connection can be in, in the table's order (CLOSED holds nothing live). */
export const LIVE_STATES: readonly State[] = Object.values(State).filter((s) => s !== State.CLOSED);

/** Each vocabulary's words, in its table's order. */
export const STAT_KEYS: { readonly [K in keyof KeyTypes]: readonly KeyTypes[K][] } = {
  closed: ending.filter((e): e is SessionEnding => !ENDINGS[e].rejected),
  rejected: ending.filter((e): e is Rejection => ENDINGS[e].rejected),
  state: LIVE_STATES,
  logDropped: Object.values(LogDropReason),
};
