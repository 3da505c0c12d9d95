/**
 * An HTTP/1.1 keep-alive load client for what wrk cannot measure: a fixed request rate (open
 * loop) and per-connection request counts (fairness). Run as its own process, pinned to the load
 * CPU, by load.ts; prints one line `HTTP_LOAD_JSON {...}`.
 *
 *   node bench/http-load.ts open   PORT PATH CONNECTIONS SECONDS RATE
 *   node bench/http-load.ts closed PORT PATH CONNECTIONS SECONDS
 *
 * Flags after the positional arguments:
 *   --tls             speak TLS to the proxy (no certificate check, no session resumption:
 *                     every connection is a full handshake)
 *   --servername=NAME with --tls: the server name the ClientHello carries (SNI); left out, none
 *                     (the client connects to an address, and an address is no server name)
 *   --proxy-v2        send a PROXY protocol v2 header (proxy-header.ts) before the first request
 *                     of each connection, in the same write
 *   --new-connection  closed loop only: every request on a new connection (`Connection: close`);
 *                     its latency counts from the connect, handshake included
 *
 * open: requests are due at fixed times (RATE per second over the run); each is sent on a free
 * connection at or after its due time, and its latency is counted from the due time, not from
 * when it was sent. A stalled proxy therefore shows as the latency of every request that should
 * have gone out meanwhile (coordinated omission corrected, as wrk2 does). Due requests are sent
 * from a 1 ms timer, so up to ~1 ms of the client's own lag is in every number, direct included:
 * compare the latency added over direct, not absolute values.
 *
 * closed: every connection sends its next request as soon as the previous answer is in. All
 * connections are opened first (a connect storm is not what this measures); the counts of
 * requests per connection over the window give the fairness figure.
 */
import net from 'node:net';
import tls from 'node:tls';
import { TLS_GROUP } from './certs.ts';
import { proxyV2Header } from './proxy-header.ts';

interface Conn {
  socket: net.Socket;
  /** The PROXY header still to send before the next request (the first one of a connection). */
  preamble: Buffer | null;
  index: number;
  /** Due time (ms, performance.now) of the request in flight; -1 when free. */
  due: number;
  /** Bytes of the current answer still expected after its headers; -1 while reading headers. */
  bodyLeft: number;
  head: string;
  done: number;
}

const FLAGS = ['--tls', '--proxy-v2', '--new-connection', '--servername'];
const argv = process.argv.slice(2);
/** Each flag with its value (`--servername=localhost`), or '' for a flag without one. */
const flagValues = new Map(
  argv
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const eq = a.indexOf('=');
      return eq < 0 ? [a, ''] : [a.slice(0, eq), a.slice(eq + 1)];
    }),
);
const flags = new Set(flagValues.keys());
const unknownFlag = [...flags].find((f) => !FLAGS.includes(f));
if (unknownFlag) throw new Error(`http-load: unknown flag ${unknownFlag}`);
const [mode, portArg, path, connsArg, secondsArg, rateArg] = argv.filter(
  (a) => !a.startsWith('--'),
);
const useTls = flags.has('--tls');
const proxyV2 = flags.has('--proxy-v2');
const newConnection = flags.has('--new-connection');
const servername = flagValues.get('--servername') || undefined;
if (servername !== undefined && !useTls) throw new Error('http-load: --servername needs --tls');
if (newConnection && mode !== 'closed')
  throw new Error('http-load: --new-connection is closed loop');
