/**
 * The load scenarios: what the client does, against which backend, and what one unit of work is.
 */
import type { Tools } from './install.ts';
import {
  type LoadResult,
  runHttpLoad,
  runIperf3,
  runPgbench,
  runRedisBenchmark,
  runWrk,
} from './load.ts';
import { LOAD_CPU, PROXY_CPU } from './proc.ts';

/**
 * What the scenarios run against; `cores` is the origin with every proxy on both CPUs; `proxy`
 * and `tls` are the origin again, with proxies whose clients speak PROXY protocol or TLS; `sni`
 * is the origin's TLS port (ECDSA P-256), which the clients' TLS reaches through the proxies.
 */
export type BackendKind =
  | 'origin'
  | 'redis'
  | 'iperf'
  | 'postgres'
  | 'cores'
  | 'proxy'
  | 'tls'
  | 'sni';
/**
 * What a scenario's clients speak to the proxy (Frontend in contenders.ts): a group restarts its
 * proxies when the next scenario needs another. `tls-ecdsa` and `tls-rsa` terminate with an
 * ECDSA P-256 or an RSA 2048 certificate; `sni` routes by the ClientHello's server name.
 */
export type FrontendKind = 'plain' | 'proxy-v2' | 'tls-ecdsa' | 'tls-rsa' | 'sni';
export type ScenarioId =
  | 'small'
  | 'bulk'
  | 'churn'
  | 'redis'
  | 'latency-25'
  | 'latency-50'
  | 'latency-75'
  | 'conns-2000'
  | 'conns-8000'
  | 'iperf3-up'
  | 'iperf3-down'
  | 'pgbench-select'
  | 'pgbench-tpcb'
  | 'cores'
  | 'pp-plain'
  | 'pp-v2'
  | 'tls-handshake-ecdsa'
  | 'tls-small'
  | 'tls-bulk'
  | 'tls-handshake-rsa'
  | 'sni-plain'
  | 'sni-route';

/** What a scenario keeps per contender between runs (the redis run size, calibrated). */
export interface ContenderState {
  redisRate?: number;
}

/** What every run of a scenario group shares. */
export interface GroupContext {
  /** Where HAProxy listens in this group (the open-loop rates are shares of its maximum). */
  baselinePort: number | null;
  /** HAProxy's closed-loop rate through http-load, measured once per group; req/s. */
  maxRate?: number;
}

/** A figure beyond the common columns, read from LoadResult.extra. */
export interface Extra {
  key: string;
  label: string;
  format: 'us' | 'ms' | 'ratio' | 'number';
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
  tool: 'wrk' | 'redisBenchmark' | 'iperf3' | 'pgbench' | 'node';
  run(
    tools: Tools,
    port: number,
    seconds: number,
    state: ContenderState,
    group: GroupContext,
  ): Promise<LoadResult>;
  /** More columns for its table. */
  extras?: Extra[];
  /** Latencies are also given as added over direct's, and GC pauses in the window beside them. */
  tail?: boolean;
  /** Only direct, HAProxy and switchyard run it: the newer scenarios, kept short. */
  core?: boolean;
  /** What its clients speak to the proxy; plain when left out. */
  frontend?: FrontendKind;
}

const TAIL_EXTRAS: Extra[] = [
  { key: 'p999Us', label: 'p99.9', format: 'us' },
  { key: 'maxUs', label: 'max', format: 'us' },
  { key: 'gcMaxMs', label: 'longest GC pause', format: 'ms' },
  { key: 'gcCount', label: 'GC pauses', format: 'number' },
];

/** Clients of the keep-alive and churn scenarios. */
const SMALL_CONNECTIONS = 50;
/** pgbench clients (one connection each). */
const PG_CLIENTS = 10;
/** Clients of the all-cores scenario. */
const CORES_CONNECTIONS = 100;
/** Clients of the 1 MiB scenario. */
const BULK_CONNECTIONS = 8;
const REDIS_CONNECTIONS = 50;
const REDIS_PIPELINE = 16;
/** SET and GET requests of a calibration run: well under a second through any proxy here. */
const REDIS_CALIBRATION = 100_000;

/** Clients of the PROXY protocol and TLS keep-alive scenarios, and concurrent handshakes. */
const PP_CONNECTIONS = 50;

/**
 * The PROXY protocol pair: the same client (http-load, closed loop, keep-alive) against the same
 * origin, without and with a v2 header on each connection, so that the cost of the header on
 * both sides (parse it from the client, send one to the server) is the only difference.
 */
