// The image recipe, run on this machine: deploy/install.sh (the script the Dockerfile's build
// stage runs) installs bin/, dist/ and the production dependencies into a temp dir, offline from
// npm's cache; the install starts with the image's config and CMD, answers the Dockerfile's
// HEALTHCHECK command, and drains on the Dockerfile's STOPSIGNAL. What a container adds (the
// base image, USER, the daemon's health status) is not run here: see test/deploy/manifests.test.ts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../support/clients.ts';
import { ROOT } from '../support/proc.ts';
import { closedPort } from '../support/servers.ts';

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfile(): string[] {
  const text = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
  return text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]/.test(l));
}

test('deploy/install.sh installs what runs; it starts with the image config, answers HEALTHCHECK, drains on STOPSIGNAL', async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'switchyard-image-'));
  t.after(() => rmSync(dest, { recursive: true, force: true }));
  const lines = dockerfile();
  assert.ok(
    lines.some((l) => /^RUN sh deploy\/install\.sh /.test(l)),
    'the Dockerfile runs it',
  );
  const install = spawnSync('sh', [join(ROOT, 'deploy', 'install.sh'), ROOT, dest], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
      NPM_FLAGS: '--offline',
    },
  });
  assert.equal(install.status, 0, `${install.stdout}${install.stderr}`);
  assert.match(install.stdout, /switchyard 0\.1\.0/);
  for (const dep of ['pino', 'yaml', 'zod']) {
    assert.ok(existsSync(join(dest, 'node_modules', dep)), `${dep} installed`);
  }
  for (const dev of ['typescript', '@biomejs', 'bun', 'node', 'dns-packet', 'playwright-core']) {
    assert.ok(!existsSync(join(dest, 'node_modules', dev)), `${dev} is a devDependency: left out`);
  }
  assert.ok(!existsSync(join(dest, 'src')), 'no sources');

  // The image's config, on free ports (this machine is shared), started as ENTRYPOINT + CMD.
  const web = await closedPort();
  const admin = await closedPort();
  const config = readFileSync(join(ROOT, 'deploy', 'switchyard.yaml'), 'utf8')
    .replace('":8080"', `"127.0.0.1:${web}"`)
    .replace('127.0.0.1:9100', `127.0.0.1:${admin}`);
  const file = join(dest, 'switchyard.yaml');
  writeFileSync(file, config);
  const cmd: string[] = JSON.parse((lines.find((l) => l.startsWith('CMD ')) as string).slice(4));
  cmd[cmd.indexOf('--config') + 1] = file;
  const entrypoint: string[] = JSON.parse(
    (lines.find((l) => l.startsWith('ENTRYPOINT ')) as string).slice(11),
  );
  assert.equal(entrypoint[0], 'node');
  const bin = (entrypoint[1] as string).replace('/opt/switchyard', dest);
  const child = spawn(process.execPath, [bin, ...cmd], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  t.after(() => child.kill('SIGKILL'));
  const healthcheck = JSON.parse(
    (lines.find((l) => l.startsWith('HEALTHCHECK ')) as string).replace(/^.*?CMD /, ''),
  ) as string[];
  assert.equal(healthcheck[0], 'node');
  const probe = healthcheck.map((a) => a.replace('127.0.0.1:9100', `127.0.0.1:${admin}`));
  const healthy = () =>
    spawnSync(process.execPath, probe.slice(1), { encoding: 'utf8', timeout: 5000 }).status === 0;
  await waitFor(healthy, 15_000, `the HEALTHCHECK command passes (stderr: ${stderr})`);
  const ready = await fetch(`http://127.0.0.1:${admin}/readyz`);
  assert.equal(ready.status, 200);
  // The discover name of the image config does not resolve here: the proxy runs without servers.
  assert.equal(child.exitCode, null, 'still running');
  const stopSignal = (lines.find((l) => l.startsWith('STOPSIGNAL ')) as string).split(' ')[1];
  child.kill(stopSignal as NodeJS.Signals);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, stderr);
});
