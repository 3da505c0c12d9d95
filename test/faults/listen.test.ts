// `--listen :PORT` binds every interface, IPv4 and IPv6, as the README says: a client of
// 127.0.0.1 and a client of ::1 both reach the backend, on each engine.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { connect, readAll } from '../support/clients.ts';
import { ENGINES, ROOT } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;

for (const engine of ENGINES) {
  describe(`--listen :PORT (${engine} engine)`, () => {
    test('accepts on 127.0.0.1 and on ::1', async (t) => {
      const backend = await startEchoServer(t);
      const child = spawn(
        process.execPath,
        [BIN, '--listen', ':0', '--backend', `127.0.0.1:${backend.port}`, '--engine', engine],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      t.after(() => child.kill('SIGKILL'));
      let port = 0;
      for await (const line of createInterface({ input: child.stderr })) {
        const m = /listening on (.*):(\d+)$/.exec(String(JSON.parse(line).msg));
        if (m) {
          port = Number(m[2]);
          break;
        }
      }
      assert.ok(port > 0, 'the start line names the port');
      for (const host of ['127.0.0.1', '::1']) {
        const c = await connect(port, host);
        c.end(`via ${host}`);
        assert.equal((await readAll(c)).toString(), `via ${host}`, host);
      }
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
    });
  });
}
