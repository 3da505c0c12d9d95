// Addresses and CIDR sets: IPv4, IPv6, IPv4-mapped IPv6, and refused blocks.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { CidrSet, formatIPv6, parseCidr, parseIpInto, sourceKey } from '../src/cidr.ts';

const bytes = (text: string) => {
  const out = new Uint8Array(16);
  assert.ok(parseIpInto(text, out), text);
  return out;
};

test('addresses parse like the runtime does, and format back as it prints them', () => {
  for (const text of [
    '::1',
    '::',
    '2001:db8::1',
    'fe80::1:2:3:4',
    '1:2:3:4:5:6:7:8',
    '::ffff:10.1.2.3',
    '2001:db8:0:0:1::1',
    '1::',
    '64:ff9b::192.0.2.33',
  ]) {
    const b = bytes(text);
    const round = formatIPv6(b);
    // node:net agrees it is the same address
    const list = new net.BlockList();
    list.addAddress(text, 'ipv6');
    assert.ok(list.check(round, 'ipv6'), `${text} -> ${round}`);
  }
  assert.equal(formatIPv6(bytes('2001:0db8:0000:0000:0000:0000:0000:0001')), '2001:db8::1');
  assert.equal(formatIPv6(bytes('1:0:0:2:0:0:0:3')), '1:0:0:2::3');
  for (const bad of [
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '256.1.1.1',
    '1::2::3',
    ':1',
    '1:',
    'g::1',
    '1:2:3:4:5:6:7:8:9',
    '',
    '::ffff:1.2.3',
  ]) {
    assert.equal(parseIpInto(bad, new Uint8Array(16)), false, bad);
  }
  assert.equal(sourceKey('::ffff:127.0.0.5'), '127.0.0.5');
  assert.equal(sourceKey('::1'), '::1');
});

test('a CIDR set matches IPv4, IPv6 and IPv4-mapped clients', () => {
  const set = CidrSet.of(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::ffff:172.16.0.0/108']);
  for (const yes of [
    '10.0.0.1',
    '10.255.255.255',
    '::ffff:10.2.3.4',
    '192.168.1.7',
    '2001:db8:ffff::1',
    '172.16.3.4',
  ]) {
    assert.ok(set.has(bytes(yes)), yes);
  }
  for (const no of ['11.0.0.1', '192.168.1.8', '2001:db9::1', '::1', '172.32.0.1', '::a00:1']) {
    assert.equal(set.has(bytes(no)), false, no);
  }
  assert.ok(CidrSet.of(['0.0.0.0/0']).has(bytes('1.2.3.4')));
  assert.equal(CidrSet.of(['0.0.0.0/0']).has(bytes('::1')), false);
  assert.ok(CidrSet.of(['::/0']).has(bytes('1.2.3.4')));
});

test('bad blocks are refused with a reason', () => {
  assert.match(parseCidr('10.0.0.0/33') as string, /prefix/);
  assert.match(parseCidr('10.1.0.0/8') as string, /bits set past/);
  assert.match(parseCidr('10.0.0/8') as string, /not an IPv4 or IPv6/);
  assert.match(parseCidr('2001:db8::/129') as string, /prefix/);
  assert.match(parseCidr('10.0.0.0/') as string, /prefix/);
});
