// The package as a user installs it (`npm pack`, `npm install -g --prefix DIR tarball`), run
// on each Node line package.json's engines admits, from the npm registry's `node` package, and
// refused on the machine's own Node when that is below the range. `npm run test:runtimes`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../support/proc.ts';
import { type Installed, nodeLine, packAndInstall } from './install.ts';
import { runOnce, smoke, type Target } from './smoke.ts';

/** The Node lines users have (the LTS ones) that engines admits. */
const LINES = [22, 24];
const ENGINES = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).engines.node as string;
const MINIMUM = ENGINES.replace(/^>=/, '');

/** Set by `npm run test:runtimes`: npm test skips these (registry downloads, a minute). */
const skip =
  process.env.SWITCHYARD_RUNTIMES === '1' ? false : 'SWITCHYARD_RUNTIMES=1 (npm run test:runtimes)';

describe('the package from npm pack', { skip }, () => {
  let installed: Installed;
  before(() => {
    installed = packAndInstall();
  });
  after(() => installed?.remove());

  /** The installed command with `node` (only it, and the system's tools) on PATH. */
  function withNode(node: string): Target {
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim().slice(1);
    return {
      command: installed.command,
      env: { PATH: `${dirname(node)}:/usr/bin:/bin`, HOME: process.env.HOME ?? '/tmp' },
      nodeVersion: version,
    };
  }

  test('the tarball: LICENSE, bin and dist; no src/, no source maps, no install script', () => {
    const files = installed.files;
    assert.ok(files.includes('LICENSE'));
    assert.match(
      readFileSync(`${ROOT}LICENSE`, 'utf8'),
      /^MIT License\n\nCopyright \(c\) \d+ switchyard contributors/,
    );
    assert.ok(files.includes('bin/switchyard.js'));
    assert.ok(files.includes('dist/cli.js'));
    assert.ok(files.includes('dist/index.d.ts'), 'the library types');
    assert.deepEqual(
      files.filter((f) => f.startsWith('src/') || f.endsWith('.map') || f.startsWith('test/')),
      [],
    );
    const scripts = installed.manifest.scripts ?? {};
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
      assert.equal(scripts[hook], undefined, `${hook} would run at a user's install`);
    }
    assert.equal(installed.manifest.engines?.node, ENGINES);
  });

  for (const major of LINES) {
    let target: Target | undefined;
    const get = () => {
      target ??= withNode(nodeLine(major));
      return target;
    };
    smoke(`node ${major}`, get);

    test(`node ${major}: --engine bun without a bun says how to get one`, () => {
      const r = runOnce(get(), ['--engine', 'bun', '--version']);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^switchyard: --engine bun: no bun binary: .*npm i -g bun.*\n$/);
    });
  }

  test(`the machine's node, when below ${MINIMUM}: refused, exit 2, one line`, (t) => {
    const system = execFileSync('/usr/bin/env', ['node', '--version'], {
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    }).trim();
    const [major, minor] = system.slice(1).split('.').map(Number) as [number, number];
    const [wantMajor, wantMinor] = MINIMUM.split('.').map(Number) as [number, number];
    if (major > wantMajor || (major === wantMajor && minor >= wantMinor)) {
      t.skip(`the machine's node is ${system}, inside the range`);
      return;
    }
    const node = execFileSync('/usr/bin/env', ['sh', '-c', 'command -v node'], {
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    }).trim();
    for (const args of [['--version'], ['--listen', '127.0.0.1:1', '--backend', '127.0.0.1:2']]) {
      const r = runOnce(withNode(node), args);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, '');
      const line = `switchyard: needs Node >= ${MINIMUM}; this is Node ${system.slice(1)} (`;
      assert.ok(r.stderr.startsWith(line) && r.stderr.endsWith(')\n'), r.stderr);
      assert.equal(r.stderr.split('\n').length, 2, 'one line');
    }
  });
});
