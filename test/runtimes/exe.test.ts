// The single executable (`npm run build:exe`), run with an empty PATH: no node, no npm, no
// package directory to fall back on. `npm run test:runtimes`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { before, describe, test } from 'node:test';
import { waitFor } from '../support/clients.ts';
import { ROOT } from '../support/proc.ts';
import { closedPort, startEchoServer } from '../support/servers.ts';
import { runOnce, smoke, type Target } from './smoke.ts';

const EXE = `${ROOT}switchyard-${process.platform}-${process.arch}`;
const target: Target = { command: EXE, env: { PATH: '' }, nodeVersion: process.versions.node };

/** Set by `npm run test:runtimes`: npm test skips these (registry downloads, a minute). */
const skip =
  process.env.SWITCHYARD_RUNTIMES === '1' ? false : 'SWITCHYARD_RUNTIMES=1 (npm run test:runtimes)';

describe('the single executable', { skip }, () => {
  before(() => {
    execFileSync(process.execPath, [`${ROOT}bin/build-exe.ts`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  });

  smoke('single executable', () => target);

  test('single executable: --version says so; --engine bun is refused with one line', () => {
    const v = runOnce(target, ['--version']);
    assert.match(v.stdout, /\(.*switchyard-linux-x64, single executable\)/);
    const r = runOnce(target, ['--engine', 'bun', '--version']);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^switchyard: --engine bun: the single executable runs the node engine only; .*\n$/,
    );
  });

  test('single executable: the stats page and its uPlot come from inside it', async (t) => {
    const echo = await startEchoServer(t);
    const [port, admin] = [await closedPort(), await closedPort()];
    const { spawn } = await import('node:child_process');
    const child = spawn(
      EXE,
      [
        '--listen',
        `127.0.0.1:${port}`,
        '--backend',
        `127.0.0.1:${echo.port}`,
        '--admin',
        String(admin),
      ],
      { env: target.env, stdio: 'ignore' },
    );
    t.after(() => child.kill('SIGKILL'));
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve) => {
        http
          .get({ host: '127.0.0.1', port: admin, path }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (s: string) => {
              body += s;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', () => resolve({ status: 0, body: '' }));
      });
    await waitFor(async () => (await get('/healthz')).status === 200, 10_000, 'the admin server');
    const js = await get('/assets/uplot.js');
    assert.equal(js.status, 200);
    assert.match(js.body, /uPlot/);
    child.kill('SIGTERM');
    assert.deepEqual(await once(child, 'exit'), [0, null]);
  });
});
