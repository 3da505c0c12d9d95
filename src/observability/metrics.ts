/**
 * Prometheus text exposition (format 0.0.4) of a proxy's stats, made at scrape time.
 *
 * The proxy only keeps plain counters (ProxyServer, Backend, the state table, the bucket arrays
 * of core/histogram.ts); this module turns one stats() snapshot into text. It is hand-written rather
 * than prom-client because prom-client's metrics are fed by calls (inc, observe) and its
 * histograms cannot take counts already bucketed: using it would mean either calls on the hot
 * path or rebuilding every metric per scrape, for a format this small.
 */
import { ENDINGS, type Ending, type Rejection } from '../core/ending.ts';
import { State } from '../core/state.ts';
import { logDroppedByReason } from '../log-writer.ts';
import {
  BACKEND_STATS,
  FRONTEND_STATS,
  type HistogramSnapshot,
  PROCESS_STATS,
  type StatDeclaration,
  type SwitchyardStats,
} from '../stats.ts';

/** The Content-Type of the text this module writes. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

/** One metric family: a HELP and TYPE line, then its samples. */
class Family {
  readonly lines: string[];

  constructor(name: string, type: 'counter' | 'gauge' | 'histogram', help: string) {
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

const REJECTIONS = (Object.keys(ENDINGS) as Ending[]).filter(
  (e): e is Rejection => ENDINGS[e].rejected,
);

const LIVE_STATES = Object.values(State).filter((s) => s !== State.CLOSED);

/** A declared stat that /metrics exports. */
type Exported = StatDeclaration & { readonly metric: string };

/** The Prometheus type of a declared stat: flags and settings are gauges. */
function promType(d: StatDeclaration): 'counter' | 'gauge' | 'histogram' {
  return d.type === 'counter' || d.type === 'histogram' ? d.type : 'gauge';
}

/** The whole exposition for one stats snapshot; names, types and help come from src/stats.ts. */
export function formatMetrics(stats: SwitchyardStats): string {
  const families: Family[] = [];
  const fam = (d: Exported) => {
    const f = new Family(d.metric, promType(d), d.help);
    families.push(f);
    return f;
  };
  const F = FRONTEND_STATS;
  const info = new Family(
    'switchyard_frontend_info',
    'gauge',
    'Each frontend, its listen address and backend.',
  );
  families.push(info);
  const byState = fam(F.states);
  const accepted = fam(F.accepted);
  const rejected = fam(F.rejected);
  const closed = fam(F.closed);
  const acceptErrors = fam(F.acceptErrors);
  const bytes = fam(F.bytesIn);
  const connectTime = fam(F.connectMs);
  const sessionTime = fam(F.durationMs);
  const poolInUse = fam(F.inUse);
  const illegal = fam(F.illegal);
  const certExpiry = fam(F.expiresAt);
  const now = Date.now();
  for (const [frontend, s] of Object.entries(stats.frontends)) {
    const l = { frontend };
    info.sample('switchyard_frontend_info', { frontend, backend: s.backend, listen: s.listen }, 1);
    for (const state of LIVE_STATES) {
      byState.sample(F.states.metric, { frontend, state }, s.states[state]);
    }
    accepted.sample(F.accepted.metric, l, s.accepted);
    // Every rejection reason is sampled, 0 included, so a rate() sees the first one.
    for (const reason of REJECTIONS) {
      rejected.sample(F.rejected.metric, { frontend, reason }, s.rejected[reason] ?? 0);
    }
    for (const [reason, n] of Object.entries(s.closed)) {
      closed.sample(F.closed.metric, { frontend, reason }, n ?? 0);
    }
    acceptErrors.sample(F.acceptErrors.metric, l, s.acceptErrors);
    bytes.sample(F.bytesIn.metric, { frontend, direction: 'in' }, s.bytesIn);
    bytes.sample(F.bytesOut.metric, { frontend, direction: 'out' }, s.bytesOut);
    // Stats from an older worker, or summed before its first report, may carry none: left out.
    if (isHistogram(s.histograms?.connectMs) && isHistogram(s.histograms?.durationMs)) {
      histogram(connectTime, F.connectMs.metric, l, s.histograms.connectMs);
      histogram(sessionTime, F.durationMs.metric, l, s.histograms.durationMs);
    }
    poolInUse.sample(F.inUse.metric, l, s.pool.inUse);
    illegal.sample(F.illegal.metric, l, s.states.illegal);
    for (const c of s.tlsCertificates ?? []) {
      certExpiry.sample(
        F.expiresAt.metric,
        { frontend, cert: c.name },
        Math.round((c.expiresAt - now) / 1000),
      );
    }
  }

  const B = BACKEND_STATS;
  const up = fam(B.up);
  const backup = fam(B.backup);
  const weight = fam(B.weight);
  const active = fam(B.active);
  const sent = fam(B.connections);
  const failures = fam(B.failures);
  const checks = fam(B.checks);
  const queued = fam(B.queued);
  const queueTimeouts = fam(B.queueTimeouts);
  const queueFull = fam(B.queueFull);
  const localErrors = fam(B.localErrors);
  const dnsFailures = fam(B.dnsFailures);
  for (const [backend, b] of Object.entries(stats.backends)) {
    queued.sample(B.queued.metric, { backend }, b.queued);
    queueTimeouts.sample(B.queueTimeouts.metric, { backend }, b.queueTimeouts);
    queueFull.sample(B.queueFull.metric, { backend }, b.queueFull);
    localErrors.sample(B.localErrors.metric, { backend }, b.localErrors);
    // Stats from an older worker may carry none: 0.
    dnsFailures.sample(B.dnsFailures.metric, { backend }, b.dnsFailures ?? 0);
    for (const s of b.servers) {
      const l = { backend, server: s.name };
      up.sample(B.up.metric, l, s.up ? 1 : 0);
      backup.sample(B.backup.metric, l, s.backup ? 1 : 0);
      weight.sample(B.weight.metric, l, s.weight);
      active.sample(B.active.metric, l, s.active);
      sent.sample(B.connections.metric, l, s.connections);
      failures.sample(B.failures.metric, l, s.failures);
      checks.sample(B.checks.metric, { ...l, result: 'pass' }, s.checks - s.checkFailures);
      checks.sample(B.checkFailures.metric, { ...l, result: 'fail' }, s.checkFailures);
    }
  }
  // This process's log lines only (a supervisor's, not its workers').
  const logDropped = fam(PROCESS_STATS.logDropped);
  for (const [reason, n] of Object.entries(logDroppedByReason())) {
    logDropped.sample(PROCESS_STATS.logDropped.metric, { reason }, n);
  }
  return `${families.map((f) => f.lines.join('\n')).join('\n')}\n`;
}
