/**
 * Runs one scenario over every contender, A/B interleaved: a warm-up run of each, then rounds in
 * which each contender runs once, the order rotated every round. Slow drift of the machine
 * (thermal, a neighbour's load) then spreads over all contenders instead of landing on one.
 */
import type { Contender, ListeningProxy } from './contenders.ts';
import type { Tools } from './install.ts';
import type { LoadResult } from './load.ts';
import { cpuBusySeconds, treeCpuSeconds } from './measure.ts';
import { isAlive, lastLine, PROXY_CPU } from './proc.ts';
import type { ContenderState, GroupContext, Scenario } from './scenarios.ts';

/** One measured run of one contender. */
export interface Sample {
  round: number;
  load: LoadResult;
  /** CPU seconds of the proxy's process tree over the run; null for direct. */
  cpuSeconds: number | null;
  /**
   * CPU seconds spent on the proxy CPU by anything else over the run: other processes, and
   * interrupt work the kernel does not charge to the proxy. A large value means a noisy run.
   */
  otherCpuSeconds: number;
}

/** Every run of one contender in one scenario, or why it has none. */
export interface ContenderRuns {
  name: string;
  samples: Sample[];
  failure: string | null;
}

/** A contender started for a scenario group, or why it could not start. */
export interface Started {
  contender: Contender;
  running: ListeningProxy | null;
  failure: string | null;
}

/**
 * Share of CPU 1 that others may take during a run before it is measured again. Kernel work for
 * the proxy's sockets that is not charged to it shows up here too, at a few percent.
 */
const NOISE_LIMIT = 0.15;

export interface RoundOptions {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** Measure a run again when others took CPU 1 (off for --quick, which must stay short). */
  retryNoisy: boolean;
  tools: Tools;
  log: (line: string) => void;
  /** Shared by the scenarios of one backend group. */
  group: GroupContext;
}

/** Contenders of the newer scenarios (Scenario.core): the ones the issue compares. */
export function inCore(name: string): boolean {
  return (
    name === 'direct' ||
    name === 'haproxy' ||
    (name.startsWith('switchyard') && !name.endsWith('-w2'))
  );
}

/** Runs `scenario` on every started contender; never throws for a contender's failure. */
export async function runScenario(
  scenario: Scenario,
  all: Started[],
  o: RoundOptions,
): Promise<ContenderRuns[]> {
  const runs = new Map<string, ContenderRuns>();
  const states = new Map<string, ContenderState>();
  const started = scenario.core ? all.filter((s) => inCore(s.contender.name)) : all;
  for (const s of started) {
    runs.set(s.contender.name, { name: s.contender.name, samples: [], failure: s.failure });
    states.set(s.contender.name, {});
  }
  const live = () => started.filter((s) => runs.get(s.contender.name)?.failure === null);

  // --quick runs the newer scenarios without a warm-up (o.warmupSeconds 0): under 3 minutes.
  for (const s of o.warmupSeconds > 0 ? live() : []) {
    const r = runs.get(s.contender.name) as ContenderRuns;
    try {
      await measureOnce(scenario, s, o.warmupSeconds, states.get(r.name) ?? {}, o);
      o.log(`  warm-up ${r.name}`);
    } catch (err) {
      r.failure = `warm-up: ${(err as Error).message}`;
      o.log(`  warm-up ${r.name}: FAILED ${r.failure}`);
    }
  }
  for (let round = 0; round < o.rounds; round++) {
    const order = rotate(live(), round);
    for (const s of order) {
      const r = runs.get(s.contender.name) as ContenderRuns;
      try {
        const state = states.get(r.name) ?? {};
        let sample = await measureOnce(scenario, s, o.seconds, state, o);
        if (o.retryNoisy && s.running?.child && noise(sample) > NOISE_LIMIT) {
          // Something else took the proxy's CPU: once, measure again and keep the quieter run.
          o.log(
            `  round ${round + 1}/${o.rounds} ${r.name}: ${pct(noise(sample))} of CPU 1 taken by others, again`,
          );
          const again = await measureOnce(scenario, s, o.seconds, state, o);
          if (noise(again) < noise(sample)) sample = again;
        }
        r.samples.push({ ...sample, round });
        o.log(`  round ${round + 1}/${o.rounds} ${r.name}: ${describe(sample, scenario)}`);
      } catch (err) {
        r.failure = (err as Error).message;
        o.log(`  round ${round + 1}/${o.rounds} ${r.name}: FAILED ${r.failure}`);
      }
    }
  }
  return [...runs.values()];
}

async function measureOnce(
  scenario: Scenario,
  s: Started,
  seconds: number,
  state: ContenderState,
  o: RoundOptions,
): Promise<Omit<Sample, 'round'>> {
  const running = s.running as ListeningProxy;
  const child = running.child;
  if (child && !isAlive(child)) {
    throw new Error(`proxy exited (${await child.exited}): ${lastLine(child.tail())}`);
  }
  const cpuBefore = child ? treeCpuSeconds(child.pid) : 0;
  const busyBefore = cpuBusySeconds(PROXY_CPU);
  const gcFrom = child?.gcPauses.length ?? 0;
  const load = await scenario.run(o.tools, running.port, seconds, state, o.group);
  const busyAfter = cpuBusySeconds(PROXY_CPU);
  if (child && scenario.tail) {
    // The pauses of this run (set-up included: a pause then can still delay the first requests).
    const pauses = child.gcPauses.slice(gcFrom).map((p) => p.ms);
    load.extra = { ...load.extra, gcCount: pauses.length, gcMaxMs: Math.max(0, ...pauses) };
  }
  const cpuAfter = child ? treeCpuSeconds(child.pid) : 0;
  if (child && !isAlive(child)) {
    throw new Error(
      `proxy exited during the run (${await child.exited}): ${lastLine(child.tail())}`,
    );
  }
  if (load.requests === 0) throw new Error(`no request completed (${load.errorDetail || '?'})`);
  const cpuSeconds = child ? cpuAfter - cpuBefore : null;
  return {
    load,
    cpuSeconds,
    otherCpuSeconds: Math.max(0, busyAfter - busyBefore - (cpuSeconds ?? 0)),
  };
}

/** Share of the run's wall time CPU 1 spent on anything but the proxy. */
function noise(s: Omit<Sample, 'round'>): number {
  return s.otherCpuSeconds / s.load.seconds;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(0)} %`;
}

function rotate<T>(items: T[], by: number): T[] {
  if (items.length === 0) return items;
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function describe(s: Omit<Sample, 'round'>, scenario: Scenario): string {
  const rate = Math.round(s.load.requests / s.load.seconds);
  const cost =
    s.cpuSeconds === null
      ? ''
      : `, ${((s.cpuSeconds * 1e6) / s.load.requests).toFixed(1)} µs CPU/${scenario.unit}`;
  const errors = s.load.errors ? `, errors: ${s.load.errorDetail}` : '';
  return `${rate} req/s, p99 ${Math.round(s.load.p99Us)} µs${cost}${errors}`;
}