const PROXY_SCENARIOS: Scenario[] = (['pp-plain', 'pp-v2'] as const).map(
  (id): Scenario => ({
    id,
    title:
      id === 'pp-plain'
        ? 'small requests, plain (the PROXY protocol pair)'
        : 'small requests through a PROXY protocol frontend',
    how:
      `http-load closed loop, ${PP_CONNECTIONS} keep-alive connections, GET of 12 bytes` +
      (id === 'pp-v2'
        ? '; each connection begins with a PROXY v2 header (HAProxy `accept-proxy`, switchyard ' +
          '`proxyProtocol: {accept: v2}`), and the proxy sends one on to an nginx port with ' +
          '`proxy_protocol` (`send-proxy-v2`, `sendProxy: v2`)'
        : ', no header: the baseline of pp-v2, same client'),
    backend: 'proxy',
    unit: 'request',
    tool: 'node',
    core: true,
    frontend: id === 'pp-v2' ? 'proxy-v2' : 'plain',
    run: (_tools, port, seconds) =>
      runHttpLoad({
        port,
        path: '/small',
        connections: PP_CONNECTIONS,
        seconds,
        rate: 0,
        proxyV2: id === 'pp-v2',
      }),
  }),
);

/** The server name the SNI clients ask for, the proxies route and the origin's certificate has. */
export const SNI_NAME = 'localhost';

/**
 * The SNI passthrough pair (issue 13): the same client, a new TLS connection per request with
 * the server name `localhost`, made end to end with the origin's TLS port; the proxies never
 * decrypt. In `sni-plain` they forward plain TCP; in `sni-route` they read the ClientHello and
 * route by its server name. sni-route over sni-plain is what routing costs a proxy, and
 * switchyard's sni-route over HAProxy's sni-plain is the target.
 */
const SNI_SCENARIOS: Scenario[] = (['sni-plain', 'sni-route'] as const).map(
  (id): Scenario => ({
    id,
    title:
      id === 'sni-plain'
        ? 'TLS passthrough, plain TCP forwarding (the SNI pair)'
        : 'TLS passthrough, routed by SNI',
    how:
      `http-load closed loop, ${PP_CONNECTIONS} clients, each request on a new TLS connection ` +
      `(full ECDSA P-256 handshake, SNI \`${SNI_NAME}\`) made with the origin's TLS port through ` +
      'the proxy, which never decrypts, then a GET of 12 bytes with `Connection: close`' +
      (id === 'sni-route'
        ? '; the proxy reads the ClientHello and routes by its server name (HAProxy ' +
          '`req.ssl_sni` after `tcp-request inspect-delay`, switchyard `sni:`), its default ' +
          'backend a port where nothing listens'
        : '; the proxy forwards plain TCP without looking: the baseline of sni-route'),
    backend: 'sni',
    unit: 'connection',
    tool: 'node',
    core: true,
    frontend: id === 'sni-route' ? 'sni' : 'plain',
    run: (_tools, port, seconds) =>
      runHttpLoad({
        port,
        path: '/small',
        connections: PP_CONNECTIONS,
        seconds,
        rate: 0,
        tls: true,
        servername: SNI_NAME,
        newConnection: true,
      }),
  }),
);

/** A TLS handshake scenario: a new connection, never resumed, per request. */
function handshakeScenario(frontend: 'tls-ecdsa' | 'tls-rsa'): Scenario {
  const key = frontend === 'tls-ecdsa' ? 'ECDSA P-256' : 'RSA 2048';
  return {
    id: frontend === 'tls-ecdsa' ? 'tls-handshake-ecdsa' : 'tls-handshake-rsa',
    title: `TLS handshakes, ${key}`,
    how:
      `http-load closed loop, ${PP_CONNECTIONS} clients, each request on a new TLS connection ` +
      `(full handshake: the client offers no session) with a ${key} certificate, then a GET ` +
      'of 12 bytes with `Connection: close`; the proxy also opens a plain connection to the origin',
    backend: 'tls',
    unit: 'handshake',
    tool: 'node',
    core: true,
    frontend,
    run: (_tools, port, seconds) =>
      runHttpLoad({
        port,
        path: '/small',
        connections: PP_CONNECTIONS,
        seconds,
        rate: 0,
        tls: true,
        newConnection: true,
      }),
  };
}

/**
 * The TLS scenarios, in the order they run: the ECDSA ones first so the proxies restart once.
 * The keep-alive ones use wrk (which resumes sessions when it reconnects: harmless here, where it
 * connects once).
 */