const port = Number(portArg);
const connections = Number(connsArg);
const seconds = Number(secondsArg);
const rate = Number(rateArg ?? 0);
const request = Buffer.from(
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${newConnection ? 'Connection: close\r\n' : ''}\r\n`,
);

const latencies: number[] = [];
let errors = 0;
let measuring = false;
const free: Conn[] = [];
let backlog: number[] = [];
let backlogHead = 0;

function send(c: Conn, due: number): void {
  c.due = due;
  c.bodyLeft = -1;
  c.head = '';
  if (c.preamble) {
    // Header and request in one write, as a balancer in front would send them.
    c.socket.write(Buffer.concat([c.preamble, request]));
    c.preamble = null;
  } else {
    c.socket.write(request);
  }
}

function answered(c: Conn): void {
  const now = performance.now();
  if (measuring) {
    latencies.push(now - c.due);
    c.done++;
  }
  c.due = -1;
  if (newConnection) {
    // The next request's clock starts before its connect: the handshake is part of its latency.
    c.socket.destroy();
    dial(c).then(
      () => send(c, now),
      () => {
        if (measuring) errors++;
      },
    );
    return;
  }
  if (mode === 'closed') {
    send(c, now);
    return;
  }
  if (backlogHead < backlog.length) send(c, backlog[backlogHead++] as number);
  else free.push(c);
}

function onData(c: Conn, chunk: Buffer): void {
  let at = 0;
  while (at < chunk.length) {
    if (c.bodyLeft < 0) {
      c.head += chunk.toString('latin1', at);
      const end = c.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length:\s*(\d+)/i.exec(c.head.slice(0, end));
      const headBytes = end + 4;
      const consumed = chunk.length - at - (c.head.length - headBytes);
      at += consumed;
      c.head = '';
      c.bodyLeft = Number(m?.[1] ?? 0);
    }
    const take = Math.min(c.bodyLeft, chunk.length - at);
    c.bodyLeft -= take;
    at += take;
    if (c.bodyLeft === 0) {
      c.bodyLeft = -1;
      answered(c);
    }
  }
}

function open(index: number): Promise<Conn> {
  const c: Conn = {
    socket: null as unknown as net.Socket,
    preamble: null,
    index,
    due: -1,
    bodyLeft: -1,
    head: '',
    done: 0,
  };
  return dial(c).then(() => c);
}

/** Connects c.socket afresh (TLS with --tls); resolves once it is ready for a request. */
function dial(c: Conn): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = useTls
      ? tls
          .connect({
            port,
            host: '127.0.0.1',
            servername,
            rejectUnauthorized: false,
            ecdhCurve: TLS_GROUP,
          })
          .setNoDelay(true)
      : net.connect({ port, host: '127.0.0.1', noDelay: true });
    c.socket = socket;
    c.bodyLeft = -1;
    c.head = '';
    socket.once(useTls ? 'secureConnect' : 'connect', () => {
      c.preamble = proxyV2
        ? proxyV2Header(
            socket.localAddress ?? '',
            socket.localPort ?? 0,
            socket.remoteAddress ?? '',
            socket.remotePort ?? 0,
          )
        : null;
      resolve();
    });
    socket.once('error', reject);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    socket.on('close', () => {
      // A lost connection, except that with --new-connection closing after the answer (when
      // c.socket is already the next one) is the plan.
      if (measuring && c.socket === socket && (!newConnection || c.due >= 0)) errors++;
    });
  });
}

async function openAll(): Promise<Conn[]> {
  const conns: Conn[] = [];
  // At most 200 connects in flight: the listener's backlog is not what this measures.
  for (let i = 0; i < connections; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(connections, i + 200); j++) batch.push(open(j));
    conns.push(...(await Promise.all(batch)));
  }
  return conns;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function main(): Promise<void> {
  const conns = await openAll();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let start = 0;
  if (mode === 'closed') {
    // Warm every connection with one request, then count from a common start.
    for (const c of conns) send(c, performance.now());
    await sleep(500);
    start = performance.now();
    measuring = true;
    await sleep(seconds * 1000);
    measuring = false;
  } else {
    free.push(...conns);
    start = performance.now();
    measuring = true;
    const total = Math.round(rate * seconds);
    const interval = 1000 / rate;
    let next = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        // Every request due by now goes out, on a free connection or into the backlog.
        while (next < total && start + next * interval <= now) {
          const due = start + next * interval;
          next++;
          const c = free.pop();
          if (c) send(c, due);
          else backlog.push(due);
        }
        if (backlogHead > 4096) {
          backlog = backlog.slice(backlogHead);
          backlogHead = 0;
        }
        if (next < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    // The last requests get up to 2 s to be answered; those still out count as errors.
    const deadline = performance.now() + 2000;
    while (free.length < conns.length && performance.now() < deadline) await sleep(5);
    errors += conns.length - free.length + (backlog.length - backlogHead);
    measuring = false;
  }
  const wall = (performance.now() - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const counts = Float64Array.from(conns.map((c) => c.done)).sort();
  const ms = (v: number) => Math.round(v * 1000);
  const out = {
    requests: latencies.length,
    seconds: mode === 'closed' ? seconds : wall,
    p50_us: ms(percentile(sorted, 0.5)),
    p99_us: ms(percentile(sorted, 0.99)),
    p999_us: ms(percentile(sorted, 0.999)),
    max_us: ms(sorted.length ? (sorted[sorted.length - 1] as number) : 0),
    errors,
    // Fairness: the mean count of the slowest 1 % of connections over the median count.
    slowest1pct: mean(counts.subarray(0, Math.max(1, Math.floor(counts.length / 100)))),
    median_count: percentile(counts, 0.5),
  };
  console.log(`HTTP_LOAD_JSON ${JSON.stringify(out)}`);
  for (const c of conns) c.socket.destroy();
}

function mean(xs: Float64Array): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length ? s / xs.length : 0;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`http-load: ${(err as Error).message}`);
    process.exit(1);
  },
);
