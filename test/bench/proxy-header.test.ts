// The bench client's PROXY v2 header, parsed by an independent implementation (proxy-protocol-js)
// and checked byte by byte against the layout in HAProxy's doc/proxy-protocol.txt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pp from 'proxy-protocol-js';
import { proxyV2Header, V2_SIGNATURE } from '../../bench/proxy-header.ts';

test('a v2 TCP4 header parses back to the same addresses and ports', () => {
  const header = proxyV2Header('127.0.0.5', 40123, '127.0.0.1', 8443);
  assert.equal(header.length, 28);
  const parsed = pp.V2ProxyProtocol.parse(header);
  assert.equal(parsed.command, pp.Command.PROXY);
  assert.equal(parsed.transportProtocol, pp.TransportProtocol.STREAM);
  const p = parsed.proxyAddress as InstanceType<typeof pp.IPv4ProxyAddress>;
  assert.deepEqual(p.sourceAddress.address, [127, 0, 0, 5]);
  assert.equal(p.sourcePort, 40123);
  assert.deepEqual(p.destinationAddress.address, [127, 0, 0, 1]);
  assert.equal(p.destinationPort, 8443);
});

test('the bytes follow the spec: signature, 0x21, 0x11, length 12, addresses, ports', () => {
  const header = proxyV2Header('10.1.2.3', 0x1234, '192.168.0.255', 0xabcd);
  assert.deepEqual(header.subarray(0, 12), V2_SIGNATURE);
  assert.deepEqual(
    [...header.subarray(12)],
    [0x21, 0x11, 0, 12, 10, 1, 2, 3, 192, 168, 0, 255, 0x12, 0x34, 0xab, 0xcd],
  );
});

test('an IPv4-mapped address is sent as IPv4', () => {
  const header = proxyV2Header('::ffff:127.0.0.1', 1, '127.0.0.1', 2);
  assert.deepEqual([...header.subarray(16, 20)], [127, 0, 0, 1]);
});

test('IPv6 or a bad port is refused rather than sent wrong', () => {
  assert.throws(() => proxyV2Header('::1', 1, '127.0.0.1', 2), /not an IPv4 address/);
  assert.throws(() => proxyV2Header('127.0.0.1', 70000, '127.0.0.1', 2), /not a port/);
});
