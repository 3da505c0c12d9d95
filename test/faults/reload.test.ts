// Faults around a config reload, on each engine, through the command (SIGHUP) and the library API
// (a proxy in a child process): a smaller bufferSize, a busy port, two reloads at once, a retired
// frontend's connections and counters.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { connect, sleep, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { closedPort, startEchoServer, startServer } from '../support/servers.ts';
import { configFile, echoBulk, startCli, tryEcho } from './cli.ts';

const MiB = 1024 * 1024;

/** Two different free ports (closedPort alone may give the same one twice). */
async function twoPorts(): Promise<[number, number]> {
  const a = await closedPort();
  let b = await closedPort();
  while (b === a) b = await closedPort();
  return [a, b];
}

/** A config file's text: `frontends` as name → port, all to one backend of one echo server. */
function yaml(frontends: Record<string, number>, echoPort: number, extra = ''): string {
  const lines = Object.entries(frontends).map(
    ([name, port]) => `  - { name: ${name}, listen: "127.0.0.1:${port}", backend: app }`,
  );
  return `${extra}frontends:\n${lines.join('\n')}\nbackends:\n  - name: app\n    servers:\n      - { name: e, address: "127.0.0.1:${echoPort}" }\n`;
}

/** The same config as an object, for the library API. */
function config(frontends: Record<string, number>, echoPort: number, more: object = {}) {
  return {
    frontends: Object.entries(frontends).map(([name, port]) => ({
      name,
      listen: `127.0.0.1:${port}`,
      backend: 'app',
    })),
    backends: [{ name: 'app', servers: [{ name: 'e', address: `127.0.0.1:${echoPort}` }] }],
    ...more,
  };
}

