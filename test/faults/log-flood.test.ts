// A flood of failing clients must not turn into a flood of log lines: the hot error paths write a
// bounded number of lines per second per kind, then one "N similar lines suppressed" line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inParallel } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { closedPort, whoAnswers } from '../support/servers.ts';
import { configFile, startCli } from './cli.ts';

for (const engine of ENGINES) {
  describe(`log flood (${engine} engine)`, { timeout: 60_000 }, () => {
    test('300 refused connects write at most 10 lines a second, then a suppressed count', async (t) => {
      const dead = await closedPort();
      const file = configFile(
        t,
        `frontends: [{ name: web, listen: "127.0.0.1:0", backend: app }]
backends: [{ name: app, retries: 0, servers: [{ name: a, address: "127.0.0.1:${dead}" }] }]
`,
      );
      const cli = startCli(t, engine, ['--config', file, '--engine', engine]);
      const listening = await cli.line(/listening on/);
      const port = Number(String(listening.listen).split(':').pop());
      const started = performance.now();
      const answers = await inParallel(300, 50, () => whoAnswers(port));
      assert.ok(
        answers.every((a) => a === ''),
        'every client closed without a byte',
      );
      const seconds = (performance.now() - started) / 1000;
      // The window's summary comes when it ends.
      await cli.line(/similar lines suppressed/, 5_000);
      const written = cli.count(/^connect to a failed/);
      const bound = 10 * (Math.ceil(seconds) + 1);
      assert.ok(written <= bound, `${written} lines for 300 refused connects in ${seconds} s`);
      assert.ok(written >= 1, 'the first ones are logged');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0);
    });
  });
}
