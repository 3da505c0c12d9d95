// The admin server under idle connections: slowloris clients (connected and silent, or stopped
// inside the request line) cannot take the probes' slots. The oldest idle connection is closed
// to make room for a new one, so /healthz and /readyz answer with 64 and with 2,000 idle
// connections open, on each engine's runtime (the admin server is node:http, which Bun
// implements on its own).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { startAdminProcess } from '../support/admin-process.ts';
import { inParallel } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';

for (const engine of ENGINES) {
  describe(`admin connection slots (${engine} engine)`, () => {
    for (const [n, partial] of [
      [64, false],
      [64, true],
      [2000, false],
      [2000, true],
    ] as const) {
      const what = partial ? 'stopped inside the request line' : 'silent';
      test(`${n} idle admin connections (${what}): /healthz and /readyz answer`, async (t) => {
        const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
        const idle: net.Socket[] = [];
        t.after(() => {
          for (const s of idle) s.destroy();
        });
        let closedByServer = 0;
        await inParallel(n, 100, async () => {
          const s = net.connect(p.admin, '127.0.0.1');
          idle.push(s);
          s.on('error', () => {});
          s.on('close', () => closedByServer++);
          await Promise.race([once(s, 'connect'), once(s, 'close')]);
          if (partial && !s.destroyed) s.write('GET /healthz HT');
        });
        const took: number[] = [];
        for (const path of ['/healthz', '/readyz', '/healthz', '/readyz']) {
          const started = performance.now();
          // A generous bound so a loaded machine does not fail the test; the figure is reported.
          const res = await fetch(`http://127.0.0.1:${p.admin}${path}`, {
            signal: AbortSignal.timeout(10_000),
          });
          assert.equal(res.status, 200, path);
          await res.text();
          took.push(Math.round(performance.now() - started));
        }
        t.diagnostic(
          `answered in ${took.join(', ')} ms; idle closed by the server: ${closedByServer}`,
        );
      });
    }
  });
}
