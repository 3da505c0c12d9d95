// The ClientHello reader as the proxy runs it: parseClientHello (pure) on whole inputs, and the
// ClientHelloStage inside a real Preamble fed read by read (real ClientHellos from node:tls, in
// any split, and hostile input). The proxy end to end: sni-routing.test.ts, preamble-fake.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BufferPool } from '../../src/core/buffer-pool.ts';
import { ClientHelloStage, matchSni, parseClientHello } from '../../src/core/client-hello.ts';
import { Preamble, type PreambleOwner } from '../../src/core/preamble.ts';
import { TimerWheel } from '../../src/core/timer-wheel.ts';
import { NO_EVENTS } from '../../src/engine/engine.ts';
import { captureHello as captureWith, longAlpn } from '../support/client-hello.ts';
import { FakeEngine, FakeSocket } from '../support/fake-engine.ts';

const MAX = 16 * 1024;

/** A real ClientHello from node:tls offering h2 and http/1.1, with `servername` as SNI. */
function captureHello(servername?: string): Promise<Buffer> {
  return captureWith(servername, ['h2', 'http/1.1']);
}

type Verdict =
  | { status: 'more' }
  | { status: 'done'; sni: string | null; bytes: Buffer }
  | { status: 'invalid'; reason: string };

/**
 * The proxy's SNI preamble (one ClientHelloStage of `maxBytes`, pool buffers of `bufferSize`, as
 * ProxyServer builds it) on one client: `push` plays a read, and returns the verdict so far.
 * `bytes` of a done verdict: what the proxy would forward to the server first. One pool and
 * wheel serve every reader a test makes; `close` gives back a buffer still held.
 */
function helloReaders(bufferSize = MAX) {
  const pool = new BufferPool(bufferSize, 2);
  const wheel = new TimerWheel(100);
  const engine = new FakeEngine();
  const verdicts = new Map<Preamble, Verdict>();
  const owner: PreambleOwner = {
    pool,
    wheel,
    preambleDone(preamble, early, n) {
      const stage = preamble.stages[0] as ClientHelloStage;
      const bytes = early === null ? Buffer.alloc(0) : Buffer.from(early.subarray(0, n));
      if (early !== null) pool.release(early);
      verdicts.set(preamble, { status: 'done', sni: stage.sni, bytes });
    },
    preambleFailed(preamble, reason) {
      verdicts.set(preamble, { status: 'invalid', reason });
    },
  };
  return {
    pool,
    reader(maxBytes = Math.min(MAX, bufferSize)) {
      const socket = new FakeSocket(engine, NO_EVENTS, 1, true);
      const preamble = new Preamble(owner, socket, [new ClientHelloStage(maxBytes)], [0]);
      const verdict = (): Verdict => verdicts.get(preamble) ?? { status: 'more' };
      return {
        push(data: Buffer): Verdict {
          if (verdict().status === 'more') preamble.onData(data, data.length);
          return verdict();
        },
        close(): void {
          preamble.kill();
        },
      };
    },
  };
}

test('a whole ClientHello: its SNI (lower case), or null without one', async () => {
  const hello = await captureHello('API.Example.com');
  assert.deepEqual(parseClientHello(hello, hello.length), {
    status: 'done',
    sni: 'api.example.com',
  });
  const none = await captureHello();
  assert.deepEqual(parseClientHello(none, none.length), { status: 'done', sni: null });
  const { reader } = helloReaders();
  assert.deepEqual(reader().push(hello), { status: 'done', sni: 'api.example.com', bytes: hello });
  assert.deepEqual(reader().push(none), { status: 'done', sni: null, bytes: none });
});

test('in 1-byte reads, and split at every point: more, then done with the same bytes', async () => {
  const hello = await captureHello('a.example.com');
  const { pool, reader } = helloReaders();
  const oneByOne = reader();
  let last: Verdict = { status: 'more' };
  for (let i = 0; i < hello.length; i++) {
    last = oneByOne.push(hello.subarray(i, i + 1));
    assert.equal(last.status, i === hello.length - 1 ? 'done' : 'more', `at byte ${i}`);
  }
  assert.deepEqual(last, { status: 'done', sni: 'a.example.com', bytes: hello }, 'unchanged');
  for (let cut = 1; cut < hello.length; cut++) {
    const r = reader();
    assert.equal(r.push(hello.subarray(0, cut)).status, 'more', `cut at ${cut}`);
    const done = r.push(hello.subarray(cut));
    assert.deepEqual(done, { status: 'done', sni: 'a.example.com', bytes: hello }, `cut ${cut}`);
  }
  assert.equal(pool.inUse, 0);
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
  const { reader } = helloReaders();
  const r = reader();
  let last: Verdict = { status: 'more' };
  for (let i = 0; i < all.length; i += 7) {
    last = r.push(all.subarray(i, i + 7));
    assert.equal(last.status, i + 7 >= all.length ? 'done' : 'more', `at byte ${i}`);
  }
  assert.deepEqual(last, { status: 'done', sni: 'split.example.com', bytes: all });
});

