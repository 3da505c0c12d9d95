/**
 * The balancing algorithms, as pure functions over a small context: which servers may take this
 * connection, their weights and active counts, and the client's hash. No I/O and no clock; the
 * only state is smooth round-robin's running weights, passed in (and updated) by the caller.
 *
 * Each returns the index of the chosen server, or -1 when no server is eligible.
 */
import type { BalanceAlgorithm } from '../config/schema.ts';

export interface BalanceContext {
  /** Per server: may it take this connection (up, a free slot, right tier, weight > 0). */
  readonly eligible: readonly boolean[];
  readonly weights: readonly number[];
  /** Connections each server holds now (connecting or established). */
  readonly active: readonly number[];
  /** Per server, a stable hash of its name (see hashString): what `source` hashes against. */
  readonly keys: readonly number[];
  /** Smooth round-robin's running weights, one per server; updated in place. */
  readonly current: number[];
  /** Hash of the client's address, for `source`. */
  readonly clientHash: number;
  /** Uniform random numbers in [0, 1), for `random`. */
  readonly random: () => number;
}

/** Picks a server with `algorithm`; -1 when none is eligible. */
export function balance(algorithm: BalanceAlgorithm, ctx: BalanceContext): number {
  switch (algorithm) {
    case 'roundrobin':
      return smoothRoundRobin(ctx, ctx.eligible);
    case 'leastconn':
      return leastConnections(ctx);
    case 'source':
      return sourceHash(ctx);
    case 'random':
      return powerOfTwoChoices(ctx);
  }
}

/**
 * Smooth weighted round-robin (nginx's): every pick adds each eligible server's weight to its
 * running weight, takes the largest, and subtracts the total from the winner. Weights 5,1,1 give
 * a a b a c a a, never a a a a a b c. `among` narrows the eligible set (leastconn's ties).
 */
export function smoothRoundRobin(ctx: BalanceContext, among: readonly boolean[]): number {
  const { weights, current } = ctx;
  let best = -1;
  let total = 0;
  for (let i = 0; i < among.length; i++) {
    if (!among[i]) continue;
    const w = weights[i] ?? 0;
    current[i] = (current[i] ?? 0) + w;
    total += w;
    if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
  }
  if (best !== -1) current[best] = (current[best] as number) - total;
  return best;
}

/**
 * Fewest active connections per unit of weight; ties (an idle pool, say) share out by smooth
 * round-robin so they do not all land on the first server.
 */
export function leastConnections(ctx: BalanceContext): number {
  const { eligible, weights, active } = ctx;
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < eligible.length; i++) {
    if (eligible[i]) min = Math.min(min, load(active[i] ?? 0, weights[i] ?? 0));
  }
  if (min === Number.POSITIVE_INFINITY) return -1;
  const ties = eligible.map((e, i) => e && load(active[i] ?? 0, weights[i] ?? 0) === min);
  return smoothRoundRobin(ctx, ties);
}

/**
 * Consistent hashing of the client's address by rendezvous (highest random weight) hashing: each
 * server scores hash(client, server) and the highest wins, weighted as in Schindelhauer's
 * `weight / -ln(u)`. A client stays on its server while that server is eligible; removing one of
 * N servers moves only the clients that were on it, about 1/N of them.
 */
export function sourceHash(ctx: BalanceContext): number {
  const { eligible, weights, keys, clientHash } = ctx;
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < eligible.length; i++) {
    if (!eligible[i]) continue;
    // u in (0, 1): never 0 (ln 0) nor 1 (score infinity).
    const u = (mix32(clientHash ^ (keys[i] ?? 0)) + 0.5) / 4294967296;
    const score = (weights[i] ?? 0) / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

/**
 * Power of two choices: two distinct eligible servers at random (in proportion to weight), the one
 * with fewer active connections per unit of weight wins. Nearly as even as leastconn without
 * everyone piling on the same least-loaded server.
 */
export function powerOfTwoChoices(ctx: BalanceContext): number {
  const { eligible, weights, active } = ctx;
  let total = 0;
  for (let i = 0; i < eligible.length; i++) if (eligible[i]) total += weights[i] ?? 0;
  if (total <= 0) return -1;
  const first = weightedDraw(ctx, total, -1);
  const firstWeight = weights[first] ?? 0;
  if (total - firstWeight <= 0) return first;
  const second = weightedDraw(ctx, total - firstWeight, first);
  const a = load(active[first] ?? 0, firstWeight);
  const b = load(active[second] ?? 0, weights[second] ?? 0);
  return b < a ? second : first;
}

function weightedDraw(ctx: BalanceContext, total: number, skip: number): number {
  const { eligible, weights } = ctx;
  let r = ctx.random() * total;
  let last = -1;
  for (let i = 0; i < eligible.length; i++) {
    if (!eligible[i] || i === skip) continue;
    const w = weights[i] ?? 0;
    if (w <= 0) continue;
    last = i;
    if (r < w) return i;
    r -= w;
  }
  return last; // floating-point remainder: the last candidate
}

function load(active: number, weight: number): number {
  return weight > 0 ? active / weight : Number.POSITIVE_INFINITY;
}

/** FNV-1a over a string's UTF-16 units: a stable 32-bit key for a server name or client address. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: spreads every input bit over the output. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
