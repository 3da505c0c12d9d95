import type { Config } from '../config/schema.ts';
import {
  BACKEND_STATS,
  FRONTEND_STATS,
  type Merge,
  type StatDeclaration,
  type SwitchyardStats,
} from '../stats.ts';

/** Each declared number's merge, by field name (src/stats.ts declares every one). */
const DECLARED: [string, StatDeclaration][] = [
  ...Object.entries(FRONTEND_STATS),
  ...Object.entries(BACKEND_STATS),
];
const MERGE = new Map<string, Merge>(DECLARED.map(([key, d]) => [key, d.merge]));

/** Numbers that are settings, the same in every worker: taken from the first, never summed. */
const SETTINGS: ReadonlySet<string> = new Set(
  [...MERGE].filter(([, m]) => m === 'setting').map(([key]) => key),
);
/** Flags that hold only when they hold in every worker. */
const ALL: ReadonlySet<string> = new Set(
  [...MERGE].filter(([, m]) => m === 'all').map(([key]) => key),
);

/**
 * The stats of every worker as one, each number as src/stats.ts declares it: counters and gauges
 * are summed (accepted, active, bytes, a server's connections, ...), settings are taken from the
 * first worker, and a server is `up` only when every worker's health checks say so. Frontends, backends and servers are matched by name.
 */
export function sumStats(reports: readonly SwitchyardStats[]): SwitchyardStats {
  const out: SwitchyardStats = { frontends: {}, backends: {} };
  for (const report of reports) merge(out as unknown as Tree, report as unknown as Tree);
  return out;
}

type Tree = Record<string, unknown>;

function merge(into: Tree, from: Tree): void {
  for (const [key, value] of Object.entries(from)) {
    const have = into[key];
    if (typeof value === 'number') {
      if (typeof have !== 'number') into[key] = value;
      else if (!SETTINGS.has(key)) into[key] = have + value;
    } else if (typeof value === 'boolean') {
      if (typeof have !== 'boolean') into[key] = value;
      else if (ALL.has(key)) into[key] = have && value;
    } else if (Array.isArray(value) && value.every((v) => typeof v === 'number')) {
      // Histogram buckets: counts add up element by element; bounds are a setting.
      const sums = Array.isArray(have) ? (have as number[]) : undefined;
      into[key] =
        sums === undefined
          ? [...value]
          : SETTINGS.has(key)
            ? sums
            : sums.map((n, i) => n + (value[i] ?? 0));
    } else if (Array.isArray(value)) {
      into[key] = mergeList(Array.isArray(have) ? (have as Tree[]) : [], value as Tree[]);
    } else if (typeof value === 'object' && value !== null) {
      const target = (typeof have === 'object' && have !== null ? have : {}) as Tree;
      into[key] = target;
      merge(target, value as Tree);
    } else if (have === undefined) {
      into[key] = value;
    }
  }
}

/** Lists of named entries (a backend's servers) merged entry by entry, by name. */
function mergeList(into: Tree[], from: readonly Tree[]): Tree[] {
  for (const entry of from) {
    const same = into.find((e) => e.name === entry.name);
    if (same) merge(same, entry);
    else {
      const copy: Tree = {};
      merge(copy, entry);
      into.push(copy);
    }
  }
  return into;
}

/**
 * Gauges say how things are now, so a dead worker's leave the sum with it: every number src/stats.ts
 * declares a gauge (live connections, a server's `active`, a backend's `queued`, the pool's
 * buffers) and every per-state count (`states`, except `illegal`, which counts moves).
 */
const GAUGES: ReadonlySet<string> = new Set(
  DECLARED.filter(([, d]) => d.type === 'gauge').map(([key]) => key),
);

/**
 * What a dead worker leaves in the sum: its counters as they were in its last report (accepted,
 * closed by reason, bytes, checks, histograms, ...), its gauges at 0, and no say in whether a
 * server is up (`up: true`, which changes nothing in an AND). Sum it after the live workers'
 * reports, so their settings and names come first.
 */
export function countersOf(report: SwitchyardStats): SwitchyardStats {
  return withoutGauges(report as unknown as Tree, false) as unknown as SwitchyardStats;
}

function withoutGauges(from: Tree, inStates: boolean): Tree {
  const out: Tree = {};
  for (const [key, value] of Object.entries(from)) {
    if (typeof value === 'number') {
      out[key] = (inStates ? key !== 'illegal' : GAUGES.has(key)) ? 0 : value;
    } else if (typeof value === 'boolean') {
      out[key] = key === 'up' ? true : value;
    } else if (Array.isArray(value)) {
      out[key] = value.map((v) =>
        typeof v === 'object' && v !== null ? withoutGauges(v as Tree, false) : v,
      );
    } else if (typeof value === 'object' && value !== null) {
      out[key] = withoutGauges(value as Tree, key === 'states');
    } else {
      out[key] = value;
    }
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
  const out: SwitchyardStats = { frontends: {}, backends: {} };
  for (const [name, f] of Object.entries(stats.frontends))
    if (frontends.has(name)) out.frontends[name] = f;
  for (const [name, b] of Object.entries(stats.backends)) {
    if (!servers.has(name)) continue;
    const names = servers.get(name);
    out.backends[name] = names ? { ...b, servers: b.servers.filter((s) => names.has(s.name)) } : b;
  }
  return out;
}
