// The stats page with 10,000 idle connections held through the proxy, in headless Chromium
// (chromium.ts): it renders, lists 200 of them, and refreshes 60 times without the page's JS
// heap growing. The time to the first render is printed (a diagnostic, not a pass/fail).
//
// 10,000 pairs are 20,000 descriptors in the proxy, and `ulimit -Hn` here is 20,000 (not
// raisable without CAP_SYS_RESOURCE): so the proxy runs as the command does in production,
// `--workers 2` (each worker holds about 5,000 pairs; the supervisor runs the admin server and
// sums them), and the servers and the clients each live in a child process of their own
// (hold-process.ts), 10,000 descriptors apiece.
//
// SWITCHYARD_SCREENSHOTS=1 also writes docs/stats-page-light.png and docs/stats-page-dark.png.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { ROOT } from '../support/proc.ts';
import { closedPort } from '../support/servers.ts';
import { launchChromium } from './chromium.ts';

const CONNECTIONS = 10_000;
const REFRESHES = 60;
const REFRESH_MS = 200;

/** A child process answering one JSON line per command on stdin; killed in t.after. */
function child(t: TestContext, args: string[]) {
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => proc.kill('SIGKILL'));
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => waiting.shift()?.(line));
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      waiting.push((line) => resolve(JSON.parse(line)));
      proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    });
  return {
    proc,
    next,
    ask: (command: string) => {
      const reply = next();
      proc.stdin.write(`${command}\n`);
      return reply;
    },
  };
}

/** `switchyard --config FILE --workers 2`; resolves with the admin port from its log. */
async function startCli(
  t: TestContext,
  config: string,
): Promise<{ admin: number; proc: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-page-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, config);
  const proc = spawn(
    process.execPath,
    [`${ROOT}bin/switchyard.js`, '--config', file, '--workers', '2', '--log-level', 'info'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.after(() => proc.kill('SIGKILL'));
  const lines = createInterface({ input: proc.stderr as NodeJS.ReadableStream });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg: string; admin?: string };
    if (entry.msg === 'admin server listening' && entry.admin) {
      lines.on('line', () => {}); // keep reading: a full pipe would stall the supervisor's log
      return { admin: Number(entry.admin.slice(entry.admin.lastIndexOf(':') + 1)), proc };
    }
  }
  throw new Error('switchyard exited before its admin server listened');
}

test(`stats page with ${CONNECTIONS} idle connections: renders 200 rows, steady memory`, async (t) => {
  const hold = `${ROOT}test/admin/hold-process.ts`;
  const servers = child(t, [hold, 'servers', '2']);
  const { ports } = (await servers.next()) as { ports: number[] };
  const port = await closedPort(); // workers need a fixed port: one just released
  const { admin } = await startCli(
    t,
    `frontends:
  - { name: web, listen: 127.0.0.1:${port}, backend: hold, maxConnections: ${CONNECTIONS} }
  - { name: api, listen: 127.0.0.1:${await closedPort()}, backend: hold }
backends:
  - name: hold
    balance: leastconn
    servers:
      - { name: hold-a, address: 127.0.0.1:${ports[0]} }
      - { name: hold-b, address: 127.0.0.1:${ports[1]} }
admin: { listen: 127.0.0.1:0 }
`,
  );
  const base = `http://127.0.0.1:${admin}`;
  const clients = child(t, [hold, 'clients', String(port), String(CONNECTIONS)]);
  const opened = Date.now();
  assert.deepEqual(await clients.next(), { opened: CONNECTIONS });
  // Every pair connected to its server, as the admin server sees it.
  for (;;) {
    const res = await fetch(`${base}/api/connections?limit=1&state=READING`);
    if (Number(res.headers.get('X-Total-Count')) === CONNECTIONS) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const heldMs = Date.now() - opened;
  // A little traffic and a few endings, so the graphs and the reasons have something to show.
  await clients.ask('talk 2000 4096');
  await clients.ask('close 50');

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 1500 });
  const started = Date.now();
  await page.goto(`${base}/?refresh=${REFRESH_MS}`);
  await page.waitForFunction(
    () =>
      (window as unknown as { __switchyard: { firstRenderMs: number | null } }).__switchyard
        .firstRenderMs !== null,
    undefined,
    { timeout: 20_000 },
  );
  const wallMs = Date.now() - started;
  const state = () =>
    page.evaluate(() => {
      const s = (window as unknown as { __switchyard: Record<string, number> }).__switchyard;
      return {
        refreshes: s.refreshes as number,
        firstRenderMs: s.firstRenderMs as number,
        rows: document.querySelectorAll('#connections tbody tr').length,
        nodes: document.getElementsByTagName('*').length,
        range: document.getElementById('range')?.textContent ?? '',
      };
    });
  const first = await state();
  assert.equal(first.rows, 200);
  assert.match(first.range, /^1–200 of 99\d\d$/, 'the first page of about 10,000');
  const reading = Number(
    await page
      .locator('.state[data-state="READING"] b')
      .textContent()
      .then((x) => (x ?? '').replace('k', '')),
  );
  assert.ok(reading > 9, `the READING tile shows about 10k: ${reading}`);

  // Heap after warm-up, then after 60 more refreshes, each after a full garbage collection.
  const cdp = await browser.newCDPSession(page);
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return ((await cdp.send('Runtime.getHeapUsage')) as { usedSize: number }).usedSize;
  };
  const refreshedTo = (n: number) =>
    page.waitForFunction(
      (target) =>
        (window as unknown as { __switchyard: { refreshes: number } }).__switchyard.refreshes >=
        target,
      n,
      { timeout: 60_000, polling: 100 },
    );
  await refreshedTo(first.refreshes + 5);
  const warm = await heap();
  const warmState = await state();
  await refreshedTo(warmState.refreshes + REFRESHES);
  const after = await heap();
  const end = await state();
  assert.equal(end.rows, 200);
  assert.ok(after < 2 * warm, `JS heap ${after} B after ${REFRESHES} refreshes, ${warm} B before`);
  assert.ok(
    end.nodes <= warmState.nodes * 1.1,
    `DOM nodes ${end.nodes}, ${warmState.nodes} before`,
  );

  t.diagnostic(
    `${CONNECTIONS} connections held in ${heldMs} ms; first render ${Math.round(first.firstRenderMs)} ms ` +
      `after navigation start (performance.now() when stats, history, 200 rows and graphs were drawn), ` +
      `${wallMs} ms goto → rendered as the test saw it; JS heap ${(warm / 1048576).toFixed(1)} MiB → ` +
      `${(after / 1048576).toFixed(1)} MiB over ${end.refreshes - warmState.refreshes} refreshes; ` +
      `DOM nodes ${warmState.nodes} → ${end.nodes}`,
  );

  // Both themes, as the system says.
  const shots = [join(ROOT, 'test-artifacts')];
  if (process.env.SWITCHYARD_SCREENSHOTS === '1') shots.push(join(ROOT, 'docs'));
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await refreshedTo((await state()).refreshes + 2);
    for (const dir of shots) {
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: join(dir, `stats-page-${scheme}.png`) });
    }
  }
});
