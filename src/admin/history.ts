/**
 * The last five minutes for the stats page's graphs: once a second the admin server reads
 * stats() (what /api/stats returns: counters and gauges the proxy keeps anyway) and keeps a few
 * totals in a ring of HISTORY_SECONDS + 1 samples. Nothing is done per connection or per byte:
 * the data path only bumps the counters it always bumps, and a sample costs one stats() call.
 * /api/history turns the ring into series (rates from differences of counters) on request:
 * at most 301 samples, so bounded work whatever the traffic.
 */
import { LIVE_STATES } from '../observability/stat-keys.ts';
import type { SwitchyardStats } from '../stats.ts';
import type { StatsSource } from './source.ts';

/** How far back the graphs go, in seconds (one sample a second). */
export const HISTORY_SECONDS = 300;
/** Close and rejection reasons are summed over this many last seconds. */
export const RECENT_SECONDS = 60;

interface Sample {
  /** Unix time, milliseconds. */
  t: number;
  /** Live connections per state (LIVE_STATES order), every frontend summed. */
  states: number[];
  accepted: number;
  bytesIn: number;
  bytesOut: number;
  closed: Record<string, number>;
  rejected: Record<string, number>;
  /** Active connections by `backend/server`. */
  servers: Record<string, number>;
}

/** What /api/history answers: series of equal length, oldest first. */
export interface HistoryView {
  intervalMs: number;
  /** Unix time of each point, seconds. */
  t: number[];
  /** Live connections per state, by state name. */
  states: Record<string, number[]>;
  /** New connections per second. */
  accepted: number[];
  /** Bytes per second, client to server (`in`) and server to client (`out`). */
  bytesIn: number[];
  bytesOut: number[];
  /** Active connections per server, by `backend/server` (null before the server existed). */
  servers: Record<string, (number | null)[]>;
  /** Connections closed in the last RECENT_SECONDS, by reason (core/ending.ts). */
  closedRecent: Record<string, number>;
  /** Clients turned away in the last RECENT_SECONDS, by reason. */
  rejectedRecent: Record<string, number>;
  /** Since start, by reason. */
  closedTotal: Record<string, number>;
  rejectedTotal: Record<string, number>;
}

/** A ring of samples taken every `intervalMs` from `source`; start() and stop() it. */
export class History {
  private readonly ring: (Sample | undefined)[] = new Array(HISTORY_SECONDS + 1);
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;

  private readonly source: StatsSource;
  private readonly intervalMs: number;

  constructor(source: StatsSource, intervalMs = 1000) {
    this.source = source;
    this.intervalMs = intervalMs;
    this.tick = this.tick.bind(this);
  }

  start(): void {
    if (this.timer !== null) return;
    void this.tick();
    // Unref'd: the graphs never keep a process alive that is otherwise done.
    this.timer = setInterval(this.tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    // A supervisor answers over IPC: never two samples in flight.
    if (this.sampling) return;
    this.sampling = true;
    try {
      this.add(toSample(await this.source.stats(), Date.now()));
    } catch {
      // A sample missed (a worker busy or gone) is a gap in the graph, nothing more.
    } finally {
      this.sampling = false;
    }
  }

  /** Adds one sample (exposed for tests). */
  add(sample: Sample): void {
    this.ring[this.next] = sample;
    this.next = (this.next + 1) % this.ring.length;
  }

  /** The samples, oldest first. */
  private samples(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const s = this.ring[(this.next + i) % this.ring.length];
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /** The series of the graphs and the recent endings. */
  view(): HistoryView {
    const all = this.samples();
    // A rate needs the sample before it: the oldest one only serves as that.
    const points = all.slice(1);
    const rate = (pick: (s: Sample) => number) =>
      points.map((s, i) => {
        const before = all[i] as Sample;
        const seconds = (s.t - before.t) / 1000;
        // A counter going back (a worker's counters leave the sum when it dies) is not traffic.
        return seconds > 0 ? Math.max(0, Math.round((pick(s) - pick(before)) / seconds)) : 0;
      });
    const states: Record<string, number[]> = {};
    LIVE_STATES.forEach((name, k) => {
      states[name] = points.map((s) => s.states[k] ?? 0);
    });
    const servers: Record<string, (number | null)[]> = {};
    for (const s of points) for (const key of Object.keys(s.servers)) servers[key] ??= [];
    for (const key of Object.keys(servers)) {
      servers[key] = points.map((s) => s.servers[key] ?? null);
    }
    const last = all.at(-1);
    const cutoff = (last?.t ?? 0) - RECENT_SECONDS * 1000;
    const base = all.find((s) => s.t >= cutoff) ?? last;
    return {
      intervalMs: this.intervalMs,
      t: points.map((s) => Math.round(s.t / 1000)),
      states,
      accepted: rate((s) => s.accepted),
      bytesIn: rate((s) => s.bytesIn),
      bytesOut: rate((s) => s.bytesOut),
      servers,
      closedRecent: difference(last?.closed, base?.closed),
      rejectedRecent: difference(last?.rejected, base?.rejected),
      closedTotal: { ...last?.closed },
      rejectedTotal: { ...last?.rejected },
    };
  }
}

/** The totals of one stats() that the graphs need. */
export function toSample(stats: SwitchyardStats, t: number): Sample {
  const sample: Sample = {
    t,
    states: LIVE_STATES.map(() => 0),
    accepted: 0,
    bytesIn: 0,
    bytesOut: 0,
    closed: {},
    rejected: {},
    servers: {},
  };
  for (const f of Object.values(stats.frontends)) {
    LIVE_STATES.forEach((name, k) => {
      sample.states[k] = (sample.states[k] as number) + (f.states[name] ?? 0);
    });
    sample.accepted += f.accepted;
    sample.bytesIn += f.bytesIn;
    sample.bytesOut += f.bytesOut;
    addInto(sample.closed, f.closed);
    addInto(sample.rejected, f.rejected);
  }
  for (const b of Object.values(stats.backends)) {
    for (const s of b.servers) sample.servers[`${b.name}/${s.name}`] = s.active;
  }
  return sample;
}

function addInto(into: Record<string, number>, from: Partial<Record<string, number>>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + (n ?? 0);
}

/** now − then per key, the keys that grew only. */
function difference(
  now: Record<string, number> | undefined,
  then: Record<string, number> | undefined,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(now ?? {})) {
    const d = n - (then?.[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}
