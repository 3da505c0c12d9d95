// A small authoritative DNS server for the tests: UDP and TCP on one loopback port, answering
// A, AAAA and SRV questions from a table the test changes. Packets are encoded and decoded by
// `dns-packet` (a devDependency: switchyard itself has no DNS client, it uses node:dns).
// An answer longer than 512 bytes goes over UDP truncated (TC), as a real server's would, so the
// resolver asks again over TCP.
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import packet from 'dns-packet';

/** The records of one name. `ttl` (seconds) applies to all of them; default 1. */
export interface Records {
  A?: string[];
  AAAA?: string[];
  SRV?: { target: string; port: number; weight?: number; priority?: number }[];
  ttl?: number;
}

/**
 * How the server behaves: `answer` from the table; `silent` reads and never answers (a dead
 * nameserver behind a firewall); `garbage` answers bytes that are no DNS message; `servfail`
 * answers SERVFAIL; `slow` answers after `delayMs`.
 */
export type DnsMode = 'answer' | 'silent' | 'garbage' | 'servfail' | 'slow';

export interface DnsServer {
  port: number;
  /** `127.0.0.1:PORT`, for `resolvers`. */
  address: string;
  mode: DnsMode;
  delayMs: number;
  /** Questions received (UDP and TCP). */
  queries: number;
  /** Questions received over TCP. */
  tcpQueries: number;
  set(name: string, records: Records): void;
  delete(name: string): void;
  /** Stops both sockets (questions then get ICMP port unreachable, or nothing over TCP). */
  stop(): Promise<void>;
}

const UDP_MAX = 512;

/** Starts the server on 127.0.0.1 (UDP and TCP on the same port), stopped in t.after. */
export async function startDnsServer(t: TestContext): Promise<DnsServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      const server = await listen();
      t.after(() => server.stop());
      return server;
    } catch (err) {
      // The UDP port's TCP twin was taken by someone else: try another port.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 10) throw err;
    }
  }
}

async function listen(): Promise<DnsServer> {
  const table = new Map<string, Records>();
  let stopped = false; // a slow answer may come due after stop()
  const udp = dgram.createSocket('udp4');
  udp.on('error', () => {});
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  const port = udp.address().port;
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        server.tcpQueries++;
        respond(message, false, (reply) => {
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          if (!socket.destroyed) socket.write(framed);
        });
      }
    });
  });
  try {
    tcp.listen(port, '127.0.0.1');
    await once(tcp, 'listening');
  } catch (err) {
    udp.close();
    throw err;
  }
  udp.on('message', (message, from) => {
    respond(message, true, (reply) => {
      if (!stopped) udp.send(reply, from.port, from.address, () => {});
    });
  });

  const respond = (message: Buffer, overUdp: boolean, send: (reply: Buffer) => void) => {
    server.queries++;
    let query: packet.Packet;
    try {
      query = packet.decode(message);
    } catch {
      return;
    }
    const mode = server.mode;
    if (mode === 'silent') return;
    if (mode === 'garbage') {
      send(Buffer.from('this is no DNS message at all'));
      return;
    }
    const reply = () => {
      let out = encodeAnswer(query, mode === 'servfail' ? 2 : null, table);
      if (overUdp && out.length > UDP_MAX) out = encodeAnswer(query, null, table, true);
      send(out);
    };
    if (mode === 'slow') setTimeout(reply, server.delayMs);
    else reply();
  };

  const server: DnsServer = {
    port,
    address: `127.0.0.1:${port}`,
    mode: 'answer',
    delayMs: 0,
    queries: 0,
    tcpQueries: 0,
    set: (name, records) => {
      table.set(name.toLowerCase(), records);
    },
    delete: (name) => {
      table.delete(name.toLowerCase());
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => {
          try {
            udp.close(() => resolve());
          } catch {
            resolve(); // closed already
          }
        }),
      ]);
    },
  };
  return server;
}

/** The reply to `query`: `rcode` (2 = SERVFAIL) or the table's records (NXDOMAIN when none). */
function encodeAnswer(
  query: packet.Packet,
  rcode: number | null,
  table: Map<string, Records>,
  truncated = false,
): Buffer {
  const question = query.questions?.[0];
  const records = question ? table.get(question.name.toLowerCase()) : undefined;
  const answers: packet.Answer[] = [];
  if (question && records && rcode === null && !truncated) {
    const ttl = records.ttl ?? 1;
    const base = { name: question.name, ttl, class: 'IN' as const };
    if (question.type === 'A') {
      for (const a of records.A ?? []) answers.push({ ...base, type: 'A', data: a });
    } else if (question.type === 'AAAA') {
      for (const a of records.AAAA ?? []) answers.push({ ...base, type: 'AAAA', data: a });
    } else if (question.type === 'SRV') {
      for (const s of records.SRV ?? []) {
        answers.push({
          ...base,
          type: 'SRV',
          data: {
            target: s.target,
            port: s.port,
            weight: s.weight ?? 1,
            priority: s.priority ?? 0,
          },
        });
      }
    }
  }
  // NXDOMAIN (3) for a name not in the table; NOERROR with no answer for a missing type.
  const code = rcode ?? (records ? 0 : 3);
  return packet.encode({
    id: query.id ?? 0,
    type: 'response',
    flags:
      packet.AUTHORITATIVE_ANSWER |
      packet.RECURSION_DESIRED |
      (truncated ? packet.TRUNCATED_RESPONSE : 0) |
      code,
    questions: query.questions ?? [],
    answers,
  });
}