const TLS_SCENARIOS: Scenario[] = [
  handshakeScenario('tls-ecdsa'),
  {
    id: 'tls-small',
    title: 'TLS small keep-alive requests',
    how: `wrk -t1 -c${PP_CONNECTIONS} over TLS (ECDSA P-256), GET of a 12-byte body, keep-alive`,
    backend: 'tls',
    unit: 'request',
    tool: 'wrk',
    core: true,
    frontend: 'tls-ecdsa',
    run: (tools, port, seconds) =>
      runWrk({
        wrk: tools.wrk ?? '',
        port,
        path: '/small',
        connections: PP_CONNECTIONS,
        seconds,
        close: false,
        https: true,
      }),
  },
  {
    id: 'tls-bulk',
    title: 'TLS 1 MiB transfers',
    how: `wrk -t1 -c${BULK_CONNECTIONS} over TLS (ECDSA P-256), GET of a 1 MiB body, keep-alive`,
    backend: 'tls',
    unit: 'MiB',
    tool: 'wrk',
    core: true,
    frontend: 'tls-ecdsa',
    run: (tools, port, seconds) =>
      runWrk({
        wrk: tools.wrk ?? '',
        port,
        path: '/bulk',
        connections: BULK_CONNECTIONS,
        seconds,
        close: false,
        https: true,
      }),
  },
  handshakeScenario('tls-rsa'),
];

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
  ...[25, 50, 75].map(
    (share): Scenario => ({
      id: `latency-${share}` as ScenarioId,
      title: `open-loop latency at ${share} % of HAProxy's maximum`,
      how:
        `http-load open loop, ${SMALL_CONNECTIONS} connections, GET of 12 bytes at ${share} % of ` +
        `the rate HAProxy reached closed-loop with the same client; latency from each request's ` +
        'scheduled time (coordinated omission corrected)',
      backend: 'origin',
      unit: 'request',
      tool: 'node',
      tail: true,
      core: true,
      extras: TAIL_EXTRAS,
      run: async (_tools, port, seconds, _state, group) =>
        runHttpLoad({
          port,
          path: '/small',
          connections: SMALL_CONNECTIONS,
          seconds,
          rate: ((await maxRate(group)) * share) / 100,
        }),
    }),
  ),
  ...[2000, 8000].map(
    (connections): Scenario => ({
      id: `conns-${connections}` as ScenarioId,
      title: `${connections.toLocaleString('en')} keep-alive connections`,
      how:
        `http-load closed loop, ${connections} connections opened first, GET of 12 bytes; ` +
        'fairness = mean requests of the slowest 1 % of connections / the median',
      backend: 'origin',
      unit: 'request',
      tool: 'node',
      core: true,
      extras: [
        { key: 'p999Us', label: 'p99.9', format: 'us' },
        { key: 'fairness', label: 'fairness', format: 'ratio' },
      ],
      run: (_tools, port, seconds) =>
        runHttpLoad({ port, path: '/small', connections, seconds, rate: 0 }),
    }),
  ),
  ...(['up', 'down'] as const).map(
    (direction): Scenario => ({
      id: `iperf3-${direction}`,
      title: `iperf3 ${direction === 'up' ? 'client to server' : 'server to client (-R)'}`,
      how: `iperf3 -c${direction === 'down' ? ' -R' : ''}, one stream, through the proxy`,
      backend: 'iperf',
      unit: 'GiB',
      tool: 'iperf3',
      core: true,
      extras: [{ key: 'gbps', label: 'Gbit/s', format: 'number' }],
      run: (tools, port, seconds) =>
        runIperf3(tools.iperf3 ?? '', port, seconds, direction === 'down'),
    }),
  ),
  {
    id: 'pgbench-select',
    title: 'pgbench select-only',
    how: `pgbench -b select-only -c ${PG_CLIENTS} -j 1 against PostgreSQL (fsync off)`,
    backend: 'postgres',
    unit: 'transaction',
    tool: 'pgbench',
    core: true,
    extras: [{ key: 'tps', label: 'TPS', format: 'number' }],
    run: (tools, port, seconds) =>
      runPgbench(tools.pgbench ?? '', port, seconds, 'select-only', PG_CLIENTS, false),
  },
  {
    id: 'pgbench-tpcb',
    title: 'pgbench TPC-B-like, a connection per transaction',
    how: `pgbench -b tpcb-like -C -c ${PG_CLIENTS} -j 1 against PostgreSQL (fsync off)`,
    backend: 'postgres',
    unit: 'transaction',
    tool: 'pgbench',
    core: true,
    extras: [{ key: 'tps', label: 'TPS', format: 'number' }],
    run: (tools, port, seconds) =>
      runPgbench(tools.pgbench ?? '', port, seconds, 'tpcb-like', PG_CLIENTS, true),
  },
  {
    id: 'cores',
    title: 'all cores: two threads or workers, unpinned',
    how:
      `http-load closed loop on both CPUs, ${CORES_CONNECTIONS} connections, GET of 12 bytes; ` +
      'HAProxy nbthread 2, switchyard --workers 2, neither pinned',
    backend: 'cores',
    unit: 'request',
    tool: 'node',
    core: true,
    run: (_tools, port, seconds) =>
      runHttpLoad({
        port,
        path: '/small',
        connections: CORES_CONNECTIONS,
        seconds,
        rate: 0,
        cpus: `${LOAD_CPU},${PROXY_CPU}`,
      }),
  },
  ...PROXY_SCENARIOS,
  ...TLS_SCENARIOS,
  ...SNI_SCENARIOS,
];

/** HAProxy's closed-loop rate with http-load, measured the first time a group asks. */
async function maxRate(group: GroupContext): Promise<number> {
  if (group.maxRate === undefined) {
    if (group.baselinePort === null) throw new Error('no HAProxy to take the rate from');
    const r = await runHttpLoad({
      port: group.baselinePort,
      path: '/small',
      connections: SMALL_CONNECTIONS,
      seconds: 2,
      rate: 0,
    });
    group.maxRate = r.requests / r.seconds;
  }
  return group.maxRate;
}

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
