// `switchyard --engine node|bun` from either runtime: the engine asked for runs, on its own
// runtime, whichever runtime started the command.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readlinkSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ROOT, runtimeFor } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;
const RUNTIMES = ['node', 'bun'] as const;

for (const startedBy of RUNTIMES) {
  for (const engine of [...RUNTIMES, null]) {
    const asked = engine ? `--engine ${engine}` : 'no --engine';
    const expected = engine ?? startedBy;
    test(`started by ${startedBy}, ${asked}: the ${expected} engine forwards, SIGTERM exits 0`, async (t) => {
      const backend = await startEchoServer(t);
      const args = [BIN, '--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backend.port}`];
      if (engine) args.push('--engine', engine);
      const child = spawn(runtimeFor(startedBy), args, { stdio: ['ignore', 'ignore', 'pipe'] });
      t.after(() => child.kill('SIGKILL'));
      const lines = createInterface({ input: child.stderr });
      const [first] = (await once(lines, 'line')) as [string];
      const entry = JSON.parse(first);
      assert.equal(entry.engine, expected, `start line names the engine: ${first}`);
      // The process that logged it really runs on that engine's runtime.
      assert.match(readlinkSync(`/proc/${entry.pid}/exe`), expected === 'bun' ? /bun/ : /node$/);
      const m = /listening on 127\.0\.0\.1:(\d+)$/.exec(entry.msg);
      assert.ok(m, `start line names the address: ${entry.msg}`);
      const socket = net.connect({ host: '127.0.0.1', port: Number(m[1]) });
      await once(socket, 'connect');
      socket.write(`via ${expected}`);
      const [data] = await once(socket, 'data');
      assert.equal(String(data), `via ${expected}`);
      // SIGTERM drains: the proxy exits once its open connections are done.
      socket.destroy();
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
    });
  }
}

test('--engine bun from node: a port in use exits 1 naming EADDRINUSE', async (t) => {
  const backend = await startEchoServer(t);
  const r = spawnSync(
    process.execPath,
    [BIN, '--engine', 'bun', '--listen', `127.0.0.1:${backend.port}`, '--backend', '127.0.0.1:1'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /EADDRINUSE/);
});

test('--help lists --engine node|bun on either runtime', () => {
  for (const runtime of RUNTIMES) {
    const r = spawnSync(runtimeFor(runtime), [BIN, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--engine node\|bun .*\(default (node|bun)/);
    assert.match(r.stdout, new RegExp(`default ${runtime}`));
  }
});
