// Streaming reads into pool buffers (the node engine's readFrom): bytes arrive intact, and a
// connection that goes idle after a transfer of whole buffers holds no pool buffer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { connect, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startProxy } from '../support/proxy-process.ts';
import { startServer } from '../support/servers.ts';

for (const engine of ENGINES) {
  test(`${engine}: idle after a transfer of whole 16 KiB reads, a pair holds no pool buffer`, async (t) => {
    const payload = randomBytes(64 * 16 * 1024);
    let got = Buffer.alloc(0);
    const backend = await startServer(t, (socket) => {
      socket.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c]);
      });
    });
    const proxy = await startProxy(
      t,
      { backend: { host: '127.0.0.1', port: backend.port } },
      engine,
    );
    const client = await connect(proxy.port);
    t.after(() => client.destroy());
    if (!client.write(payload)) await once(client, 'drain');
    await waitFor(() => got.length === payload.length, 5000, 'the backend to get every byte');
    assert.ok(got.equals(payload), 'bytes intact');
    // The connection stays open and silent: within the sweep (1 s, twice) every buffer is back.
    await waitFor(async () => (await proxy.stats()).pool.inUse === 0, 4000, 'pool buffers back');
    assert.equal((await proxy.stats()).active, 1, 'the pair is still open');
  });
}
