// Proxy-wide behaviour: the connection cap, memory under a slow reader, descriptor hygiene.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { closedWithin, connect, waitFor } from '../support/clients.ts';
import { closeWaitAmong, ENGINES } from '../support/proc.ts';
import { startProxy } from '../support/proxy-process.ts';
import { startEchoServer, startServer } from '../support/servers.ts';

const MiB = 1024 * 1024;

async function echoes(socket: net.Socket, text: string): Promise<void> {
  const reply = once(socket, 'data');
  socket.write(text);
  const [data] = await reply;
  assert.equal(String(data), text);
}

for (const engine of ENGINES) {
  describe(`proxy (${engine} engine)`, () => {
    test('cap: the 11th client is closed at once, the 10 keep working, a freed slot is reused', async (t) => {
      const backend = await startEchoServer(t);
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port }, maxConnections: 10 },
        engine,
      );
      const clients = await Promise.all(Array.from({ length: 10 }, () => connect(proxy.port)));
      await Promise.all(clients.map((c, i) => echoes(c, `hello ${i}`)));

      const eleventh = await connect(proxy.port);
      let got = 0;
      eleventh.on('data', (c: Buffer) => {
        got += c.length;
      });
      eleventh.on('error', () => {});
      eleventh.write('anyone?');
      await closedWithin(eleventh, 1000);
      assert.equal(got, 0, 'the rejected client got nothing');
      assert.equal((await proxy.stats()).rejected.rejected_at_cap, 1);

      await Promise.all(clients.map((c, i) => echoes(c, `still ${i}`)));
      (clients.pop() as net.Socket).destroy();
      await waitFor(async () => (await proxy.stats()).active === 9, 2000, 'slot freed');
      const again = await connect(proxy.port);
      await echoes(again, 'back in');
      assert.equal((await proxy.stats()).rejected.rejected_at_cap, 1);
      for (const c of [...clients, again]) c.destroy();
    });

    test('slow reader: 512 MiB from the backend, client silent 5 s: RSS +<16 MiB, bytes intact', async (t) => {
      const block = randomBytes(MiB);
      const sentHash = createHash('sha256');
      for (let i = 0; i < 512; i++) sentHash.update(block);
      const backend = await startServer(t, async (socket) => {
        for (let i = 0; i < 512; i++) {
          if (!socket.write(block)) await once(socket, 'drain');
        }
        socket.end();
      });
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      // Warm up the proxy's code paths so JIT and heap growth are not counted as buffering.
      const warm = await connect(proxy.port);
      warm.resume();
      await once(warm, 'end');
      warm.destroy();
      await waitFor(async () => (await proxy.stats()).active === 0, 5000, 'warm-up done');
      const before = proxy.rss();

      const client = await connect(proxy.port);
      client.pause();
      let peak = before;
      let during: Awaited<ReturnType<typeof proxy.stats>> | undefined;
      let blocked: unknown;
      for (let i = 0; i < 25; i++) {
        await new Promise((r) => setTimeout(r, 200));
        peak = Math.max(peak, proxy.rss());
        if (i === 20) {
          during = await proxy.stats();
          blocked = (await proxy.connections())[0];
        }
      }
      const growth = peak - before;
      t.diagnostic(`RSS before ${before} peak ${peak} growth ${growth} bytes`);
      t.diagnostic(`states while the client is silent: ${JSON.stringify(during?.states)}`);
      t.diagnostic(`pool while the client is silent: ${JSON.stringify(during?.pool)}`);
      t.diagnostic(`connection while the client is silent: ${JSON.stringify(blocked)}`);
      assert.ok(growth < 16 * MiB, `RSS grew by ${growth} bytes`);
      assert.equal(during?.states.WRITING, 1, 'the pair waits in WRITING');
      assert.ok((during?.pool.inUse ?? 99) <= 1, 'at most one pool buffer held');

      const hash = createHash('sha256');
      let bytes = 0;
      client.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      client.resume();
      await once(client, 'end');
      assert.equal(bytes, 512 * MiB);
      assert.equal(hash.digest('hex'), sentHash.digest('hex'));
      client.destroy();
    });

    test('5,000 connections ending in mixed ways: fds back to baseline, no CLOSE_WAIT', async (t) => {
      const backend = await startEchoServer(t);
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const baseline = proxy.fdCount();
      const kinds = { clean: 0, reset: 0, halfClose: 0, immediate: 0 };
      const one = async (i: number) => {
        const socket = net.connect({ port: proxy.port, host: '127.0.0.1' });
        socket.on('error', () => {});
        await once(socket, 'connect');
        switch (i % 4) {
          case 0: // clean: talk, then both finish
            kinds.clean++;
            await echoes(socket, 'ping');
            socket.end();
            await once(socket, 'close');
            break;
          case 1: // client RST in the middle of a conversation
            kinds.reset++;
            socket.write('about to vanish');
            socket.resetAndDestroy();
            break;
          case 2: {
            // half-close: finish sending, keep reading until the echo and the FIN come back
            kinds.halfClose++;
            const closed = once(socket, 'close');
            socket.end('last words');
            socket.resume();
            await closed;
            break;
          }
          default: // immediate close, before a byte
            kinds.immediate++;
            socket.destroy();
        }
      };
      const total = 5000;
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < total) await one(next++);
        }),
      );
      await waitFor(async () => (await proxy.stats()).active === 0, 10_000, 'every pair closed');
      await waitFor(() => proxy.fdCount() <= baseline, 5000, 'descriptors released');
      assert.equal(proxy.fdCount(), baseline);
      assert.equal(closeWaitAmong(proxy.socketInodes()), 0, 'no socket left in CLOSE_WAIT');
      const stats = await proxy.stats();
      t.diagnostic(`kinds ${JSON.stringify(kinds)} closed ${JSON.stringify(stats.closed)}`);
      assert.equal(stats.accepted, total);
      assert.equal(stats.states.illegal, 0);
      assert.equal(stats.pool.inUse, 0);
    });

    test('running out of descriptors (EMFILE) never stops the listener', async (t) => {
      const backend = await startEchoServer(t);
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
        { nofile: 64 },
      );
      const flood = await Promise.all(
        Array.from({ length: 60 }, () => {
          const s = net.connect({ port: proxy.port, host: '127.0.0.1' });
          s.on('error', () => {});
          s.resume();
          return once(s, 'connect').then(() => s);
        }),
      );
      // libuv answers EMFILE by accepting and closing the excess (its reserve-descriptor trick),
      // so the sign of the limit is clients turned away, while the listener stays up.
      await new Promise((r) => setTimeout(r, 500));
      const turnedAway = flood.filter((s) => s.readableEnded || s.closed).length;
      const during = await proxy.stats();
      t.diagnostic(`under EMFILE: ${turnedAway} of 60 turned away, ${during.active} active`);
      assert.ok(turnedAway > 0, 'the descriptor limit was actually hit');
      assert.ok(during.active < 60);
      for (const s of flood) s.destroy();
      await waitFor(async () => (await proxy.stats()).active === 0, 5000, 'flood closed');
      const client = await connect(proxy.port);
      await echoes(client, 'alive');
      client.destroy();
    });
  });
}
