// Client-side helpers for real-socket tests: connect, read, wait, hash, run in parallel.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';

/** Connects to 127.0.0.1:port with half-open allowed; resolves once connected. */
export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads a socket to its end; resolves with everything it sent. */
export async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

/**
 * Resolves once the proxy has closed its end of `socket` (FIN or RST seen, or the socket closed),
 * or rejects after `ms`. Test clients allow half-open, so FIN alone does not close them.
 */
export function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  if (socket.readableEnded || socket.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.once('end', done);
    socket.once('close', done);
    socket.once('error', done);
    socket.resume();
  });
}

/** Polls `check` every 20 ms until it is true, or throws after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Runs `n` calls of `one`, `concurrency` at a time; resolves with every result in order. */
export async function inParallel<T>(
  n: number,
  concurrency: number,
  one: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      results[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

/** How many times each value occurs. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens a connection and waits for the server's first bytes (a NamedServer's name); it stays open. */
export async function holdOpen(port: number): Promise<{ socket: net.Socket; name: string }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  const [data] = await once(socket, 'data');
  return { socket, name: String(data) };
}
