/**
 * The load generators, wrk and redis-benchmark, run on the load CPU with a hard time limit, and
 * their output turned into numbers.
 */
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, lastLine, runPinned } from './proc.ts';

/** What one load run measured from the client's side. */
export interface LoadResult {
  requests: number;
  /** Wall seconds the load ran for. */
  seconds: number;
  p50Us: number;
  p99Us: number;
  /** Socket errors, timeouts and non-2xx answers, all together. */
  errors: number;
  /** What the errors were, for the report (empty when none). */
  errorDetail: string;
}

const WRK_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

/** One wrk run: `connections` connections on one thread for `seconds`. */
export interface WrkOptions {
  wrk: string;
  port: number;
  path: string;
  connections: number;
  seconds: number;
  /** Send `Connection: close`, so every request is a new TCP connection (churn). */
  close: boolean;
}

/** Runs wrk; throws with wrk's own words when it produced no result. */
export async function runWrk(o: WrkOptions): Promise<LoadResult> {
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s'];
  args.push('-s', WRK_SCRIPT);
  if (o.close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${o.port}${o.path}`);
  const r = await runPinned(LOAD_CPU, o.wrk, args, (o.seconds + 15) * 1000);
  const line = /^WRK_JSON (.*)$/m.exec(r.stdout)?.[1];
  if (!line) {
    const why = r.timedOut ? 'timed out' : `status ${r.status}`;
    throw new Error(`wrk ${why}: ${lastLine(r.stderr || r.stdout)}`);
  }
  const j = JSON.parse(line) as Record<string, number>;
  const n = (key: string) => j[key] ?? 0;
  const kinds = ['connect', 'read', 'write', 'timeout', 'status'] as const;
  const errorDetail = kinds
    .filter((k) => n(k) > 0)
    .map((k) => `${k === 'status' ? 'non-2xx' : k} ${n(k)}`)
    .join(', ');
  return {
    requests: n('requests'),
    seconds: n('duration_us') / 1e6,
    p50Us: n('p50_us'),
    p99Us: n('p99_us'),
    errors: kinds.reduce((sum, k) => sum + n(k), 0),
    errorDetail,
  };
}

/** One redis-benchmark run of SET then GET, pipelined. */
export interface RedisOptions {
  redisBenchmark: string;
  port: number;
  /** Requests per test; the run makes twice as many (SET and GET). */
  requests: number;
  connections: number;
  pipeline: number;
  timeoutMs: number;
}

/**
 * Runs redis-benchmark. Its rate and percentiles are per test; the run's rate is the total over
 * the wall time, and p50/p99 are the worse of the two tests. redis-benchmark retries a refused
 * connection forever, hence the hard timeout.
 */
export async function runRedisBenchmark(o: RedisOptions): Promise<LoadResult> {
  const args = ['-h', '127.0.0.1', '-p', String(o.port), '-t', 'set,get'];
  args.push('-n', String(o.requests), '-c', String(o.connections), '-P', String(o.pipeline));
  args.push('--csv');
  const r = await runPinned(LOAD_CPU, o.redisBenchmark, args, o.timeoutMs);
  const rows = r.stdout
    .split('\n')
    .filter((l) => /^"(SET|GET)"/.test(l))
    .map((l) => l.split(',').map((f) => f.replaceAll('"', '')));
  if (r.timedOut || r.status !== 0 || rows.length !== 2) {
    const why = r.timedOut ? `timed out after ${o.timeoutMs / 1000} s` : `status ${r.status}`;
    throw new Error(`redis-benchmark ${why}: ${lastLine(r.stderr || r.stdout)}`);
  }
  // Columns: test, rps, avg, min, p50, p95, p99, max (milliseconds).
  const worst = (col: number) => Math.max(...rows.map((f) => Number(f[col]) * 1000));
  // Lines it prints to stderr for a lost connection or an error reply.
  const errorLines = r.stderr.split('\n').filter((l) => /error|closed|reset/i.test(l));
  return {
    requests: 2 * o.requests,
    seconds: r.seconds,
    p50Us: worst(4),
    p99Us: worst(6),
    errors: errorLines.length,
    errorDetail: errorLines.length ? lastLine(errorLines.join('\n')) : '',
  };
}
