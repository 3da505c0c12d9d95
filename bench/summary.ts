/**
 * Turns the samples into the reported numbers: medians over rounds, and each contender's ratio
 * to HAProxy. A ratio is taken within a round (both measured minutes apart at most) and the
 * median of those ratios is reported, which cancels drift that a ratio of medians would keep.
 */
import { BASELINE, DIRECT } from './contenders.ts';
import type { IdleSample } from './idle.ts';
import type { ContenderRuns, Sample } from './rounds.ts';
import type { Scenario, ScenarioId } from './scenarios.ts';

/**
 * The targets: the most a contender may cost, as a ratio to HAProxy in the same scenario;
 * `sniPassthrough` is the exception: switchyard's sni-route over HAProxy's sni-plain (issue 13,
 * "passthrough within 1.1× of HAProxy's plain TCP cost on the fastest engine").
 */
const TARGETS: Record<string, Partial<Record<ScenarioId | 'rss' | 'sniPassthrough', number>>> = {
  'switchyard-node': { small: 1.1, bulk: 1.1, churn: 1.5, rss: 1.5, sniPassthrough: 1.1 },
  'switchyard-bun': { small: 1.0, bulk: 1.0, churn: 1.1, rss: 1.0, sniPassthrough: 1.1 },
};
/** Most CPU a switchyard may use holding idle connections, in percent of one CPU. */
const IDLE_CPU_TARGET_PERCENT = 0.1;

/** One contender's line in a load scenario's table. */
export interface LoadRow {
  name: string;
  failure: string | null;
  rounds: number;
  requestsPerSecond: number | null;
  p50Us: number | null;
  p99Us: number | null;
  /** Median proxy CPU per unit (request, MiB, connection), in microseconds. */
  cpuPerUnitUs: number | null;
  /** Median busy share of the proxy CPU taken by the proxy, in percent. */
  proxyCpuPercent: number | null;
  /** Median busy share of the proxy CPU taken by anything else, in percent. */
  otherCpuPercent: number | null;
  errors: number;
  errorDetail: string;
  ratio: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
  target: number | null;
  /** Medians of the scenario's extra figures, by Extra.key. */
  extras: Record<string, number | null>;
}

export interface ScenarioSummary {
  scenario: Scenario;
  rows: LoadRow[];
}

/** Medians and ratios of one load scenario. */
export function summarizeScenario(scenario: Scenario, runs: ContenderRuns[]): ScenarioSummary {
  const baseline = runs.find((r) => r.name === BASELINE);
  const baseCost = new Map<number, number>();
  for (const s of baseline?.samples ?? []) {
    const cost = costPerUnit(s);
    if (cost !== null) baseCost.set(s.round, cost);
  }
  const rows = runs.map((r): LoadRow => {
    const samples = r.samples;
    const ratios: number[] = [];
    for (const s of samples) {
      const cost = costPerUnit(s);
      const base = baseCost.get(s.round);
      if (cost !== null && base) ratios.push(cost / base);
    }
    const errors = samples.reduce((sum, s) => sum + s.load.errors, 0);
    const proxyPct = samples.map((s) =>
      s.cpuSeconds === null ? null : (s.cpuSeconds / s.load.seconds) * 100,
    );
    return {
      name: r.name,
      // A contender that failed after some rounds keeps them; its failure is still reported.
      failure: r.failure,
      rounds: samples.length,
      requestsPerSecond: median(samples.map((s) => s.load.requests / s.load.seconds)),
      p50Us: median(samples.map((s) => s.load.p50Us)),
      p99Us: median(samples.map((s) => s.load.p99Us)),
      cpuPerUnitUs: median(samples.map(costPerUnit)),
      proxyCpuPercent: median(proxyPct),
      otherCpuPercent: median(samples.map((s) => (s.otherCpuSeconds / s.load.seconds) * 100)),
      errors,
      errorDetail: samples.find((s) => s.load.errorDetail)?.load.errorDetail ?? '',
      ratio: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
      target: TARGETS[r.name]?.[scenario.id] ?? null,
      extras: Object.fromEntries(
        [...(scenario.extras ?? []).map((e) => e.key), 'p999Us', 'maxUs'].map((key) => [
          key,
          median(samples.map((s) => s.load.extra?.[key] ?? null)),
        ]),
      ),
    };
  });
  return { scenario, rows };
}

/**
 * What a feature costs one proxy: its CPU per unit in the scenario with the feature over the
 * same in the scenario without (PROXY protocol: pp-v2 over pp-plain).
 */
export interface OverheadRow {
  name: string;
  failure: string | null;
  /** Median CPU per unit without and with the feature, in microseconds. */
  withoutUs: number | null;
  withUs: number | null;
  /** Median, lowest and highest over the rounds of with / without, paired by round. */
  ratio: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
  rounds: number;
}

/**
 * Pairs round k of `without` with round k of `variant` for each proxy (direct has no CPU and no
 * row): the two runs are one scenario apart, closer in time than the medians of the two.
 */
