// The PROXY protocol parser and encoder, on bytes: headers built by an independent implementation
// (proxy-protocol-js) at every split, a corpus of bad headers, TLVs, and random input that never
// makes the parser throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pp from 'proxy-protocol-js';
import {
  encodeProxyHeader,
  FAILED,
  healthCheckHeader,
  NEED_MORE,
  type ProxyAccept,
  ProxyHeaderParser,
} from '../../src/core/proxy-protocol.ts';
import { BAD_HEADERS, tlv, v2, v2WithTlvs } from '../support/proxy-headers.ts';

const MAX = 4096;

/** Feeds `bytes` in pieces of `step` bytes into one growing buffer, as the preamble does. */
function feed(bytes: Uint8Array, step: number, accept: ProxyAccept = 'any') {
  const parser = new ProxyHeaderParser(accept, MAX);
  const buf = new Uint8Array(bytes.length + 1);
  let filled = 0;
  let result = NEED_MORE;
  while (filled < bytes.length && result === NEED_MORE) {
    const n = Math.min(step, bytes.length - filled);
    buf.set(bytes.subarray(filled, filled + n), filled);
    filled += n;
    result = parser.parse(buf, 0, filled);
  }
  return { parser, result };
}

test('v1 headers built by proxy-protocol-js parse at every split size', () => {
  const text = new pp.V1ProxyProtocol(
    pp.INETProtocol.TCP4,
    new pp.Peer('192.0.2.7', 51234),
    new pp.Peer('198.51.100.1', 443),
  ).build();
  const bytes = Buffer.from(`${text}GET / HTTP/1.0\r\n\r\n`, 'latin1');
  for (const step of [1, 2, 3, 7, 16, bytes.length]) {
    const { parser, result } = feed(bytes, step);
    assert.equal(result, text.length, `step ${step}`);
    assert.equal(parser.sourceAddress, '192.0.2.7');
    assert.equal(parser.sourcePort, 51234);
    assert.equal(parser.destinationAddress, '198.51.100.1');
    assert.equal(parser.destinationPort, 443);
    assert.equal(parser.hasAddresses, true);
  }
  const six = new pp.V1ProxyProtocol(
    pp.INETProtocol.TCP6,
    new pp.Peer('2001:db8::1', 1),
    new pp.Peer('::1', 65535),
  ).build();
  const { parser, result } = feed(Buffer.from(six, 'latin1'), 1);
  assert.equal(result, six.length);
  assert.equal(parser.sourceAddress, '2001:db8::1');
  assert.equal(parser.destinationPort, 65535);
});

test('v2 headers built by proxy-protocol-js parse at every split size; data after the header is left', () => {
  const payload = Buffer.from('hello');
  const bytes = v2([10, 1, 2, 3], 40000, [10, 9, 9, 9], 8443, payload);
  for (const step of [1, 5, 15, 16, 17, bytes.length]) {
    const { parser, result } = feed(bytes, step, 'v2');
    assert.equal(result, 28, `step ${step}`);
    assert.equal(parser.version, 2);
    assert.equal(parser.command, 'proxy');
    assert.equal(parser.sourceAddress, '10.1.2.3');
    assert.equal(parser.sourcePort, 40000);
    assert.equal(parser.destinationAddress, '10.9.9.9');
    assert.equal(parser.destinationPort, 8443);
  }
  const six = new pp.V2ProxyProtocol(
    pp.Command.PROXY,
    pp.TransportProtocol.STREAM,
    new pp.IPv6ProxyAddress(
      pp.IPv6Address.createFrom([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]),
      1234,
      pp.IPv6Address.createFrom([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]),
      80,
    ),
  ).build();
  const { parser, result } = feed(six, 1);
  assert.equal(result, 52);
  assert.equal(parser.sourceAddress, '2001:db8::5');
  assert.equal(parser.destinationAddress, '::ffff:10.0.0.1');
});

test('v2 LOCAL (an upstream health check) names no client: the TCP peer is used', () => {
  const local = new pp.V2ProxyProtocol(
    pp.Command.LOCAL,
    pp.TransportProtocol.UNSPEC,
    new pp.IPv4ProxyAddress(
      pp.IPv4Address.createFrom([1, 2, 3, 4]),
      1,
      pp.IPv4Address.createFrom([5, 6, 7, 8]),
      2,
    ),
  ).build();
  const { parser, result } = feed(local, 1);
  assert.equal(result, local.length);
  assert.equal(parser.command, 'local');
  assert.equal(parser.hasAddresses, false);
  const ours = healthCheckHeader('v2');
  const p2 = feed(ours, 1);
  assert.equal(p2.result, 16);
  assert.equal(p2.parser.command, 'local');
  assert.equal(feed(healthCheckHeader('v1'), 1).parser.hasAddresses, false);
});

