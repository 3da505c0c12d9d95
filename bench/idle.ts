/**
 * The cost of connections that do nothing: resident memory per idle proxied connection, and the
 * CPU a proxy burns while holding them.
 *
 * Each client sends one byte, so every proxy has opened its backend leg (node-tcp-proxy only
 * connects on the first byte) and has forwarded something, as a real idle connection would have.
 */
import net from 'node:net';
import type { Sink } from './backends.ts';
import type { ListeningProxy } from './contenders.ts';
import { treeCpuSeconds, treeRssBytes, treeRuntimeSeconds } from './measure.ts';
import { isAlive, lastLine, sleep } from './proc.ts';

/** What one idle measurement found. */
export interface IdleSample {
  connections: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerConnectionBytes: number;
  /** CPU of the proxy tree over the idle window, as a percentage of one CPU. */
  idleCpuPercent: number;
  /** Whether idleCpuPercent came from the scheduler's nanosecond counters, or clock ticks. */
  precise: boolean;
}

export interface IdleOptions {
  connections: number;
  idleSeconds: number;
}

/** Connections opened at once: within every listener's backlog (4096 or more here). */
const BATCH = 250;
/** Time for the proxy to settle (finish accepts, let its allocator and GC go quiet). */
const SETTLE_MS = 1500;
/** Longest a batch of connections may take to reach the sink. */
const BATCH_TIMEOUT_MS = 20_000;

/** Measures one started proxy in front of `sink`. Closes its client connections before return. */
export async function measureIdle(
  running: ListeningProxy,
  sink: Sink,
  o: IdleOptions,
): Promise<IdleSample> {
  const child = running.child;
  if (!child) throw new Error('no proxy');
  const clients: net.Socket[] = [];
  try {
    // Warm-up: the first connections make a proxy allocate what it allocates once (pools,
    // code paths compiled by a JIT), which is not a per-connection cost.
    await openBatch(running.port, 100, clients, sink);
    closeAll(clients);
    await waitFor(() => sink.connections() === 0, BATCH_TIMEOUT_MS, 'warm-up connections to close');
    await sleep(SETTLE_MS);
    const rssBeforeBytes = treeRssBytes(child.pid);

    while (clients.length < o.connections) {
      await openBatch(running.port, Math.min(BATCH, o.connections - clients.length), clients, sink);
      if (!isAlive(child)) throw new Error(`proxy exited: ${lastLine(child.tail())}`);
    }
    await sleep(SETTLE_MS);
    const rssAfterBytes = treeRssBytes(child.pid);

    const precise = treeRuntimeSeconds(child.pid) !== null;
    const cpu = () => (precise ? (treeRuntimeSeconds(child.pid) ?? 0) : treeCpuSeconds(child.pid));
    const before = cpu();
    const started = performance.now();
    await sleep(o.idleSeconds * 1000);
    const idleCpuPercent = ((cpu() - before) / ((performance.now() - started) / 1000)) * 100;
    if (sink.connections() < o.connections) {
      throw new Error(`only ${sink.connections()} of ${o.connections} connections stayed open`);
    }
    return {
      connections: o.connections,
      rssBeforeBytes,
      rssAfterBytes,
      rssPerConnectionBytes: (rssAfterBytes - rssBeforeBytes) / o.connections,
      idleCpuPercent,
      precise,
    };
  } finally {
    closeAll(clients);
    await waitFor(() => sink.connections() === 0, BATCH_TIMEOUT_MS, 'connections to close').catch(
      () => {},
    );
  }
}

/** Opens `count` clients that each send one byte, and waits until the sink holds them all. */
async function openBatch(port: number, count: number, clients: net.Socket[], sink: Sink) {
  const target = sink.connections() + count;
  const bytesTarget = sink.bytes() + count;
  const connects: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    clients.push(socket);
    connects.push(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => {
          socket.write('x');
          resolve();
        });
        socket.once('error', reject);
      }),
    );
    // After connect, an error (the proxy dropping us) must not become an uncaught exception.
    socket.on('error', () => {});
  }
  await Promise.all(connects);
  await waitFor(
    () => sink.connections() >= target && sink.bytes() >= bytesTarget,
    BATCH_TIMEOUT_MS,
    () => `${target} connections at the backend (it has ${sink.connections()})`,
  );
}

function closeAll(clients: net.Socket[]) {
  for (const c of clients.splice(0)) c.destroy();
}

async function waitFor(done: () => boolean, timeoutMs: number, what: string | (() => string)) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await sleep(20);
  }
}