export function summarizeOverhead(
  without: ContenderRuns[],
  variant: ContenderRuns[],
): OverheadRow[] {
  const rows: OverheadRow[] = [];
  for (const w of without) {
    if (w.name === DIRECT) continue;
    const v = variant.find((r) => r.name === w.name);
    const ratios = pairedRatios(w.samples, v?.samples ?? []);
    rows.push({
      name: w.name,
      failure: w.failure ?? v?.failure ?? (v ? null : 'not run with the feature'),
      withoutUs: median(w.samples.map(costPerUnit)),
      withUs: median((v?.samples ?? []).map(costPerUnit)),
      ratio: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
      rounds: ratios.length,
    });
  }
  return rows;
}

/** One switchyard engine against the SNI passthrough target. */
export interface PassthroughRow {
  name: string;
  failure: string | null;
  /** Median CPU per unit of this engine routing by SNI (sni-route), in microseconds. */
  routeUs: number | null;
  /** Median CPU per unit of HAProxy forwarding plain TCP (sni-plain), in microseconds. */
  baselineUs: number | null;
  /** Median, lowest and highest over the rounds of routeUs / baselineUs, paired by round. */
  ratio: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
  rounds: number;
  target: number | null;
}

/**
 * The SNI target for each contender that has one (the switchyard engines): its CPU per
 * connection routing by SNI over HAProxy's forwarding the same traffic as plain TCP, round k of
 * sni-route paired with round k of sni-plain.
 */
export function summarizePassthroughTarget(
  plain: ContenderRuns[],
  route: ContenderRuns[],
): PassthroughRow[] {
  const haproxy = plain.find((r) => r.name === BASELINE);
  const rows: PassthroughRow[] = [];
  for (const r of route) {
    const target = TARGETS[r.name]?.sniPassthrough;
    if (target === undefined) continue;
    const ratios = pairedRatios(haproxy?.samples ?? [], r.samples);
    rows.push({
      name: r.name,
      failure: r.failure ?? (haproxy ? null : 'no HAProxy sni-plain run'),
      routeUs: median(r.samples.map(costPerUnit)),
      baselineUs: median((haproxy?.samples ?? []).map(costPerUnit)),
      ratio: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
      rounds: ratios.length,
      target,
    });
  }
  return rows;
}

/**
 * Cost of each `after` sample over the `before` sample of the same round; rounds missing on
 * either side, without a cost, or with a zero cost before are left out.
 */
function pairedRatios(before: Sample[], after: Sample[]): number[] {
  const base = new Map<number, number>();
  for (const s of before) {
    const cost = costPerUnit(s);
    if (cost !== null) base.set(s.round, cost);
  }
  const ratios: number[] = [];
  for (const s of after) {
    const cost = costPerUnit(s);
    const b = base.get(s.round);
    if (cost !== null && b) ratios.push(cost / b);
  }
  return ratios;
}

/** Proxy CPU microseconds per unit of work in one run; null without a proxy. */
function costPerUnit(s: Sample): number | null {
  if (s.cpuSeconds === null || s.load.requests === 0) return null;
  return (s.cpuSeconds * 1e6) / s.load.requests;
}

/** Every idle measurement of one contender, or why it has none. */
export interface IdleRuns {
  name: string;
  samples: (IdleSample & { round: number })[];
  failure: string | null;
}

/** One contender's line in the idle table. */
export interface IdleRow {
  name: string;
  failure: string | null;
  rounds: number;
  connections: number | null;
  rssBeforeBytes: number | null;
  rssPerConnectionBytes: number | null;
  ratio: number | null;
  ratioTarget: number | null;
  idleCpuPercent: number | null;
  idleCpuTarget: number | null;
  precise: boolean;
}

/** Medians and RSS ratios of the idle scenario. */
export function summarizeIdle(runs: IdleRuns[]): IdleRow[] {
  const baseline = runs.find((r) => r.name === BASELINE);
  const baseRss = new Map<number, number>();
  for (const s of baseline?.samples ?? []) baseRss.set(s.round, s.rssPerConnectionBytes);
  return runs
    .filter((r) => r.name !== DIRECT)
    .map((r): IdleRow => {
      const ratios: number[] = [];
      for (const s of r.samples) {
        const base = baseRss.get(s.round);
        if (base && base > 0) ratios.push(s.rssPerConnectionBytes / base);
      }
      return {
        name: r.name,
        failure: r.failure,
        rounds: r.samples.length,
        connections: r.samples[0]?.connections ?? null,
        rssBeforeBytes: median(r.samples.map((s) => s.rssBeforeBytes)),
        rssPerConnectionBytes: median(r.samples.map((s) => s.rssPerConnectionBytes)),
        ratio: median(ratios),
        ratioTarget: TARGETS[r.name]?.rss ?? null,
        idleCpuPercent: median(r.samples.map((s) => s.idleCpuPercent)),
        idleCpuTarget: r.name.startsWith('switchyard') ? IDLE_CPU_TARGET_PERCENT : null,
        precise: r.samples.every((s) => s.precise),
      };
    });
}

/** Median of the numbers present; null when there are none. */
export function median(values: (number | null)[]): number | null {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (xs.length === 0) return null;
  xs.sort((a, b) => a - b);
  const mid = xs.length >> 1;
  return xs.length % 2 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
}
