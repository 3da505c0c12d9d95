// The stats page in headless Chromium under the admin server's guards: it renders and draws its
// charts under its Content-Security-Policy (no violation reported, while a script the page did
// not ship is refused), and on a server without a token its close button says why it cannot
// close a connection (the admin server refuses changes without a token unless the config allows
// them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../support/clients.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startNamedServer } from '../support/servers.ts';
import { launchChromium } from './chromium.ts';

test('stats page: works under its CSP; a refused close says why', async (t) => {
  const b = await startNamedServer(t, 'b', { hold: true });
  const p = await startBalancer(t, {
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
    backends: [{ name: 'app', servers: [{ name: 'b', address: `127.0.0.1:${b.port}` }] }],
    admin: { listen: 0 },
  });
  const client = await connect(p.port);
  t.after(() => client.destroy());

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${p.admin}/`);
  await page.waitForFunction(
    () => ((window as { __switchyard?: { refreshes: number } }).__switchyard?.refreshes ?? 0) >= 2,
    null,
    { timeout: 10_000 },
  );
  assert.ok((await page.locator('.uplot').count()) > 0, 'the charts are drawn');
  // An inline script the page did not ship is refused: the policy is in force.
  const ran = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true';
    document.body.appendChild(s);
    return (window as { __injected?: boolean }).__injected === true;
  });
  assert.equal(ran, false, 'an injected inline script must not run');
  const refusals = console.filter((m) => /Content Security Policy/i.test(m));
  assert.equal(refusals.length, 1, `only the injected script is refused: ${refusals.join('\n')}`);
  assert.deepEqual(
    console.filter((m) => m.startsWith('pageerror')),
    [],
  );

  // No token on this server: closing is refused, and the page says why.
  const dialog = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no dialog within 10 s')), 10_000);
    page.once('dialog', (d) => {
      clearTimeout(timer);
      resolve(d.message());
      d.dismiss().catch(() => {});
    });
  });
  await page.locator('#connections tbody tr button.close').first().click();
  assert.match(await dialog, /admin\.token.*admin\.allowChangesWithoutToken/);
  assert.equal((await p.connections()).length, 1, 'the connection is still open');
});