test('our encoder: proxy-protocol-js parses what we send (v1 and v2, IPv4, mapped and IPv6)', () => {
  const out = new Uint8Array(128);
  let n = encodeProxyHeader('v1', out, '::ffff:127.0.0.5', 40001, '127.0.0.1', 8080);
  const v1 = pp.V1ProxyProtocol.parse(Buffer.from(out.subarray(0, n)).toString('latin1'));
  assert.equal(v1.inetProtocol, 'TCP4');
  assert.equal(v1.source.ipAddress, '127.0.0.5');
  assert.equal(v1.source.port, 40001);
  assert.equal(v1.destination.port, 8080);
  n = encodeProxyHeader('v2', out, '127.0.0.6', 40002, '127.0.0.1', 8081);
  const parsed = pp.V2ProxyProtocol.parse(out.subarray(0, n));
  const addr = parsed.proxyAddress as InstanceType<typeof pp.IPv4ProxyAddress>;
  assert.deepEqual([...addr.sourceAddress.address], [127, 0, 0, 6]);
  assert.equal(addr.sourcePort, 40002);
  assert.equal(addr.destinationPort, 8081);
  assert.equal(parsed.command, pp.Command.PROXY);
  n = encodeProxyHeader('v2', out, '2001:db8::9', 1, '2001:db8::1', 2);
  assert.equal(n, 52);
  const back = feed(out.subarray(0, n), 3);
  assert.equal(back.parser.sourceAddress, '2001:db8::9');
  n = encodeProxyHeader('v1', out, '2001:db8::9', 1, '2001:db8::1', 2);
  assert.equal(
    Buffer.from(out.subarray(0, n)).toString(),
    'PROXY TCP6 2001:db8::9 2001:db8::1 1 2\r\n',
  );
  n = encodeProxyHeader('v1', out, 'unix', 0, '', 0);
  assert.equal(Buffer.from(out.subarray(0, n)).toString(), 'PROXY UNKNOWN\r\n');
});

test('v2 TLVs: ALPN, authority, unique ID, SSL with sub-TLVs; NOOP and CRC32C skipped', () => {
  const ssl = Buffer.concat([
    Buffer.from([0x07, 0, 0, 0, 0]),
    tlv(0x21, Buffer.from('TLSv1.3')),
    tlv(0x22, Buffer.from('client.example')),
    tlv(0x23, Buffer.from('TLS_AES_128_GCM_SHA256')),
  ]);
  const tlvs = Buffer.concat([
    tlv(0x01, Buffer.from('h2')),
    tlv(0x02, Buffer.from('api.example.com')),
    tlv(0x04, Buffer.alloc(3)),
    tlv(0x05, Buffer.from('abc123')),
    tlv(0x03, Buffer.alloc(4)),
    tlv(0x20, ssl),
  ]);
  const bytes = v2WithTlvs(tlvs);
  for (const step of [1, 13, bytes.length]) {
    const { parser, result } = feed(bytes, step);
    assert.equal(result, bytes.length);
    assert.equal(parser.tlvs?.alpn, 'h2');
    assert.equal(parser.tlvs?.authority, 'api.example.com');
    assert.equal(parser.tlvs?.uniqueId?.toString(), 'abc123');
    assert.deepEqual(parser.tlvs?.ssl, {
      client: 7,
      verify: 0,
      version: 'TLSv1.3',
      cn: 'client.example',
      cipher: 'TLS_AES_128_GCM_SHA256',
    });
  }
});

test('bad headers fail (at any split), truncated ones wait for more', () => {
  for (const bad of BAD_HEADERS) {
    for (const step of [1, 4, bad.bytes.length]) {
      const { parser, result } = feed(bad.bytes, step, bad.accept ?? 'any');
      if (bad.waits) assert.equal(result, NEED_MORE, bad.name);
      else {
        assert.equal(result, FAILED, `${bad.name}: ${result}`);
        assert.notEqual(parser.error, '', bad.name);
      }
    }
  }
  // v2 length 65,000 fails as soon as the length is read (16 bytes), not after 65 KB.
  const big = BAD_HEADERS.find((b) => b.name === 'v2 length 65,000') as { bytes: Buffer };
  const parser = new ProxyHeaderParser('any', MAX);
  assert.equal(parser.parse(big.bytes, 0, 16), FAILED);
  assert.match(parser.error, /65016 bytes/);
  // Plain HTTP fails at the first byte.
  assert.equal(new ProxyHeaderParser('any', MAX).parse(Buffer.from('G'), 0, 1), FAILED);
});

test('random bytes at random split points never throw, and a result is stable', () => {
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const good = [
    Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'),
    Buffer.from(v2([1, 2, 3, 4], 1, [5, 6, 7, 8], 2)),
    v2WithTlvs(tlv(0x20, Buffer.from([1, 0, 0, 0, 0, 0x21, 0, 1, 0x41]))),
  ];
  for (let round = 0; round < 20_000; round++) {
    let bytes: Buffer;
    const kind = rnd();
    if (kind < 0.4) {
      // a good header with a few bytes flipped or cut
      const base = Buffer.from(good[Math.floor(rnd() * good.length)] as Buffer);
      const flips = Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++)
        base[Math.floor(rnd() * base.length)] = Math.floor(rnd() * 256);
      bytes = base.subarray(0, Math.floor(rnd() * (base.length + 1)));
    } else if (kind < 0.7) {
      // the v2 signature then random bytes (reaches the length and TLV code)
      bytes = Buffer.concat([
        Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'),
        Buffer.from(Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256))),
      ]);
      if (bytes.length > 15) bytes.writeUInt16BE(Math.floor(rnd() * 90), 14);
    } else {
      bytes = Buffer.from(
        Array.from({ length: Math.floor(rnd() * 120) }, () => Math.floor(rnd() * 256)),
      );
      if (rnd() < 0.5 && bytes.length > 6) bytes.write('PROXY ', 0, 'latin1');
    }
    const accept = (['v1', 'v2', 'any'] as const)[Math.floor(rnd() * 3)] as ProxyAccept;
    const parser = new ProxyHeaderParser(accept, 200);
    let filled = 0;
    let result = NEED_MORE;
    while (filled < bytes.length && result === NEED_MORE) {
      filled = Math.min(bytes.length, filled + 1 + Math.floor(rnd() * 20));
      result = parser.parse(bytes, 0, filled);
    }
    assert.ok(result === NEED_MORE || result === FAILED || (result > 0 && result <= filled));
    if (result === FAILED) assert.notEqual(parser.error, '');
    // Asking again gives the same answer.
    if (result === FAILED) assert.equal(parser.parse(bytes, 0, filled), FAILED);
  }
});
