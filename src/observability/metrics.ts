/**
 * Prometheus text exposition (format 0.0.4) of a proxy's stats, made at scrape time.
 *
 * The proxy only keeps plain counters (ProxyServer, Backend, the state table, the bucket arrays
 * of core/histogram.ts); this module turns one stats() snapshot into text, walking the
 * declarations of src/stats.ts: each family, its type, help and labels, and the number it reads
 * are declared there once, so nothing here names a stat. It is hand-written rather
 * than prom-client because prom-client's metrics are fed by calls (inc, observe) and its
 * histograms cannot take counts already bucketed: using it would mean either calls on the hot
 * path or rebuilding every metric per scrape, for a format this small.
 */
import { logDroppedByReason } from '../log-writer.ts';
import {
  type Declaration,
  type Declarations,
  type Entity,
  type HistogramSnapshot,
  type KeyedDeclaration,
  type LeafDeclaration,
  PROCESS_STATS,
  STATS,
  type SwitchyardStats,
} from '../stats.ts';
import { STAT_KEYS } from './stat-keys.ts';

/** The Content-Type of the text this module writes. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

/** One metric family: a HELP and TYPE line, then its samples. */
class Family {
  readonly name: string;
  readonly lines: string[];

  constructor(name: string, type: 'counter' | 'gauge' | 'histogram', help: string) {
    this.name = name;
    this.lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  }

  sample(name: string, labels: Labels, value: number): void {
    this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  }
}

function formatLabels(labels: Labels): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) parts.push(`${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/** Adds a histogram recorded in milliseconds, exposed in seconds (cumulative buckets). */
function histogram(f: Family, name: string, labels: Labels, h: HistogramSnapshot): void {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i] ?? 0;
    f.sample(
      `${name}_bucket`,
      { ...labels, le: String((h.bounds[i] as number) / 1000) },
      cumulative,
    );
  }
  f.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count);
  f.sample(`${name}_sum`, labels, h.sumMs / 1000);
  f.sample(`${name}_count`, labels, h.count);
}

function isHistogram(h: HistogramSnapshot | undefined): h is HistogramSnapshot {
  return (
    h !== undefined &&
    Array.isArray(h.bounds) &&
    h.bounds.every((b) => typeof b === 'number') &&
    Array.isArray(h.counts) &&
    h.counts.length === h.bounds.length + 1 &&
    h.counts.every((c) => typeof c === 'number')
  );
}

type Tree = Record<string, unknown>;

/**
 * The families of `decls` in declaration order (which is /metrics order), each made once: a
 * number exported `into` a sibling's family is sampled in that sibling's.
 */
function declare(decls: Declarations, families: Map<Declaration, Family>): void {
  for (const d of Object.values(decls)) {
    if ('group' in d) declare(d.group, families);
    else if ('list' in d) declare(d.list, families);
    else {
      if (d.metric !== undefined) families.set(d, new Family(d.metric, promType(d), d.help));
      if ('keys' in d && d.also !== undefined) declare(d.also, families);
    }
  }
  for (const d of Object.values(decls)) {
    if ('into' in d && d.into !== undefined) {
      const home = families.get(decls[d.into] as Declaration);
      if (home) families.set(d, home);
    }
  }
}

/** The Prometheus type of a declared number: flags are 0/1 gauges. */
function promType(d: LeafDeclaration | KeyedDeclaration): 'counter' | 'gauge' | 'histogram' {
  return d.kind === 'flag' || d.kind === 'text' ? 'gauge' : d.kind;
}

/** The samples of one entry's numbers (`value`, as `decls` declare it), `labels` on each. */
function samples(
  decls: Declarations,
  value: Tree,
  labels: Labels,
  families: Map<Declaration, Family>,
  now: number,
): void {
  for (const [key, d] of Object.entries(decls)) {
    const v = value[key];
    if ('group' in d) {
      if (typeof v === 'object' && v !== null) samples(d.group, v as Tree, labels, families, now);
      continue;
    }
    if ('list' in d) {
      for (const e of Array.isArray(v) ? (v as Tree[]) : []) {
        samples(d.list, e, { ...labels, [d.label]: String(e.name) }, families, now);
      }
      continue;
    }
    const f = families.get(d);
    if ('keys' in d) {
      const counts = (typeof v === 'object' && v !== null ? v : {}) as Record<string, number>;
      if (f) {
        const keys: readonly string[] = d.zeros ? STAT_KEYS[d.keys] : Object.keys(counts);
        for (const k of keys) f.sample(f.name, { ...labels, [d.label]: k }, counts[k] ?? 0);
      }
      if (d.also !== undefined) samples(d.also, counts, labels, families, now);
      continue;
    }
    if (f === undefined) continue;
    if (d.kind === 'histogram') {
      // Stats from an older worker, or summed before its first report, may carry none: left out.
      if (isHistogram(v as HistogramSnapshot | undefined)) {
        histogram(f, f.name, labels, v as HistogramSnapshot);
      }
      continue;
    }
    // A number an older worker does not report yet: 0.
    let n = typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' ? v : 0;
    if (d.minus !== undefined) n -= (value[d.minus] as number | undefined) ?? 0;
    if (d.fromNow) n = Math.round((n - now) / 1000);
    f.sample(f.name, d.labels ? { ...labels, ...d.labels } : labels, n);
  }
}

/** The whole exposition for one stats snapshot: every family as src/stats.ts declares it. */
export function formatMetrics(stats: SwitchyardStats): string {
  const now = Date.now();
  const out: Family[] = [];
  for (const [key, entity] of Object.entries(STATS) as [keyof SwitchyardStats, Entity][]) {
    const info = entity.info && new Family(entity.info.metric, 'gauge', entity.info.help);
    const families = new Map<Declaration, Family>();
    declare(entity.of, families);
    if (info) out.push(info);
    out.push(...new Set(families.values()));
    for (const [name, entry] of Object.entries(stats[key])) {
      const labels: Labels = { [entity.label]: name };
      if (info) {
        const e = entry as unknown as Tree;
        for (const l of entity.info?.labels ?? []) labels[l] = String(e[l]);
        info.sample(info.name, labels, 1);
      }
      samples(entity.of, entry as unknown as Tree, { [entity.label]: name }, families, now);
    }
  }
  // This process's log lines only (a supervisor's, not its workers').
  const families = new Map<Declaration, Family>();
  declare(PROCESS_STATS, families);
  out.push(...families.values());
  samples(PROCESS_STATS, { logDropped: logDroppedByReason() }, {}, families, now);
  return `${out.map((f) => f.lines.join('\n')).join('\n')}\n`;
}