for (const engine of ENGINES) {
  test(`${engine}: SIGHUP to a smaller bufferSize adding a frontend: 8 MiB intact through the old and the new one`, async (t) => {
    const echo = await startEchoServer(t);
    const [web, extra] = await twoPorts();
    const file = configFile(t, yaml({ web }, echo.port, 'bufferSize: 64k\n'));
    const cli = startCli(t, engine, ['--config', file]);
    await cli.line(/listening on/);
    writeFileSync(file, yaml({ web, extra }, echo.port, 'bufferSize: 16k\n'));
    cli.child.kill('SIGHUP');
    await cli.line(/^config reloaded$/);
    for (const [name, port] of Object.entries({ web, extra })) {
      const r = await echoBulk(port, 8 * MiB);
      t.diagnostic(`${name}: ${r.length} of ${8 * MiB} bytes back`);
      assert.equal(r.got, r.sent, `${name}: sha256 intact (${r.length} of ${8 * MiB} bytes back)`);
    }
    // The change that cannot apply to a running process is said, with both numbers.
    const said = await cli.line(/bufferSize/);
    assert.equal(said.running, 64 * 1024);
    assert.equal(said.requested, 16 * 1024);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });

  test(`${engine}: SIGHUP moving a frontend to a busy port: the old listener keeps serving, nothing new stays bound, the process lives`, async (t) => {
    const echo = await startEchoServer(t);
    const busy = await startServer(t, (s) => s.destroy());
    const [web, added] = await twoPorts();
    const file = configFile(t, yaml({ web }, echo.port));
    const cli = startCli(t, engine, ['--config', file]);
    await cli.line(/listening on/);
    // `added` comes first, so it is bound before the busy port fails.
    writeFileSync(file, yaml({ added, web: busy.port }, echo.port));
    cli.child.kill('SIGHUP');
    const failed = await cli.line(/^reload failed/);
    t.diagnostic(`logged: ${String(failed.msg)} (${String(failed.err)})`);
    await sleep(300); // the process exited here before the fix
    assert.equal(cli.child.exitCode, null, 'the process is alive');
    assert.equal(await tryEcho(web), 'ok', 'the old listener still serves');
    assert.equal(await tryEcho(added), 'ECONNREFUSED', 'what the failed reload bound is closed');
    assert.equal(cli.count(/^config reloaded$/), 0);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });

  test(`${engine}: reload() to a busy port rejects and changes nothing: same ports, same stats, still forwarding`, async (t) => {
    const echo = await startEchoServer(t);
    const busy = await startServer(t, (s) => s.destroy());
    const [web, added] = await twoPorts();
    const p = await startBalancer(t, config({ web }, echo.port), engine);
    for (let i = 0; i < 3; i++) assert.equal(await tryEcho(web), 'ok');
    await waitFor(async () => (await p.stats()).frontends.web?.active === 0, 2_000, 'closed');
    const before = await p.stats();
    await assert.rejects(p.reload(config({ added, web: busy.port }, echo.port)), /EADDRINUSE/);
    const after = await p.stats();
    assert.deepEqual(Object.keys(after.frontends), ['web']);
    assert.equal(after.frontends.web?.listen, before.frontends.web?.listen);
    assert.equal(after.frontends.web?.accepted, before.frontends.web?.accepted);
    assert.equal(await tryEcho(web), 'ok');
    assert.equal(await tryEcho(added), 'ECONNREFUSED');
  });

  test(`${engine}: two reload() calls at once build a new frontend once`, async (t) => {
    const echo = await startEchoServer(t);
    const [web, extra] = await twoPorts();
    const p = await startBalancer(t, config({ web }, echo.port), engine);
    const next = config({ web, extra }, echo.port);
    const results = await Promise.allSettled([p.reload(next), p.reload(next)]);
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')),
      ['ok', 'ok'],
    );
    assert.equal(await tryEcho(extra), 'ok');
    assert.deepEqual(Object.keys((await p.stats()).frontends).sort(), ['extra', 'web']);
  });

  test(`${engine}: two SIGHUPs 5 ms apart: both reload, no frontend built twice`, async (t) => {
    const echo = await startEchoServer(t);
    const web = await closedPort();
    // Many new frontends, so a reload is still binding them when the next SIGHUP comes.
    const ports = new Set<number>([web]);
    while (ports.size < 41) ports.add(await closedPort()); // closedPort may repeat itself
    const added = Object.fromEntries([...ports].slice(1).map((port, i) => [`extra${i}`, port]));
    const file = configFile(t, yaml({ web }, echo.port));
    const cli = startCli(t, engine, ['--config', file]);
    await cli.line(/listening on/);
    writeFileSync(file, yaml({ web, ...added }, echo.port));
    cli.child.kill('SIGHUP');
    await cli.line(/^SIGHUP: reloading/);
    await sleep(5);
    cli.child.kill('SIGHUP');
    t.after(() => {
      const seen = cli.lines.filter((l) => !/listening on/.test(String(l.msg)));
      t.diagnostic(seen.map((l) => `${l.msg}${l.err ? ` (${l.err})` : ''}`).join(' | '));
    });
    await waitFor(
      () => cli.count(/^config reloaded$/) + cli.count(/^reload failed/) === 2,
      5_000,
      'both reloads done',
    );
    const failed = cli.lines.filter((l) => /^reload failed/.test(String(l.msg)));
    assert.deepEqual(
      failed.map((l) => String(l.err)),
      [],
    );
    assert.equal(cli.count(/^frontend extra\d+ listening/), 40, 'each new frontend built once');
    for (const port of Object.values(added)) assert.equal(await tryEcho(port), 'ok');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });

  test(`${engine}: a moved or removed frontend's live connections stay in stats, connections and /metrics until they close; counters never go back`, async (t) => {
    const echo = await startEchoServer(t);
    const [web, moved] = await twoPorts();
    const admin = { admin: { listen: '127.0.0.1:0' } };
    const p = await startBalancer(t, config({ web }, echo.port, admin), engine);
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${p.admin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name));
      return Number(line?.split(' ').pop());
    };
    for (let i = 0; i < 3; i++) assert.equal(await tryEcho(web), 'ok');
    const held = await connect(web);
    t.after(() => held.destroy());
    held.write('x');
    await once(held, 'data');
    await waitFor(async () => (await p.stats()).frontends.web?.accepted === 4, 2_000, 'counted');

    // Moved: a new listener, the held pair on the old one.
    await p.reload(config({ web: moved }, echo.port, admin));
    assert.equal(await tryEcho(moved), 'ok');
    const webActive = async () => (await p.stats()).frontends.web?.active;
    await waitFor(async () => (await webActive()) === 1, 2_000, 'the probe closed');
    let s = (await p.stats()).frontends.web;
    assert.equal(s?.active, 1, 'the held pair is counted');
    assert.equal(s?.accepted, 5, 'accepted keeps counting across the move');
    assert.equal(s?.listen, `127.0.0.1:${moved}`);
    assert.equal((await p.connections()).filter((c) => c.frontend === 'web').length, 1);
    assert.equal(await metric('switchyard_connections_accepted_total{frontend="web"}'), 5);

    // Removed: no listener at all, the held pair still shown.
    await p.reload(config({ other: 0 }, echo.port, admin));
    s = (await p.stats()).frontends.web;
    assert.equal(s?.active, 1);
    assert.equal(s?.accepted, 5);
    assert.equal((await p.connections()).filter((c) => c.frontend === 'web').length, 1);
    assert.equal(await metric('switchyard_connections{frontend="web",state="READING"}'), 1);

    held.destroy();
    await waitFor(async () => (await p.stats()).frontends.web?.active === 0, 2_000, 'drained');
    s = (await p.stats()).frontends.web;
    assert.equal(s?.accepted, 5, 'totals stay after the retired listener is released');
    assert.equal(
      Object.values(s?.closed ?? {}).reduce((a, b) => a + b, 0),
      5,
    );
    assert.deepEqual(await p.connections(), []);
  });
}
