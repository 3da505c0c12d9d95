// Loaded into every test process by `npm test` (--import): a test file whose process is still
// alive GRACE_MS after its last test and hooks fails, saying what keeps it alive, instead of
// hanging the whole run (CI waits 90 minutes). Seen once (2026-11-27): the process of
// test/core/discovery.test.ts spun at 96 % CPU for 16 minutes after its last test had passed;
// not reproduced in 5 runs of that file alone. The orchestrating process (no NODE_TEST_CONTEXT)
// is left alone.
import { after } from 'node:test';

const GRACE_MS = 30_000;

if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    const timer = setTimeout(() => {
      const alive = JSON.stringify(process.getActiveResourcesInfo());
      process.stderr.write(
        `linger-watchdog: this test process is still alive ${GRACE_MS} ms after its last test; ` +
          `active resources: ${alive}\n`,
      );
      process.exit(1);
    }, GRACE_MS);
    timer.unref(); // only a process kept alive by something else gets here
  });
}
