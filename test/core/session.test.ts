// The data path, end to end on loopback: client -> proxy (child process) -> backend.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { describe, test } from 'node:test';
import { closedWithin, connect, readAll, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startProxy } from '../support/proxy-process.ts';
import { closedPort, startEchoServer, startServer } from '../support/servers.ts';

const MiB = 1024 * 1024;

/** Writes `total` bytes in random sizes from 1 B to 1 MiB (log-uniform), honouring backpressure. */
async function writeRandom(socket: net.Socket, total: number, source: Buffer): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const size = Math.min(total - sent, Math.max(1, Math.floor(2 ** (Math.random() * 20))));
    const offset = Math.floor(Math.random() * (source.length - size));
    const chunk = source.subarray(offset, offset + size);
    hash.update(chunk);
    sent += size;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  return hash.digest('hex');
}

/** Hashes everything a socket sends until FIN. */
function hashUntilEnd(socket: net.Socket): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  return once(socket, 'end').then(() => ({ hash: hash.digest('hex'), bytes }));
}

for (const engine of ENGINES) {
  describe(`data path (${engine} engine)`, () => {
    test(`4 parallel connections x 64 MiB, random write sizes: sha256-equal both ways`, async (t) => {
      const source = randomBytes(2 * MiB);
      const received: Promise<{ hash: string; bytes: number }>[] = [];
      // The backend hashes what it receives and echoes it back.
      const backend = await startServer(t, (socket) => {
        received.push(hashUntilEnd(socket));
        socket.pipe(socket);
      });
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const runs = Array.from({ length: 4 }, async () => {
        const client = await connect(proxy.port);
        const echoed = hashUntilEnd(client);
        const sent = await writeRandom(client, 64 * MiB, source);
        client.end();
        const back = await echoed;
        client.destroy();
        return { sent, back };
      });
      const results = await Promise.all(runs);
      const atBackend = await Promise.all(received);
      for (const { sent, back } of results) {
        assert.equal(back.bytes, 64 * MiB);
        assert.equal(back.hash, sent, 'client got back exactly what it sent');
        assert.ok(
          atBackend.some((r) => r.hash === sent && r.bytes === 64 * MiB),
          'backend got it',
        );
      }
      await waitFor(async () => (await proxy.stats()).active === 0, 5000, 'pairs to close');
      const stats = await proxy.stats();
      assert.equal(stats.pool.inUse, 0, 'every pool buffer went back');
      assert.equal(stats.states.illegal, 0);
      assert.equal(stats.bytesIn, 4 * 64 * MiB);
      assert.equal(stats.bytesOut, 4 * 64 * MiB);
    });

    test('half-close from the client: FIN passed on, the other direction keeps flowing', async (t) => {
      const backend = await startServer(t, (socket) => {
        const got: Buffer[] = [];
        socket.on('data', (c: Buffer) => got.push(c));
        socket.on('end', () => {
          // The client has finished; the backend answers after that, then finishes too.
          setTimeout(() => socket.end(`got ${Buffer.concat(got).toString()}`), 50);
        });
      });
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const client = await connect(proxy.port);
      const reply = readAll(client);
      client.end('hello');
      assert.equal((await reply).toString(), 'got hello');
      await waitFor(async () => (await proxy.stats()).active === 0, 2000, 'pair closed');
      assert.equal((await proxy.stats()).closed.done, 1);
    });

    test('half-close from the server: FIN passed on, the client can still send', async (t) => {
      let backendGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
      const backend = await startServer(t, (socket) => {
        backendGot = readAll(socket);
        socket.end('banner');
      });
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const client = await connect(proxy.port);
      assert.equal((await readAll(client)).toString(), 'banner');
      // Half-closed: the state machine says so while the client still talks.
      const [conn] = await proxy.connections();
      assert.equal(conn?.state, 'HALF_CLOSED');
      client.end('late words');
      assert.equal((await backendGot).toString(), 'late words');
    });

    test('server speaks first', async (t) => {
      const backend = await startServer(t, (socket) => socket.write('220 ready\r\n'));
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const client = await connect(proxy.port);
      const [data] = await once(client, 'data');
      assert.equal(data.toString(), '220 ready\r\n');
      client.destroy();
    });

    test('backend refused: the client is closed within 1 s', async (t) => {
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: await closedPort() } },
        engine,
      );
      const client = await connect(proxy.port);
      client.on('error', () => {});
      client.resume();
      await closedWithin(client, 1000);
      await waitFor(async () => (await proxy.stats()).closed.connect_failed === 1, 1000, 'counted');
    });

    test('backend killed mid-stream: the client is closed, the proxy cleans up', async (t) => {
      // The backend is its own process, so it can be killed for real.
      const script = `
        const net = require('node:net');
        const chunk = Buffer.alloc(64 * 1024, 7);
        const server = net.createServer((s) => {
          s.on('error', () => {});
          const pump = () => { while (s.write(chunk)); };
          s.on('drain', pump); pump();
        });
        server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
      const child = spawn(process.execPath, ['-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      t.after(() => child.kill('SIGKILL'));
      const [line] = await once(child.stdout, 'data');
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: Number(String(line).trim()) } },
        engine,
      );
      const client = await connect(proxy.port);
      client.on('error', () => {});
      let bytes = 0;
      client.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      await waitFor(() => bytes > 4 * 1024 * 1024, 5000, 'data to flow');
      child.kill('SIGKILL');
      await closedWithin(client, 2000);
      client.end(); // a well-behaved client finishes too; the pair must then go away
      await waitFor(async () => (await proxy.stats()).active === 0, 2000, 'pair closed');
      assert.equal((await proxy.stats()).pool.inUse, 0);
    });

    test('client RST mid-stream: the backend sees a reset or close', async (t) => {
      let backendSocket: net.Socket | undefined;
      const backend = await startServer(t, (socket) => {
        backendSocket = socket;
        socket.resume();
      });
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const client = await connect(proxy.port);
      const chunk = Buffer.alloc(256 * 1024, 1);
      for (let i = 0; i < 16; i++) client.write(chunk);
      await waitFor(() => backendSocket !== undefined && backendSocket.bytesRead > 0, 2000, 'data');
      const sock = backendSocket as net.Socket;
      const seen = new Promise<string>((resolve) => {
        sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        sock.on('close', () => resolve('close'));
      });
      client.resetAndDestroy();
      const what = await Promise.race([
        seen,
        new Promise((r) => setTimeout(() => r('nothing'), 2000)),
      ]);
      assert.ok(what === 'ECONNRESET' || what === 'close', `backend saw ${what}`);
      await waitFor(async () => (await proxy.stats()).active === 0, 2000, 'pair closed');
      assert.equal((await proxy.stats()).closed.client_reset, 1);
    });

    test('connect timeout: a backend that never answers the SYN; the client is closed', async (t) => {
      // A listener with a full accept queue (backlog 0, one connection parked) drops further SYNs,
      // so the proxy's connect hangs until its own timeout. Node cannot make such a listener.
      const holder = spawn(
        'python3',
        [
          '-c',
          'import socket,sys,time\ns=socket.socket();s.bind(("127.0.0.1",0));s.listen(0)\nprint(s.getsockname()[1],flush=True);sys.stdin.read()',
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      t.after(() => holder.kill('SIGKILL'));
      const [line] = await once(holder.stdout, 'data');
      const port = Number(String(line).trim());
      const filler = await connect(port);
      t.after(() => filler.destroy());
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port }, connectTimeoutMs: 300 },
        engine,
      );
      const client = await connect(proxy.port);
      const started = Date.now();
      await closedWithin(client, 2000);
      assert.ok(Date.now() - started >= 250, 'not before the timeout');
      await waitFor(
        async () => (await proxy.stats()).closed.connect_timeout === 1,
        1000,
        'counted',
      );
    });

    test('idle timeout closes a silent pair; half-closed timeout closes a silent half', async (t) => {
      const backend = await startServer(t, (socket) => socket.resume());
      const proxy = await startProxy(
        t,
        {
          backend: { host: '127.0.0.1', port: backend.port },
          idleTimeoutMs: 300,
          halfClosedTimeoutMs: 300,
        },
        engine,
      );
      const idle = await connect(proxy.port);
      const half = await connect(proxy.port);
      half.end(); // the backend never answers nor finishes
      const started = Date.now();
      await Promise.all([closedWithin(idle, 2000), closedWithin(half, 2000)]);
      assert.ok(Date.now() - started >= 250, 'not before the timeout');
      await waitFor(async () => (await proxy.stats()).active === 0, 1000, 'both pairs gone');
      const stats = await proxy.stats();
      assert.equal(stats.closed.idle_timeout, 1);
      assert.equal(stats.closed.half_closed_timeout, 1);
    });

    test('echo across many small writes keeps order (IPv4 loopback, keep-alive style)', async (t) => {
      const backend = await startEchoServer(t);
      const proxy = await startProxy(
        t,
        { backend: { host: '127.0.0.1', port: backend.port } },
        engine,
      );
      const client = await connect(proxy.port);
      let got = '';
      client.on('data', (c: Buffer) => {
        got += c.toString();
      });
      let want = '';
      for (let i = 0; i < 2000; i++) {
        const msg = `${i},`;
        want += msg;
        client.write(msg);
        if (i % 100 === 0) await waitFor(() => got.length === want.length, 2000, 'echo');
      }
      await waitFor(() => got.length === want.length, 2000, 'echo');
      assert.equal(got, want);
      client.destroy();
    });
  });
}
