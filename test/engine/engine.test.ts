// The socket contract (src/engine/engine.ts), checked on each engine in its own runtime: the
// scenarios run in test/fixtures/engine-scenario.ts; here are the expectations.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: each scenario prints its own JSON shape
async function scenario(engine: 'node' | 'bun', name: string): Promise<any> {
  const { stdout } = await run(
    runtimeFor(engine),
    [`${ROOT}test/fixtures/engine-scenario.ts`, name],
    { timeout: 30_000, maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout);
}

for (const engine of ENGINES) {
  describe(`socket contract (${engine} engine)`, () => {
    test('tryWrite: takes what the kernel takes now, keeps none of the caller memory', async () => {
      const r = await scenario(engine, 'try-write');
      assert.equal(r.received, r.taken, 'the peer got exactly the bytes tryWrite reported');
      if (engine === 'bun') {
        // Bun writes for real and takes part of a write larger than the socket buffers; the
        // bytes it took must be the caller's bytes as they were during the call.
        assert.ok(r.taken > 0 && r.taken < r.n, `took ${r.taken}`);
        assert.ok(r.intact, 'reusing the buffer after the call changed nothing sent');
      } else {
        // Node cannot write without keeping the memory, so its contract is to take nothing:
        // a byte taken here would be one the caller may already have overwritten.
        assert.equal(r.taken, 0, `took ${r.taken}`);
      }
    });

    test('writeHeld: one onDrain when written; a FIN asked meanwhile goes after the bytes', async () => {
      const r = await scenario(engine, 'held-write-then-fin');
      assert.equal(r.doneInCall, false, '32 MiB to a paused peer cannot be written at once');
      assert.equal(r.drains, 1);
      assert.ok(r.intact, 'every byte, in order, before the FIN');
    });

    test('reads: at most readSize each, none while paused, then FIN, then close', async () => {
      const r = await scenario(engine, 'reads-and-pause');
      assert.equal(r.bytes, r.n);
      assert.ok(r.maxRead <= r.readSize, `a read of ${r.maxRead} bytes`);
      assert.equal(r.readsWhilePaused, 0);
      assert.ok(r.intact);
      assert.deepEqual(r.events, ['open', 'data', 'end', 'close']);
    });

    test("the peer's FIN after our own FIN is still onEnd, before onClose", async () => {
      const r = await scenario(engine, 'fin-after-own-fin');
      assert.deepEqual(r.events, ['open', 'data', 'end', 'close']);
      assert.equal(r.received, 'late');
    });

    test('destroy and reset: onClose once and never inside the call; reset is an RST', async () => {
      const r = await scenario(engine, 'close-and-reset');
      assert.deepEqual(r.destroyed, ['open', 'close']);
      assert.deepEqual(r.reset, ['open', 'close']);
      assert.deepEqual(r.early, ['close'], 'given up while connecting: no onOpen after');
      assert.ok(r.peerSaw.includes('ECONNRESET'), `peer saw ${r.peerSaw}`);
    });

    test('refused connect: onError ECONNREFUSED, then onClose, from the event loop', async () => {
      const r = await scenario(engine, 'refused');
      assert.deepEqual(r.events, ['error ECONNREFUSED', 'close']);
    });

    test('accepted sockets are not read before resume; admit() false turns a client away', async () => {
      const r = await scenario(engine, 'accept');
      assert.equal(r.beforeResume, 0);
      assert.equal(r.accepted, 1, 'the turned-away client never reached accept()');
      assert.deepEqual(r.events, ['data', 'end', 'close']);
    });

    test('a port in use: SWITCHYARD_ERR_LISTEN_FAILED naming EADDRINUSE', async () => {
      const r = await scenario(engine, 'listen-in-use');
      assert.equal(r.code, 'SWITCHYARD_ERR_LISTEN_FAILED');
      assert.match(r.message, /EADDRINUSE/);
    });
  });
}
