// Headers for PROXY protocol tests: a few builders (on proxy-protocol-js) and the corpus of bad
// headers the parser must refuse, shared by the parser test and the real-socket tests.
import pp from 'proxy-protocol-js';
import type { ProxyAccept } from '../../src/core/proxy-protocol.ts';

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
