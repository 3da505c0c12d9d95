/**
 * The load scenarios: what the client does, against which backend, and what one unit of work is.
 */
import type { Tools } from './install.ts';
import { type LoadResult, runRedisBenchmark, runWrk } from './load.ts';

export type BackendKind = 'origin' | 'redis';
export type ScenarioId = 'small' | 'bulk' | 'churn' | 'redis';

/** What a scenario keeps per contender between runs (the redis run size, calibrated). */
export interface ContenderState {
  redisRate?: number;
}

/** A load scenario, run once per contender per round. */
export interface Scenario {
  id: ScenarioId;
  title: string;
  /** How the client drives it, for the report. */
  how: string;
  backend: BackendKind;
  /** The unit the CPU cost is given in: every scenario's request is one unit, except bulk's MiB. */
  unit: string;
  /** The tool it needs, as a key of Tools. */
  tool: 'wrk' | 'redisBenchmark';
  run(tools: Tools, port: number, seconds: number, state: ContenderState): Promise<LoadResult>;
}

/** Clients of the keep-alive and churn scenarios. */
const SMALL_CONNECTIONS = 50;
/** Clients of the 1 MiB scenario. */
const BULK_CONNECTIONS = 8;
const REDIS_CONNECTIONS = 50;
const REDIS_PIPELINE = 16;
/** SET and GET requests of a calibration run: well under a second through any proxy here. */
const REDIS_CALIBRATION = 100_000;

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'small',
    title: 'small keep-alive requests',
    how: `wrk -t1 -c${SMALL_CONNECTIONS}, GET of a 12-byte body, keep-alive`,
    backend: 'origin',
    unit: 'request',
    tool: 'wrk',
    run: (tools, port, seconds) =>
      runWrk({
        wrk: tools.wrk ?? '',
        port,
        path: '/small',
        connections: SMALL_CONNECTIONS,
        seconds,
        close: false,
      }),
  },
  {
    id: 'bulk',
    title: '1 MiB transfers',
    how: `wrk -t1 -c${BULK_CONNECTIONS}, GET of a 1 MiB body, keep-alive`,
    backend: 'origin',
    // Each request carries one 1 MiB body (plus ~200 bytes of headers), so per request = per MiB.
    unit: 'MiB',
    tool: 'wrk',
    run: (tools, port, seconds) =>
      runWrk({
        wrk: tools.wrk ?? '',
        port,
        path: '/bulk',
        connections: BULK_CONNECTIONS,
        seconds,
        close: false,
      }),
  },
  {
    id: 'churn',
    title: 'connection churn',
    how: `wrk -t1 -c${SMALL_CONNECTIONS} -H 'Connection: close': one TCP connection per request`,
    backend: 'origin',
    unit: 'connection',
    tool: 'wrk',
    run: (tools, port, seconds) =>
      runWrk({
        wrk: tools.wrk ?? '',
        port,
        path: '/small',
        connections: SMALL_CONNECTIONS,
        seconds,
        close: true,
      }),
  },
  {
    id: 'redis',
    title: 'redis SET/GET, pipelined',
    how: `redis-benchmark -t set,get -c ${REDIS_CONNECTIONS} -P ${REDIS_PIPELINE}`,
    backend: 'redis',
    unit: 'request',
    tool: 'redisBenchmark',
    run: runRedis,
  },
];

/**
 * redis-benchmark runs a count, not a duration. The first run (the warm-up) is a fixed, small
 * count that measures the contender's rate; later runs size the count to last `seconds`.
 */
async function runRedis(
  tools: Tools,
  port: number,
  seconds: number,
  state: ContenderState,
): Promise<LoadResult> {
  const perTest = state.redisRate
    ? Math.round(Math.min(Math.max((state.redisRate * seconds) / 2, 20_000), 50_000_000))
    : REDIS_CALIBRATION;
  const result = await runRedisBenchmark({
    redisBenchmark: tools.redisBenchmark ?? '',
    port,
    requests: perTest,
    connections: REDIS_CONNECTIONS,
    pipeline: REDIS_PIPELINE,
    // Four times the planned length, so a slow contender still finishes, a stuck one does not.
    timeoutMs: Math.max(seconds * 4, 20) * 1000,
  });
  state.redisRate = result.requests / result.seconds;
  return result;
}
