// Stats for tests to start from: every declared number at 0, so a fixture says only the numbers
// it is about, and a number added to src/stats.ts needs no change to the fixtures.
import { State } from '../../src/core/state.ts';
import type { Declarations, StatsOf } from '../../src/stats.ts';

/**
 * Every number of `decls` at 0: flags false, names '', lists and keyed counts empty (the states
 * all there, at 0), optional ones left out.
 */
export function emptyOf<const D extends Declarations>(decls: D): StatsOf<D> {
  const out: Record<string, unknown> = {};
  for (const [key, d] of Object.entries(decls)) {
    if (d.optional) continue;
    if ('group' in d) out[key] = emptyOf(d.group);
    else if ('list' in d) out[key] = [];
    else if ('keys' in d) {
      const keys = d.complete && d.keys === 'state' ? Object.values(State) : [];
      out[key] = { ...Object.fromEntries(keys.map((k) => [k, 0])), ...(d.also && emptyOf(d.also)) };
    } else {
      out[key] =
        d.kind === 'flag' ? false : d.kind === 'text' ? '' : d.kind === 'histogram' ? undefined : 0;
    }
  }
  return out as StatsOf<D>;
}
