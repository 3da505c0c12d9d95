// The stats page in headless Chromium (chromium.ts: from the npm registry) against a running
// proxy: names, state colours, counters that refresh by themselves, the token asked for, closing
// a connection from the page, the SNI and TLS of live connections (both engines). Saves
// test-artifacts/stats-page.png.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import type { ConnectionRow } from '../../src/stats.ts';
import { makeCa, makeCert, tempDir, writePem } from '../support/certs.ts';
import { closedWithin, connect } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { startNamedServer, startServer, whoAnswers } from '../support/servers.ts';
import { launchChromium } from './chromium.ts';

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

  // Held connections in the table: filtered by server on the page, closed from the page.
  const held = [await connect(p.port), await connect(p.port)];
  t.after(() => {
    for (const s of held) s.destroy();
  });
  const rows = page.locator('#connections tbody tr');
  await page.waitForFunction(
    () => document.querySelectorAll('#connections tbody tr').length === 2,
    undefined,
    { timeout: 5000 },
  );
  await page.selectOption('#f-server', 'charlie');
  await page.waitForFunction(
    () => document.getElementById('range')?.textContent === '0–0 of 0',
    undefined,
    { timeout: 5000 },
  );
  assert.equal(await rows.count(), 0);
  await page.selectOption('#f-server', 'alpha');
  await rows.nth(1).waitFor();
  const closing = held[1] as net.Socket;
  const id = await page
    .locator(`#connections tbody tr:has(td:text-is("127.0.0.1:${closing.localPort}"))`)
    .getAttribute('data-id');
  assert.ok(id, 'the page lists the client by its address');
  await page.locator(`#connections tbody tr[data-id="${id}"] button.close`).click();
  await closedWithin(closing, 3000);
  await page.waitForFunction(
    () =>
      document.querySelector('#closed tr[data-reason="killed"] td[data-field="recent"]')
        ?.textContent === '1',
    undefined,
    { timeout: 5000 },
  );
  assert.equal(await rows.count(), 1);

  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'test-artifacts', 'stats-page.png'), fullPage: true });
});

test('stats page: without the token in its URL it asks for it, once', async (t) => {
  const a = await startNamedServer(t, 'alpha');
  const p = await startBalancer(t, {
    frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
    backends: [{ name: 'app', servers: [{ name: 'alpha', address: `127.0.0.1:${a.port}` }] }],
    admin: { listen: 0, token: TOKEN },
  });
  const browser = await launchChromium(t);
  const page = await browser.newPage();
  const asked: string[] = [];
  page.on('dialog', (dialog) => {
    asked.push(dialog.message());
    void dialog.accept(TOKEN);
  });
  await page.goto(`http://127.0.0.1:${p.admin}/`);
  await page.locator('tr[data-frontend="web"]').waitFor({ timeout: 5000 });
  assert.deepEqual(asked, ['switchyard admin token']);
  // Kept for the tab's session: a reload does not ask again.
  await page.reload();
  await page.locator('tr[data-frontend="web"]').waitFor({ timeout: 5000 });
  assert.equal(asked.length, 1);
});

