// reset() right after shutdown(), before libuv has sent the FIN: the engine must still close the
// socket and report onClose. Node's tcp_wrap marks a handle closing even when uv_tcp_close_reset
// refuses (EINVAL while a shutdown is in flight), after which no close can follow: the session
// above waited in CLOSING for good, holding both descriptors.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';

const run = promisify(execFile);

for (const engine of ENGINES) {
  describe(`reset while our FIN is in flight (${engine} engine)`, () => {
    test('onClose comes for every socket and no descriptor stays open', async () => {
      const { stdout } = await run(
        runtimeFor(engine),
        [`${ROOT}test/fixtures/engine-reset-while-shutting.ts`],
        { timeout: 60_000 },
      );
      const r = JSON.parse(stdout) as { rounds: number; closes: number; leaked: number };
      assert.equal(r.closes, r.rounds, `onClose for ${r.closes} of ${r.rounds} sockets`);
      assert.equal(r.leaked, 0, `${r.leaked} descriptors left open`);
    });
  });
}
