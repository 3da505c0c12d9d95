/**
 * A histogram as plain numbers: one counter per bucket, a sum and a count. Recording is a short
 * loop over the bounds and three increments (no allocation), so the proxy can record each
 * connection's connect time and duration as it closes; the Prometheus text is made at scrape time
 * (observability/metrics.ts) from a snapshot.
 */
import type { HistogramSnapshot } from '../stats.ts';

/** Bucket bounds in milliseconds for the time to connect to a server. */
export const CONNECT_BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
/** Bucket bounds in milliseconds for how long a connection lived. */
export const DURATION_BOUNDS_MS = [
  10, 100, 500, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 1_800_000, 3_600_000,
];

export class Histogram {
  readonly bounds: readonly number[];
  /** One more slot than bounds: the +Inf bucket. */
  readonly counts: number[];
  sumMs = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one value in milliseconds. */
  observe(ms: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && ms > (bounds[i] as number)) i++;
    (this.counts as number[])[i] = (this.counts[i] as number) + 1;
    this.sumMs += ms;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sumMs: this.sumMs, count: this.count };
  }
}
