// Names that are JavaScript object keys through the supervisor: the reports of two workers (JSON
// over IPC) summed into one stats(), and its /metrics, keep a frontend named `constructor` and a
// backend and server named `__proto__`.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Supervisor } from '../../src/lifecycle/supervisor.ts';
import { createLogger } from '../../src/log.ts';
import { formatMetrics } from '../../src/observability/metrics.ts';
import { tempDir } from '../support/certs.ts';
import { connect, inParallel, waitFor } from '../support/clients.ts';
import { ENGINES, ROOT, runtimeFor } from '../support/proc.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';

for (const engine of ENGINES) {
  test(`${engine}: the worker sum keeps a frontend named constructor, a backend and server named __proto__`, async (t) => {
    const echo = await startEchoServer(t);
    const port = await closedPort();
    const config = join(tempDir(t), 'names.yaml');
    writeFileSync(
      config,
      [
        'frontends:',
        `  - { name: constructor, listen: "127.0.0.1:${port}", backend: __proto__ }`,
        'backends:',
        '  - name: __proto__',
        `    servers: [{ name: __proto__, address: "127.0.0.1:${echo.port}" }]`,
        '',
      ].join('\n'),
    );
    const supervisor = new Supervisor({
      workers: 2,
      command: [runtimeFor(engine), `${ROOT}bin/switchyard.js`],
      args: ['--config', config, '--log-level', 'warn'],
      log: createLogger('silent'),
    });
    t.after(() => supervisor.exitNow());
    await supervisor.start();
    const sockets = await inParallel(12, 4, () => connect(port));
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    const own = <T>(o: Record<string, T>, key: string): T | undefined =>
      Object.getOwnPropertyDescriptor(o, key)?.value;
    await waitFor(
      async () => {
        await supervisor.refresh();
        return own(supervisor.stats().frontends, 'constructor')?.accepted === 12;
      },
      5_000,
      'both workers report the 12 connections',
    );
    const stats = supervisor.stats();
    assert.deepEqual(Object.keys(stats.frontends), ['constructor']);
    assert.equal(own(stats.frontends, 'constructor')?.active, 12);
    assert.deepEqual(Object.keys(stats.backends), ['__proto__']);
    const servers = own(stats.backends, '__proto__')?.servers ?? [];
    assert.deepEqual(
      servers.map((s) => [s.name, s.active]),
      [['__proto__', 12]],
    );
    const m = formatMetrics(stats);
    assert.match(m, /^switchyard_connections_accepted_total\{frontend="constructor"\} 12$/m);
    assert.match(
      m,
      /^switchyard_server_active_connections\{backend="__proto__",server="__proto__"\} 12$/m,
    );
    for (const s of sockets) s.destroy();
    await supervisor.stop(1_000);
  });
}
