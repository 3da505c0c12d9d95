/**
 * The load generators, wrk and redis-benchmark, run on the load CPU with a hard time limit, and
 * their output turned into numbers.
 */
import { fileURLToPath } from 'node:url';
import { PG_DATABASE } from './backends.ts';
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
  /** Figures only some scenarios have (p99.9, fairness, Gbit/s...), by Scenario.extras key. */
  extra?: Record<string, number>;
}

const WRK_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));
const HTTP_LOAD = fileURLToPath(new URL('./http-load.ts', import.meta.url));

/** One wrk run: `connections` connections on one thread for `seconds`. */
export interface WrkOptions {
  wrk: string;
  port: number;
  path: string;
  connections: number;
  seconds: number;
  /** Send `Connection: close`, so every request is a new TCP connection (churn). */
  close: boolean;
  /** Speak TLS to the proxy (keep-alive only: wrk resumes TLS sessions when it reconnects). */
  https?: boolean;
}

/** Runs wrk; throws with wrk's own words when it produced no result. */
export async function runWrk(o: WrkOptions): Promise<LoadResult> {
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s'];
  args.push('-s', WRK_SCRIPT);
  if (o.close) args.push('-H', 'Connection: close');
  args.push(`${o.https ? 'https' : 'http'}://127.0.0.1:${o.port}${o.path}`);
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

/** One run of http-load.ts: open loop at `rate` requests/s, or closed loop when rate is 0. */
export interface HttpLoadOptions {
  port: number;
  path: string;
  connections: number;
  seconds: number;
  rate: number;
  /** CPUs the client runs on (the load CPU; both for the all-cores scenario). */
  cpus?: number | string;
  /** TLS to the proxy, never resumed: each connection is a full handshake. */
  tls?: boolean;
  /** With tls: the server name (SNI) the client's ClientHello carries; left out, none. */
  servername?: string;
  /** A PROXY protocol v2 header first on each connection. */
  proxyV2?: boolean;
  /** Closed loop only: a new connection per request. */
  newConnection?: boolean;
}

/** Runs bench/http-load.ts; see there for what open and closed loop measure. */
export async function runHttpLoad(o: HttpLoadOptions): Promise<LoadResult> {
  const args = [HTTP_LOAD, o.rate > 0 ? 'open' : 'closed', String(o.port), o.path];
  args.push(String(o.connections), String(o.seconds));
  if (o.rate > 0) args.push(String(Math.round(o.rate)));
  if (o.tls) args.push('--tls');
  if (o.servername) args.push(`--servername=${o.servername}`);
  if (o.proxyV2) args.push('--proxy-v2');
  if (o.newConnection) args.push('--new-connection');
  // Opening 8,000 connections takes a few seconds before the measured window starts.
  const timeout = (o.seconds + 30 + o.connections / 500) * 1000;
  const r = await runPinned(o.cpus ?? LOAD_CPU, process.execPath, args, timeout);
  const line = /^HTTP_LOAD_JSON (.*)$/m.exec(r.stdout)?.[1];
  if (!line) {
    const why = r.timedOut ? 'timed out' : `status ${r.status}`;
    throw new Error(`http-load ${why}: ${lastLine(r.stderr || r.stdout)}`);
  }
  const j = JSON.parse(line) as Record<string, number>;
  const n = (key: string) => j[key] ?? 0;
  return {
    requests: n('requests'),
    seconds: n('seconds'),
    p50Us: n('p50_us'),
    p99Us: n('p99_us'),
    errors: n('errors'),
    errorDetail: n('errors') ? `${n('errors')} requests unanswered or connections lost` : '',
    extra: {
      p999Us: n('p999_us'),
      maxUs: n('max_us'),
      fairness: n('median_count') > 0 ? n('slowest1pct') / n('median_count') : 0,
    },
  };
}

/** One iperf3 test through `port`: the client sends (or, with reverse, receives) for `seconds`. */
export async function runIperf3(
  iperf3: string,
  port: number,
  seconds: number,
  reverse: boolean,
): Promise<LoadResult> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'];
  if (reverse) args.push('-R');
  const r = await runPinned(LOAD_CPU, iperf3, args, (seconds + 20) * 1000);
  let j: { end?: { sum_received?: { bytes?: number; seconds?: number } }; error?: string };
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 status ${r.status}: ${lastLine(r.stderr || r.stdout)}`);
  }
  const got = j.end?.sum_received;
  if (j.error || !got?.bytes || !got.seconds) {
    throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  }
  // The unit is the GiB: CPU per unit is CPU per GiB moved.
  return {
    requests: got.bytes / 1024 ** 3,
    seconds: got.seconds,
    p50Us: 0,
    p99Us: 0,
    errors: 0,
    errorDetail: '',
    extra: { gbps: (got.bytes * 8) / got.seconds / 1e9 },
  };
}

/** One pgbench run through `port`; `builtin` is pgbench's script (select-only, tpcb-like). */
export async function runPgbench(
  pgbench: string,
  port: number,
  seconds: number,
  builtin: string,
  clients: number,
  connectEach: boolean,
): Promise<LoadResult> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-b', builtin];
  args.push('-c', String(clients), '-j', '1', '-T', String(seconds), '-n', '-r');
  if (connectEach) args.push('-C');
  args.push(PG_DATABASE);
  const r = await runPinned(LOAD_CPU, pgbench, args, (seconds + 30) * 1000);
  const done = /number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1];
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const tps = /tps = ([\d.]+)/.exec(r.stdout)?.[1];
  const avg = /latency average = ([\d.]+) ms/.exec(r.stdout)?.[1];
  if (r.status !== 0 || !done || !tps) {
    throw new Error(`pgbench status ${r.status}: ${lastLine(r.stderr || r.stdout)}`);
  }
  return {
    requests: Number(done),
    seconds: Number(done) / Number(tps),
    p50Us: Number(avg ?? 0) * 1000,
    p99Us: 0,
    errors: failed,
    errorDetail: failed ? `${failed} failed transactions` : '',
    extra: { tps: Number(tps) },
  };
}
