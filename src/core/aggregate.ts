import type { Config } from '../config/schema.ts';
import {
  type Declarations,
  type Entity,
  entryOf,
  type HistogramSnapshot,
  STATS,
  type SwitchyardStats,
  setEntry,
} from '../stats.ts';

type Tree = Record<string, unknown>;

/** A fresh stats() with no entry (entries are set with setEntry: any name is a key like another). */
function emptyStats(): SwitchyardStats {
  return { frontends: {}, backends: {} };
}

/** The entities of stats() with their declarations. */
const ENTITIES = Object.entries(STATS) as [keyof SwitchyardStats, Entity][];

/**
 * The stats of every worker as one, each number merged as src/stats.ts declares it: counters and
 * gauges are summed (accepted, active, bytes, a server's connections, ...), settings and names
 * are taken from the first worker, a server is `up` only when every worker's health checks say
 * so, histograms add up bucket by bucket. Frontends, backends and servers are matched by name.
 */
export function sumStats(reports: readonly SwitchyardStats[]): SwitchyardStats {
  const out = emptyStats();
  for (const report of reports) {
    for (const [key, entity] of ENTITIES) {
      const into = out[key] as Record<string, Tree>;
      for (const [name, entry] of Object.entries(report[key] ?? {})) {
        const have = entryOf(into, name);
        if (have === undefined)
          setEntry(into, name, merge(entity.of, {}, entry as unknown as Tree));
        else merge(entity.of, have, entry as unknown as Tree);
      }
    }
  }
  return out;
}

/** Adds `from` into `into`, number by number as `decls` declare them; returns `into`. */
function merge(decls: Declarations, into: Tree, from: Tree): Tree {
  for (const [key, d] of Object.entries(decls)) {
    const value = from[key];
    if (value === undefined) continue;
    const have = into[key];
    if ('group' in d) {
      into[key] = merge(d.group, (have ?? {}) as Tree, value as Tree);
    } else if ('list' in d) {
      into[key] = mergeList(d.list, (have ?? []) as Tree[], value as Tree[]);
    } else if ('keys' in d) {
      // Keyed numbers merge key by key, whatever the keys (a newer or older worker's words too).
      const sums = (have ?? {}) as Record<string, number>;
      const counts = value as Record<string, number>;
      for (const [k, n] of Object.entries(counts)) {
        if (d.also?.[k] === undefined) sums[k] = (sums[k] ?? 0) + n;
      }
      if (d.also !== undefined) merge(d.also, sums, counts);
      into[key] = sums;
    } else if (have === undefined) {
      into[key] = d.kind === 'histogram' ? copyHistogram(value as HistogramSnapshot) : value;
    } else if (d.merge === 'sum' || d.merge === 'live') {
      into[key] = (have as number) + (value as number);
    } else if (d.merge === 'all') {
      into[key] = have && value;
    } else if (d.merge === 'buckets') {
      const h = have as HistogramSnapshot;
      const v = value as HistogramSnapshot;
      h.counts = h.counts.map((n, i) => n + (v.counts[i] ?? 0));
      h.sumMs += v.sumMs;
      h.count += v.count;
    }
    // `first`: the first worker's stays.
  }
  return into;
}

function copyHistogram(h: HistogramSnapshot): HistogramSnapshot {
  return { bounds: h.bounds, counts: [...h.counts], sumMs: h.sumMs, count: h.count };
}

/** Lists of named entries (a backend's servers) merged entry by entry, by name. */
function mergeList(decls: Declarations, into: Tree[], from: readonly Tree[]): Tree[] {
  for (const entry of from) {
    const same = into.find((e) => e.name === entry.name);
    if (same) merge(decls, same, entry);
    else into.push(merge(decls, {}, entry));
  }
  return into;
}

/**
 * What a dead worker leaves in the sum: its counters as they were in its last report (accepted,
 * closed by reason, bytes, checks, histograms, ...), its gauges (`live`: connections, a server's
 * `active`, a backend's `queued`, the pool's buffers, every per-state count) at 0, and no say in
 * whether a server is up (`all`: true, which changes nothing in an AND). Sum it after the live
 * workers' reports, so their settings and names come first.
 */
export function countersOf(report: SwitchyardStats): SwitchyardStats {
  const out = emptyStats();
  for (const [key, entity] of ENTITIES) {
    const into = out[key] as Record<string, Tree>;
    for (const [name, entry] of Object.entries(report[key] ?? {})) {
      setEntry(into, name, withoutGauges(entity.of, entry as unknown as Tree));
    }
  }
  return out;
}

function withoutGauges(decls: Declarations, from: Tree): Tree {
  const out: Tree = {};
  for (const [key, d] of Object.entries(decls)) {
    const value = from[key];
    if (value === undefined) continue;
    if ('group' in d) out[key] = withoutGauges(d.group, value as Tree);
    else if ('list' in d) out[key] = (value as Tree[]).map((e) => withoutGauges(d.list, e));
    else if ('keys' in d) {
      const counts: Record<string, number> = {};
      for (const [k, n] of Object.entries(value as Record<string, number>)) {
        if (d.also?.[k] === undefined) counts[k] = d.merge === 'live' ? 0 : n;
      }
      if (d.also !== undefined) Object.assign(counts, withoutGauges(d.also, value as Tree));
      out[key] = counts;
    } else if (d.merge === 'live') out[key] = 0;
    else if (d.merge === 'all') out[key] = true;
    else out[key] = d.kind === 'histogram' ? copyHistogram(value as HistogramSnapshot) : value;
  }
  return out;
}

/**
 * Drops the frontends, backends and servers that `config` no longer names: after a reload has
 * removed one from every worker, its old totals would otherwise stay listed for good.
 */
export function keepConfigured(
  stats: SwitchyardStats,
  config: Pick<Config, 'frontends' | 'backends'>,
): SwitchyardStats {
  const frontends = new Set(config.frontends.map((f) => f.name));
  // A backend with `discover` has servers no config names (ADDRESS:PORT): all of them stay.
  const servers = new Map(
    config.backends.map((b) => [
      b.name,
      b.discover === undefined ? new Set(b.servers.map((s) => s.name)) : null,
    ]),
  );
  const out = emptyStats();
  for (const [name, f] of Object.entries(stats.frontends))
    if (frontends.has(name)) setEntry(out.frontends, name, f);
  for (const [name, b] of Object.entries(stats.backends)) {
    if (!servers.has(name)) continue;
    const names = servers.get(name);
    const kept = names ? { ...b, servers: b.servers.filter((s) => names.has(s.name)) } : b;
    setEntry(out.backends, name, kept);
  }
  return out;
}
