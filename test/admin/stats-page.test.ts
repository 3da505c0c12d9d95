// The stats page in headless Chromium against a running proxy: names, state colours, and counters
// that refresh by themselves. Saves test-artifacts/stats-page.png.
//
// The browser comes from the npm registry, so `npm ci` is all the set-up: @sparticuz/chromium ships
// a brotli-compressed Chromium that executablePath() unpacks to $TMPDIR/chromium (once; later runs
// reuse it), driven through playwright-core. No system browser is looked for or used. The binary
// links libnss3 and libnspr4, which a minimal Debian or Ubuntu lacks; the package carries them for
// Amazon Linux in al2023.tar.br, and launchChromium puts those first on the library path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import sparticuz from '@sparticuz/chromium';
import { chromium } from 'playwright-core';
import { ROOT } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startNamedServer, whoAnswers } from '../support/servers.ts';

const TOKEN = 'page-token';

test('stats page: frontends, backends, servers in colour, live counters', async (t) => {
  const a = await startNamedServer(t, 'alpha');
  const b = await startNamedServer(t, 'bravo');
  const c = await startNamedServer(t, 'charlie');
  await b.kill();
  const p = await startBalancer(t, {
    frontends: [{ name: 'web-in', listen: '127.0.0.1:0', backend: 'pool-1' }],
    backends: [
      {
        name: 'pool-1',
        healthCheck: { interval: '100ms', rise: 1, fall: 1 },
        servers: [
          { name: 'alpha', address: `127.0.0.1:${a.port}` },
          { name: 'bravo', address: `127.0.0.1:${b.port}` },
          { name: 'charlie', address: `127.0.0.1:${c.port}`, backup: true },
        ],
      },
    ],
    admin: { listen: 0, token: TOKEN },
  });

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${p.admin}/?token=${TOKEN}`);

  const accepted = page.locator('tr[data-frontend="web-in"] td[data-field="accepted"]');
  await accepted.waitFor();
  assert.equal(await accepted.textContent(), '0');
  assert.ok(await page.locator('#frontends').getByText('pool-1').isVisible());
  assert.ok(await page.locator('tr[data-backend="pool-1"]').isVisible());

  // Server states as classes and colours: alpha up, bravo down (its checks fail), charlie backup.
  const row = (name: string) => page.locator(`tr[data-server="${name}"]`);
  await page.waitForSelector('tr[data-server="bravo"].down', { timeout: 5000 });
  assert.equal(await row('alpha').getAttribute('class'), 'up');
  assert.equal(await row('charlie').getAttribute('class'), 'backup');
  const colour = (name: string) =>
    row(name)
      .locator('td')
      .first()
      .evaluate((td) => getComputedStyle(td).backgroundColor);
  assert.equal(await colour('alpha'), 'rgb(200, 240, 192)');
  assert.equal(await colour('bravo'), 'rgb(244, 184, 184)');
  assert.equal(await colour('charlie'), 'rgb(196, 216, 248)');

  // Traffic changes the counters without a reload of the page.
  for (let i = 0; i < 3; i++) assert.equal(await whoAnswers(p.port), 'alpha');
  await page.waitForFunction(
    () =>
      document.querySelector('tr[data-frontend="web-in"] td[data-field="accepted"]')
        ?.textContent === '3',
    undefined,
    { timeout: 5000 },
  );
  assert.equal(await row('alpha').locator('td[data-field="connections"]').textContent(), '3');

  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'test-artifacts', 'stats-page.png'), fullPage: true });
});

/**
 * Headless Chromium from @sparticuz/chromium with a fresh profile and the package's own copies of
 * the shared libraries it links; closed, and its directory removed, in t.after.
 */
async function launchChromium(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-chromium-'));
  const libs = join(dir, 'libs');
  mkdirSync(libs);
  // Beside the compressed browser, in the package's bin/ (build/esm/index.js is two levels down).
  const entry = fileURLToPath(import.meta.resolve('@sparticuz/chromium'));
  const bundle = join(dirname(entry), '..', '..', 'bin', 'al2023.tar.br');
  // tar is part of every base system; the archive holds lib/*.so.
  const untar = spawnSync('tar', ['-x', '-C', libs], {
    input: brotliDecompressSync(readFileSync(bundle)),
  });
  assert.equal(untar.status, 0, `tar -x ${bundle}: ${untar.stderr}`);
  const libraryPath = [join(libs, 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: await sparticuz.executablePath(),
    env: { ...process.env, LD_LIBRARY_PATH: libraryPath },
    headless: true,
    // The package's own flags (headless shell, no zygote, single process), plus what a root user
    // without a display needs (--no-sandbox) and no calls home from the test machine.
    args: [
      ...sparticuz.args,
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // Removed only once the browser is gone: it writes its cache index into the profile on close.
  t.after(async () => {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return browser;
}
