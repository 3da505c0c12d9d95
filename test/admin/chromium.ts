// Headless Chromium for the stats page tests, from the npm registry, so `npm ci` is all the
// set-up: @sparticuz/chromium ships a brotli-compressed Chromium that executablePath() unpacks to
// $TMPDIR/chromium (once; later runs reuse it), driven through playwright-core. No system browser
// is looked for or used. The binary links libnss3 and libnspr4, which a minimal Debian or Ubuntu
// lacks; the package carries them for Amazon Linux in al2023.tar.br, and launchChromium puts
// those first on the library path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import sparticuz from '@sparticuz/chromium';
import { chromium } from 'playwright-core';

/**
 * Headless Chromium from @sparticuz/chromium with a fresh profile and the package's own copies of
 * the shared libraries it links; closed, and its directory removed, in t.after.
 */
export async function launchChromium(t: TestContext) {
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
    // A fixed locale: under LANG=C Chromium reports `en-US@posix`, which Intl (and so uPlot) rejects.
    locale: 'en-US',
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
