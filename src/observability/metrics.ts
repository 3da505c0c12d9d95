/**
 * Prometheus text exposition (format 0.0.4) of a proxy's stats, made at scrape time.
 *
 * The proxy only keeps plain counters (ProxyServer, Backend, the state table, the bucket arrays
 * of histogram.ts); this module turns one stats() snapshot into text. It is hand-written rather
 * than prom-client because prom-client's metrics are fed by calls (inc, observe) and its
 * histograms cannot take counts already bucketed: using it would mean either calls on the hot
 * path or rebuilding every metric per scrape, for a format this small.
 */
import type { SwitchyardStats } from '../api.ts';
import { State } from '../core/state.ts';
import type { HistogramSnapshot } from './histogram.ts';
import { logDroppedByReason } from './log-writer.ts';

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

const LIVE_STATES = Object.values(State).filter((s) => s !== State.CLOSED);

/** The whole exposition for one stats snapshot. */
export function formatMetrics(stats: SwitchyardStats): string {
  const fam = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string) => {
    const f = new Family(name, type, help);
    families.push(f);
    return f;
  };
  const families: Family[] = [];
  const info = fam(
    'switchyard_frontend_info',
    'gauge',
    'Each frontend, its listen address and backend.',
  );
  const byState = fam('switchyard_connections', 'gauge', 'Live connections by state.');
  const accepted = fam(
    'switchyard_connections_accepted_total',
    'counter',
    'Client connections accepted.',
  );
  const rejected = fam(
    'switchyard_connections_rejected_total',
    'counter',
    'Client connections closed at once, by reason (cap: the connection cap was reached).',
  );
  const closed = fam(
    'switchyard_connections_closed_total',
    'counter',
    'Connections closed, by reason.',
  );
  const acceptErrors = fam(
    'switchyard_accept_errors_total',
    'counter',
    'Accepts the kernel refused (EMFILE, ...).',
  );
  const bytes = fam(
    'switchyard_bytes_total',
    'counter',
    'Bytes forwarded; direction "in" is client to server, "out" server to client.',
  );
  const connectTime = fam(
    'switchyard_connect_duration_seconds',
    'histogram',
    'Time from accept to the server connect, of closed connections.',
  );
  const sessionTime = fam(
    'switchyard_session_duration_seconds',
    'histogram',
    'Lifetime of closed connections.',
  );
  const poolInUse = fam('switchyard_pool_buffers_in_use', 'gauge', 'Pool buffers holding bytes.');
  const illegal = fam(
    'switchyard_illegal_transitions_total',
    'counter',
    'Connection state moves the table rejected (non-zero is a bug).',
  );
  for (const [frontend, s] of Object.entries(stats.frontends)) {
    const l = { frontend };
    info.sample('switchyard_frontend_info', { frontend, backend: s.backend, listen: s.listen }, 1);
    for (const state of LIVE_STATES) {
      byState.sample('switchyard_connections', { frontend, state }, s.states[state]);
    }
    accepted.sample('switchyard_connections_accepted_total', l, s.accepted);
    rejected.sample(
      'switchyard_connections_rejected_total',
      { frontend, reason: 'cap' },
      s.rejected,
    );
    for (const [reason, n] of Object.entries(s.closed)) {
      closed.sample('switchyard_connections_closed_total', { frontend, reason }, n ?? 0);
    }
    acceptErrors.sample('switchyard_accept_errors_total', l, s.acceptErrors);
    bytes.sample('switchyard_bytes_total', { frontend, direction: 'in' }, s.bytesIn);
    bytes.sample('switchyard_bytes_total', { frontend, direction: 'out' }, s.bytesOut);
    // Stats from an older worker, or summed before its first report, may carry none: left out.
    if (isHistogram(s.histograms?.connectMs) && isHistogram(s.histograms?.durationMs)) {
      histogram(connectTime, 'switchyard_connect_duration_seconds', l, s.histograms.connectMs);
      histogram(sessionTime, 'switchyard_session_duration_seconds', l, s.histograms.durationMs);
    }
    poolInUse.sample('switchyard_pool_buffers_in_use', l, s.pool.inUse);
    illegal.sample('switchyard_illegal_transitions_total', l, s.states.illegal);
  }

  const up = fam('switchyard_server_up', 'gauge', 'Server health: 1 up, 0 down.');
  const backup = fam('switchyard_server_backup', 'gauge', '1 for a backup server.');
  const weight = fam('switchyard_server_weight', 'gauge', 'Server weight (0 = drained).');
  const active = fam(
    'switchyard_server_active_connections',
    'gauge',
    'Connections a server holds (connecting or established).',
  );
  const sent = fam(
    'switchyard_server_connections_total',
    'counter',
    'Connect attempts sent to a server.',
  );
  const failures = fam(
    'switchyard_server_connect_failures_total',
    'counter',
    'Connect attempts to a server that failed (refused, reset, timed out).',
  );
  const checks = fam(
    'switchyard_health_checks_total',
    'counter',
    'Active health checks, by result (pass or fail).',
  );
  const queued = fam(
    'switchyard_backend_queue_length',
    'gauge',
    'Clients waiting for a server slot.',
  );
  const queueTimeouts = fam(
    'switchyard_backend_queue_timeouts_total',
    'counter',
    'Clients that left the queue by its timeout.',
  );
  const queueFull = fam(
    'switchyard_backend_queue_full_total',
    'counter',
    'Clients closed because the queue was full.',
  );
  for (const [backend, b] of Object.entries(stats.backends)) {
    queued.sample('switchyard_backend_queue_length', { backend }, b.queued);
    queueTimeouts.sample('switchyard_backend_queue_timeouts_total', { backend }, b.queueTimeouts);
    queueFull.sample('switchyard_backend_queue_full_total', { backend }, b.queueFull);
    for (const s of b.servers) {
      const l = { backend, server: s.name };
      up.sample('switchyard_server_up', l, s.up ? 1 : 0);
      backup.sample('switchyard_server_backup', l, s.backup ? 1 : 0);
      weight.sample('switchyard_server_weight', l, s.weight);
      active.sample('switchyard_server_active_connections', l, s.active);
      sent.sample('switchyard_server_connections_total', l, s.connections);
      failures.sample('switchyard_server_connect_failures_total', l, s.failures);
      checks.sample(
        'switchyard_health_checks_total',
        { ...l, result: 'pass' },
        s.checks - s.checkFailures,
      );
      checks.sample('switchyard_health_checks_total', { ...l, result: 'fail' }, s.checkFailures);
    }
  }
  // This process's log lines only (a supervisor's, not its workers').
  const logDropped = fam(
    'switchyard_log_dropped_total',
    'counter',
    'Log lines not written, by reason.',
  );
  for (const [reason, n] of Object.entries(logDroppedByReason())) {
    logDropped.sample('switchyard_log_dropped_total', { reason }, n);
  }
  return `${families.map((f) => f.lines.join('\n')).join('\n')}\n`;
}
