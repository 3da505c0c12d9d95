// For PROXY protocol tests: header builders (on proxy-protocol-js), the corpus of bad headers the
// parser must refuse, and a server that parses the header it is sent (with proxy-protocol-js).
import type { TestContext } from 'node:test';
import pp from 'proxy-protocol-js';
import type { ProxyAccept } from '../../src/core/proxy-protocol.ts';
import { startServer } from './servers.ts';

/** A v2 PROXY TCP4 header from proxy-protocol-js, with `data` after it. */
export function v2(src: number[], sport: number, dst: number[], dport: number, data?: Uint8Array) {
  return new pp.V2ProxyProtocol(
    pp.Command.PROXY,
    pp.TransportProtocol.STREAM,
    new pp.IPv4ProxyAddress(
      pp.IPv4Address.createFrom(src),
      sport,
      pp.IPv4Address.createFrom(dst),
      dport,
    ),
    data,
  ).build();
}

/** A v2 TCP4 header with `tlvs` appended to the address block (length counts them). */
export function v2WithTlvs(tlvs: Buffer, lengthAdjust = 0): Buffer {
  const head = Buffer.from(v2([192, 0, 2, 1], 1000, [192, 0, 2, 2], 443));
  const len = 12 + tlvs.length + lengthAdjust;
  head[14] = len >> 8;
  head[15] = len & 0xff;
  return Buffer.concat([head, tlvs]);
}

export function tlv(type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);
}

/** Bad headers: each fails (at the byte where it becomes bad), or waits (truncated). */
export const BAD_HEADERS: { name: string; bytes: Buffer; accept?: ProxyAccept; waits?: boolean }[] =
  [
    { name: 'plain HTTP', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
    {
      name: 'v1 to a v2-only frontend',
      bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'),
      accept: 'v2',
    },
    {
      name: 'v2 to a v1-only frontend',
      bytes: Buffer.from(v2([1, 2, 3, 4], 1, [5, 6, 7, 8], 2)),
      accept: 'v1',
    },
    { name: 'v1 invalid address', bytes: Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n') },
    { name: 'v1 IPv6 address as TCP4', bytes: Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 2\r\n') },
    { name: 'v1 port 65536', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n') },
    { name: 'v1 without CR', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n') },
    { name: 'v1 longer than 107 bytes', bytes: Buffer.from(`PROXY TCP6 ${'a'.repeat(120)}\r\n`) },
    { name: 'v1 double space', bytes: Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n') },
    {
      name: 'v2 length 65,000',
      bytes: (() => {
        const b = Buffer.from(v2([1, 2, 3, 4], 1, [5, 6, 7, 8], 2));
        b.writeUInt16BE(65000, 14);
        return b;
      })(),
    },
    {
      name: 'v2 address block shorter than its family',
      bytes: (() => {
        const b = Buffer.from(v2([1, 2, 3, 4], 1, [5, 6, 7, 8], 2));
        b.writeUInt16BE(8, 14);
        return b.subarray(0, 24);
      })(),
    },
    {
      name: 'v2 version 3',
      bytes: Buffer.from([...Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), 0x31, 0x11, 0, 0]),
    },
    {
      name: 'v2 command 2',
      bytes: Buffer.from([...Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), 0x22, 0x11, 0, 0]),
    },
    {
      name: 'v2 family 0x41',
      bytes: Buffer.from([...Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), 0x21, 0x41, 0, 0]),
    },
    { name: 'v2 TLV overrun', bytes: v2WithTlvs(Buffer.from([0x01, 0x00, 0x10, 0x68, 0x32])) },
    { name: 'v2 TLV header cut', bytes: v2WithTlvs(Buffer.from([0x01, 0x00])) },
    {
      name: 'v2 SSL sub-TLV overrun',
      bytes: v2WithTlvs(tlv(0x20, Buffer.from([1, 0, 0, 0, 0, 0x21, 0, 9, 0x41]))),
    },
    { name: 'truncated v2 signature', bytes: Buffer.from('\r\n\r\n\0\r\n', 'latin1'), waits: true },
    { name: 'truncated v1', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1'), waits: true },
  ];

/** A server expecting a v1 header (sendProxy: v1): records the header and echoes the rest. */
export async function startHeaderServer(t: TestContext, version: 'v1' | 'v2' = 'v1') {
  const seen: { header: string; source: string; sourcePort: number; payload: string }[] = [];
  const s = await startServer(t, (socket) => {
    let buf = Buffer.alloc(0);
    let entry: (typeof seen)[number] | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (entry !== null) {
        entry.payload += chunk.toString('latin1');
        socket.write(chunk);
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      let length = 0;
      if (version === 'v1') {
        const lf = buf.indexOf('\r\n');
        if (lf < 0) return;
        length = lf + 2;
        const parsed = pp.V1ProxyProtocol.parse(buf.subarray(0, length).toString('latin1'));
        entry = {
          header: 'v1',
          source: parsed.source.ipAddress,
          sourcePort: parsed.source.port,
          payload: '',
        };
      } else {
        if (buf.length < 16) return;
        length = 16 + buf.readUInt16BE(14);
        if (buf.length < length) return;
        const parsed = pp.V2ProxyProtocol.parse(buf.subarray(0, length));
        const a = parsed.proxyAddress as InstanceType<typeof pp.IPv4ProxyAddress>;
        entry = {
          header: parsed.command === pp.Command.LOCAL ? 'v2 local' : 'v2',
          source: parsed.command === pp.Command.LOCAL ? '' : [...a.sourceAddress.address].join('.'),
          sourcePort: parsed.command === pp.Command.LOCAL ? 0 : a.sourcePort,
          payload: '',
        };
      }
      seen.push(entry);
      const rest = buf.subarray(length);
      if (rest.length > 0) {
        entry.payload += rest.toString('latin1');
        socket.write(rest);
      }
    });
    socket.on('end', () => socket.end());
  });
  return { ...s, seen };
}