for (const engine of ENGINES) {
  test(`stats page (${engine} engine): the SNI and TLS of a terminated and of a passed-through connection`, async (t) => {
    const ca = await makeCa();
    const dir = tempDir(t);
    const front = writePem(dir, 'a', await makeCert(ca, ['a.example.com']));
    // Behind the passthrough frontend: a TLS server of its own (the proxy does not decrypt).
    const bPem = await makeCert(ca, ['b.example.com']);
    const tlsServer = tls.createServer({ cert: bPem.cert, key: bPem.key }, (socket) => {
      socket.on('error', () => {});
      socket.resume();
    });
    const serverSockets = new Set<net.Socket>();
    tlsServer.on('connection', (socket: net.Socket) => {
      serverSockets.add(socket);
      socket.on('close', () => serverSockets.delete(socket));
    });
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    t.after(() => {
      for (const socket of serverSockets) socket.destroy();
      tlsServer.close();
    });
    const plain = await startServer(t, (socket) => socket.resume());
    const p = await startBalancer(
      t,
      {
        frontends: [
          {
            name: 'https',
            listen: '127.0.0.1:0',
            backend: 'app',
            tls: {
              certificates: [{ cert: front.certFile, key: front.keyFile }],
              alpn: ['h2', 'http/1.1'],
            },
          },
          {
            name: 'passthrough',
            listen: '127.0.0.1:0',
            backend: 'secure',
            sni: [{ match: 'b.example.com', backend: 'secure' }],
          },
        ],
        backends: [
          { name: 'app', servers: [{ name: 'plain', address: `127.0.0.1:${plain.port}` }] },
          {
            name: 'secure',
            servers: [
              {
                name: 'tls',
                address: `127.0.0.1:${(tlsServer.address() as net.AddressInfo).port}`,
              },
            ],
          },
        ],
        admin: { listen: 0, token: TOKEN },
      },
      engine,
    );
    const clients: tls.TLSSocket[] = [];
    t.after(() => {
      for (const c of clients) c.destroy();
    });
    for (const [frontend, servername] of [
      ['https', 'a.example.com'],
      ['passthrough', 'b.example.com'],
    ] as const) {
      const c = tls.connect({
        host: '127.0.0.1',
        port: p.ports[frontend] as number,
        ca: ca.cert,
        servername,
        ALPNProtocols: ['h2'],
      });
      clients.push(c);
      await once(c, 'secureConnect');
      assert.ok(c.authorized, `${servername}: verified end to end`);
    }
    const [terminated, passed] = clients as [tls.TLSSocket, tls.TLSSocket];
    // A client's SNI is its own text: markup in it must show as text (the default certificate).
    const markup = tls.connect({
      host: '127.0.0.1',
      port: p.ports.https as number,
      servername: '<b>x</b>.example.com',
      rejectUnauthorized: false,
    });
    clients.push(markup);
    await once(markup, 'secureConnect');

    const browser = await launchChromium(t);
    const page = await browser.newPage();
    page.setDefaultTimeout(5000);
    await page.goto(`http://127.0.0.1:${p.admin}/?token=${TOKEN}`);
    const row = (socket: tls.TLSSocket) =>
      page.locator(`#connections tbody tr:has(td:text-is("127.0.0.1:${socket.localPort}"))`);
    await row(terminated).waitFor({ timeout: 5000 });
    await row(passed).waitFor({ timeout: 5000 });
    const field = (socket: tls.TLSSocket, name: string) =>
      row(socket).locator(`td[data-field="${name}"]`);

    // What the page reads: /api/connections, with what the client itself negotiated.
    const res = await fetch(`http://127.0.0.1:${p.admin}/api/connections`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    const rows = (await res.json()) as ConnectionRow[];
    const byPort = (socket: tls.TLSSocket) =>
      rows.find((r) => r.client === `127.0.0.1:${socket.localPort}`);
    const version = terminated.getProtocol();
    const cipher = terminated.getCipher().name;
    assert.deepEqual(byPort(terminated)?.tls, {
      sni: 'a.example.com',
      alpn: 'h2',
      version,
      cipher,
    });
    assert.equal(byPort(terminated)?.sni, 'a.example.com');
    assert.equal(byPort(passed)?.tls, null);
    assert.equal(byPort(passed)?.sni, 'b.example.com');

    assert.equal(await field(terminated, 'sni').textContent(), 'a.example.com');
    assert.match(version ?? '', /^TLSv1\.[23]$/);
    assert.equal(await field(terminated, 'tls').textContent(), `${version} h2`);
    assert.equal(await field(terminated, 'tls').getAttribute('title'), cipher);
    // Passed through: the ClientHello's name; no TLS of the proxy's own.
    assert.equal(await field(passed, 'sni').textContent(), 'b.example.com');
    assert.equal(await field(passed, 'tls').textContent(), '');
    await row(markup).waitFor();
    assert.equal(await field(markup, 'sni').textContent(), '<b>x</b>.example.com');
    assert.equal(await page.locator('#connections b').count(), 0, 'no element made of it');
  });
}