test('not TLS, another handshake message, a bad record: invalid', () => {
  const { pool, reader } = helloReaders();
  const http = Buffer.from('GET / HTTP/1.1\r\n');
  assert.deepEqual(
    reader().push(http.subarray(0, 1)),
    { status: 'invalid', reason: 'not a TLS handshake record' },
    'from its first byte',
  );
  const serverHello = Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]);
  assert.equal(parseClientHello(serverHello, serverHello.length).status, 'invalid');
  assert.deepEqual(reader().push(serverHello), { status: 'invalid', reason: 'not a ClientHello' });
  const empty = Buffer.from([22, 3, 1, 0, 0]);
  assert.equal(parseClientHello(empty, empty.length).status, 'invalid');
  assert.deepEqual(reader().push(empty), { status: 'invalid', reason: 'bad record length' });
  assert.equal(pool.inUse, 0, 'the buffer comes back on every refusal');
});

test('a ClientHello over the bound: invalid, in one read or in pieces', async () => {
  const hello = await captureHello('a.example.com');
  const bound = hello.length - 1;
  const refused = { status: 'invalid', reason: `no complete ClientHello in ${bound} bytes` };
  // The stage's bound below the buffer (clientHelloMaxBytes < bufferSize): the verdict must not
  // depend on how the bytes were split into reads.
  const { pool, reader } = helloReaders(64 * 1024);
  assert.deepEqual(reader(bound).push(hello), refused, 'in one read');
  const pieces = reader(bound);
  assert.equal(pieces.push(hello.subarray(0, 100)).status, 'more');
  assert.deepEqual(pieces.push(hello.subarray(100)), refused, 'in two reads');
  assert.equal(reader(hello.length).push(hello).status, 'done', 'exactly the bound: taken');
  // The bound equal to the buffer (the default): the stage refuses as the buffer fills.
  const small = helloReaders(1024).reader();
  const big = await captureWith('a.example.com', longAlpn(1200));
  assert.deepEqual(small.push(big.subarray(0, 1024)), {
    status: 'invalid',
    reason: 'no complete ClientHello in 1024 bytes',
  });
  // A handshake header promising 16 MiB: more until the bound, then invalid.
  const huge = Buffer.from([22, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff]);
  const r = reader();
  assert.equal(r.push(huge).status, 'more');
  assert.deepEqual(r.push(Buffer.alloc(MAX)), {
    status: 'invalid',
    reason: `no complete ClientHello in ${MAX} bytes`,
  });
  assert.equal(pool.inUse, 0);
});

test('random bytes and mutated ClientHellos never throw (10,000 cases each)', async () => {
  const hello = await captureHello('fuzz.example.com');
  const { pool, reader } = helloReaders();
  for (let i = 0; i < 10_000; i++) {
    const junk = randomBytes(1 + Math.floor(Math.random() * 600));
    if (i % 2 === 0) junk[0] = 22; // get past the first check half the time
    if (i % 4 === 0) junk[1] = 3;
    const r = reader();
    for (let p = 0; p < junk.length; p += 1 + Math.floor(Math.random() * 64)) {
      const piece = junk.subarray(p, p + 1 + Math.floor(Math.random() * 64));
      const verdict = r.push(piece);
      if (verdict.status === 'invalid') {
        assert.ok(!verdict.reason.startsWith('internal error'), verdict.reason);
      }
      if (verdict.status !== 'more') break;
    }
    r.close();
    const mutated = Buffer.from(hello);
    for (let k = 0; k < 1 + (i % 4); k++) {
      mutated[Math.floor(Math.random() * mutated.length)] = Math.floor(Math.random() * 256);
    }
    const result = parseClientHello(mutated, Math.floor(Math.random() * (mutated.length + 1)));
    assert.ok(['more', 'done', 'invalid'].includes(result.status));
  }
  assert.equal(pool.inUse, 0);
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
