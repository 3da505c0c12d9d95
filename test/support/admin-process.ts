// The admin server of a proxy in a child process (test/fixtures/admin-process.ts) with its log
// lines, and raw HTTP/1.1 over a socket: what fetch will not send (a foreign Host, `GET //[`).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { ROOT, runtimeFor } from './proc.ts';

export interface AdminProcess {
  /** The admin server's port (on 127.0.0.1). */
  admin: number;
  /** Every log line so far, parsed (a line that is not JSON as { msg }). */
  logs: Record<string, unknown>[];
}

/** Starts the fixture with `admin` as the config's admin section on `engine`; killed in t.after. */
export async function startAdminProcess(
  t: TestContext,
  admin: Record<string, unknown>,
  engine: 'node' | 'bun',
): Promise<AdminProcess> {
  const child = spawn(
    runtimeFor(engine),
    [`${ROOT}test/fixtures/admin-process.ts`, JSON.stringify(admin)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  t.after(() => {
    child.kill('SIGKILL');
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    try {
      logs.push(JSON.parse(l));
    } catch {
      logs.push({ msg: l });
    }
  });
  const [first] = (await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`admin process exited with ${code}: ${JSON.stringify(logs)}`);
    }),
  ])) as [string];
  return { admin: (JSON.parse(first) as { admin: number }).admin, logs };
}

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `head` (a request line and headers, without the blank line) with `Connection: close` to
 * 127.0.0.1:port and resolves with the response once the server closes.
 */
export async function rawRequest(port: number, head: string): Promise<RawResponse> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.end(`${head}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  return parseResponse(Buffer.concat(chunks).toString('latin1'));
}

/** The first response in `text`: status, headers, and the body after them. */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: text };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    body: text.slice(end + 4),
  };
}
