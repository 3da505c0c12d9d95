// The ClientHello reader (pure): real ClientHellos from node:tls, in any split, and hostile input.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { ClientHelloReader, matchSni, parseClientHello } from '../../src/core/client-hello.ts';

/** The first bytes node:tls sends to a plain server: a real ClientHello. */
async function captureHello(servername?: string): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = once(server, 'connection').then(async (args) => {
    const socket = args[0] as net.Socket;
    const [chunk] = await once(socket, 'data');
    socket.destroy();
    return chunk as Buffer;
  });
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    ...(servername ? { servername } : {}),
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

const MAX = 16 * 1024;

test('a whole ClientHello: its SNI (lower case), or null without one', async () => {
  const hello = await captureHello('API.Example.com');
  assert.deepEqual(parseClientHello(hello, hello.length), {
    status: 'done',
    sni: 'api.example.com',
  });
  const none = await captureHello();
  assert.deepEqual(parseClientHello(none, none.length), { status: 'done', sni: null });
});

test('in 1-byte pieces, and split at every point: more, then done with the same bytes', async () => {
  const hello = await captureHello('a.example.com');
  const reader = new ClientHelloReader(MAX);
  for (let i = 0; i < hello.length; i++) {
    const r = reader.push(hello.subarray(i, i + 1), 1);
    assert.equal(r.status, i === hello.length - 1 ? 'done' : 'more', `at byte ${i}`);
  }
  assert.ok(reader.bytes.subarray(0, reader.length).equals(hello), 'kept unchanged');
  for (let cut = 1; cut < hello.length; cut++) {
    const r = new ClientHelloReader(MAX);
    assert.equal(r.push(hello.subarray(0, cut), cut).status, 'more');
    const rest = hello.subarray(cut);
    assert.deepEqual(r.push(rest, rest.length), { status: 'done', sni: 'a.example.com' });
  }
});

test('a ClientHello spread over several records is reassembled', async () => {
  const hello = await captureHello('split.example.com');
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  for (let i = 0; i < message.length; i += 50) {
    const part = message.subarray(i, i + 50);
    const header = Buffer.from([22, 3, 1, 0, 0]);
    header.writeUInt16BE(part.length, 3);
    records.push(header, part);
  }
  const all = Buffer.concat(records);
  assert.deepEqual(parseClientHello(all, all.length), { status: 'done', sni: 'split.example.com' });
});

test('not TLS, another handshake message, a bad record, or too large: invalid', async () => {
  const http = Buffer.from('GET / HTTP/1.1\r\n');
  assert.equal(new ClientHelloReader(MAX).push(http, 1).status, 'invalid', 'from its first byte');
  const serverHello = Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]);
  assert.equal(parseClientHello(serverHello, serverHello.length).status, 'invalid');
  const empty = Buffer.from([22, 3, 1, 0, 0]);
  assert.equal(parseClientHello(empty, empty.length).status, 'invalid');
  const hello = await captureHello('a.example.com');
  const small = new ClientHelloReader(hello.length - 1);
  assert.deepEqual(small.push(hello, hello.length), {
    status: 'invalid',
    reason: `no ClientHello within ${hello.length - 1} bytes`,
  });
  // A handshake header promising 16 MiB: more until the bound, then invalid.
  const huge = Buffer.from([22, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff]);
  const r = new ClientHelloReader(MAX);
  assert.equal(r.push(huge, huge.length).status, 'more');
  const filler = Buffer.alloc(MAX);
  assert.equal(r.push(filler, filler.length).status, 'invalid');
});

test('random bytes and mutated ClientHellos never throw (10,000 cases each)', async () => {
  const hello = await captureHello('fuzz.example.com');
  for (let i = 0; i < 10_000; i++) {
    const junk = randomBytes(1 + Math.floor(Math.random() * 600));
    if (i % 2 === 0) junk[0] = 22; // get past the first check half the time
    if (i % 4 === 0) junk[1] = 3;
    const r = new ClientHelloReader(MAX);
    for (let p = 0; p < junk.length; p += 1 + Math.floor(Math.random() * 64)) {
      const piece = junk.subarray(p, p + 1 + Math.floor(Math.random() * 64));
      if (r.push(piece, piece.length).status !== 'more') break;
    }
    const mutated = Buffer.from(hello);
    for (let k = 0; k < 1 + (i % 4); k++) {
      mutated[Math.floor(Math.random() * mutated.length)] = Math.floor(Math.random() * 256);
    }
    const result = parseClientHello(mutated, Math.floor(Math.random() * (mutated.length + 1)));
    assert.ok(['more', 'done', 'invalid'].includes(result.status));
  }
});

test('matchSni: exact, then one-label wildcard, in rule order; no SNI or no match: null', () => {
  const rules = [
    { match: 'a.example.com', backend: 'pool_a' },
    { match: '*.b.example.com', backend: 'pool_b' },
  ];
  assert.equal(matchSni(rules, 'a.example.com'), 'pool_a');
  assert.equal(matchSni(rules, 'x.b.example.com'), 'pool_b');
  assert.equal(matchSni(rules, 'x.y.b.example.com'), null, 'a wildcard covers one label');
  assert.equal(matchSni(rules, 'b.example.com'), null);
  assert.equal(matchSni(rules, null), null);
  // An exact rule wins over a wildcard listed before it.
  const overlapping = [
    { match: '*.example.com', backend: 'wild' },
    { match: 'a.example.com', backend: 'exact' },
  ];
  assert.equal(matchSni(overlapping, 'a.example.com'), 'exact');
  assert.equal(matchSni(overlapping, 'c.example.com'), 'wild');
  assert.equal(matchSni(overlapping, 'localhost'), null, 'one label: no wildcard applies');
});
