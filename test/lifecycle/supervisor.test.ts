// The supervisor as a library: worker processes running the real command (bin/ on dist/), their
// reports summed. Workers run on each engine's runtime; this process (Node) supervises them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Supervisor } from '../../src/lifecycle/supervisor.ts';
import { createLogger } from '../../src/log.ts';
import { connect, inParallel, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';

for (const engine of ENGINES) {
  test(`${engine}: 2 workers share the port; stats and connections cover both`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const supervisor = new Supervisor({
      workers: 2,
      command: [runtimeFor(engine), `${ROOT}bin/switchyard.js`],
      args: [
        '--listen',
        `127.0.0.1:${port}`,
        '--backend',
        `127.0.0.1:${echo.port}`,
        '--log-level',
        'warn',
      ],
      log: createLogger('silent'),
    });
    t.after(() => supervisor.exitNow());
    await supervisor.start();
    const workers = supervisor.workers();
    assert.equal(workers.length, 2);
    assert.ok(workers.every((w) => w.ready && w.pid !== null));
    // 24 connections held open: the kernel spreads them over both workers' listeners.
    const sockets = await inParallel(24, 8, () => connect(port));
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    // Workers send their connections only when asked.
    let listed = await supervisor.liveConnections();
    await waitFor(
      async () => {
        listed = await supervisor.liveConnections();
        return listed.length === 24;
      },
      5_000,
      'every connection in the table',
    );
    assert.equal(supervisor.lastConnections().length, 24, 'the last answer, kept');
    const byWorker = new Map<number, number>();
    for (const c of listed) byWorker.set(c.worker, (byWorker.get(c.worker) ?? 0) + 1);
    t.diagnostic(`connections per worker: ${JSON.stringify(Object.fromEntries(byWorker))}`);
    assert.equal(byWorker.size, 2, 'both workers took connections');
    await supervisor.refresh();
    const stats = supervisor.stats();
    assert.equal(stats.frontends.default?.accepted, 24);
    assert.equal(stats.frontends.default?.active, 24);
    for (const s of sockets) s.destroy();
    await supervisor.stop(1_000);
    assert.ok(supervisor.workers().every((w) => !w.ready));
  });
}
