// The admin server under idle connections: slowloris clients (connected and silent, or stopped
// inside the request line) cannot take the probes' slots. The oldest idle connection is closed
// to make room for a new one, so /healthz and /readyz answer with 64 and with 2,000 idle
// connections open, on each engine's runtime (the admin server is node:http, which Bun
// implements on its own). And the slot table itself: who is closed when it is full, and its
// timeouts (the only ones on Bun).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { ConnectionSlots } from '../../src/admin/slots.ts';
import { startAdminProcess } from '../support/admin-process.ts';
import { closedWithin, inParallel, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';

for (const engine of ENGINES) {
  describe(`admin connection slots (${engine} engine)`, () => {
    for (const [n, partial] of [
      [64, false],
      [64, true],
      [2000, false],
      [2000, true],
    ] as const) {
      const what = partial ? 'stopped inside the request line' : 'silent';
      test(`${n} idle admin connections (${what}): /healthz and /readyz answer`, async (t) => {
        const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
        const idle: net.Socket[] = [];
        t.after(() => {
          for (const s of idle) s.destroy();
        });
        let closedByServer = 0;
        await inParallel(n, 100, async () => {
          const s = net.connect(p.admin, '127.0.0.1');
          idle.push(s);
          s.on('error', () => {});
          s.on('close', () => closedByServer++);
          await Promise.race([once(s, 'connect'), once(s, 'close')]);
          if (partial && !s.destroyed) s.write('GET /healthz HT');
        });
        const took: number[] = [];
        for (const path of ['/healthz', '/readyz', '/healthz', '/readyz']) {
          const started = performance.now();
          // A generous bound so a loaded machine does not fail the test; the figure is reported.
          const res = await fetch(`http://127.0.0.1:${p.admin}${path}`, {
            signal: AbortSignal.timeout(10_000),
          });
          assert.equal(res.status, 200, path);
          await res.text();
          took.push(Math.round(performance.now() - started));
        }
        t.diagnostic(
          `answered in ${took.join(', ')} ms; idle closed by the server: ${closedByServer}`,
        );
      });
    }

    test('a peer that keeps reconnecting from another address: probes on new connections answer', async (t) => {
      const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
      // 100 loops from 127.0.0.2, each connecting, sending part of a request line and
      // connecting again once the server closes it, while the probes come from 127.0.0.1 (the
      // kubelet's address is not the attacker's).
      let stop = false;
      let opened = 0;
      const churn = Array.from({ length: 100 }, async () => {
        while (!stop) {
          await new Promise<void>((resolve) => {
            const s = net.connect({ port: p.admin, host: '127.0.0.1', localAddress: '127.0.0.2' });
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            s.on('connect', () => {
              opened++;
              if (stop) s.destroy();
              else s.write('GET /heal');
            });
          });
        }
      });
      t.after(async () => {
        stop = true;
        await Promise.all(churn);
      });
      await waitFor(() => opened >= 500, 10_000, 'the churn to be under way');
      for (let i = 0; i < 5; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.get(
            {
              host: '127.0.0.1',
              port: p.admin,
              path: i % 2 ? '/readyz' : '/healthz',
              agent: false,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
        });
        assert.equal(status, 200);
      }
      t.diagnostic(`${opened} connections of the churning peer so far`);
    });
  });
}

/** A loopback server whose accepted sockets go to `slots`; returns a client connector. */
async function slotServer(t: TestContext, slots: ConnectionSlots) {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    if (slots.admit(s)) accepted.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const clients: net.Socket[] = [];
  t.after(() => {
    slots.closeAll();
    for (const c of clients) c.destroy();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    accepted,
    /** Connects and resolves with the client and the server's socket (undefined if refused). */
    async connect(
      from = '127.0.0.1',
    ): Promise<{ client: net.Socket; server: net.Socket | undefined }> {
      const before = accepted.length;
      const client = net.connect({ port, host: '127.0.0.1', localAddress: from });
      client.on('error', () => {});
      clients.push(client);
      await once(client, 'connect');
      await waitFor(
        () => accepted.length > before || slots.refused > 0 || client.destroyed,
        5000,
        'the accept',
      );
      return { client, server: accepted[before] };
    },
  };
}

describe('ConnectionSlots', () => {
  const limits = { max: 2, headersMs: 60_000, keepAliveMs: 60_000, busyMs: 60_000, sweepMs: 20 };

  test('full: the connection idle the longest makes room; all busy: the newcomer is closed', async (t) => {
    const slots = new ConnectionSlots(limits);
    const s = await slotServer(t, slots);
    const a = await s.connect();
    const b = await s.connect();
    slots.busy(a.server as net.Socket);
    // a is busy, b idle: c takes b's slot.
    const c = await s.connect();
    await closedWithin(b.client, 5000);
    assert.equal(a.client.destroyed, false, 'a busy connection is never closed for a new one');
    assert.equal(slots.evicted, 1);
    // c was idle since its accept, a idle since now: a newcomer closes c, the longer idle.
    slots.idle(a.server as net.Socket);
    const d = await s.connect();
    await closedWithin(c.client, 5000);
    assert.equal(a.client.destroyed, false);
    // a and d busy: the next one is refused and closed.
    slots.busy(a.server as net.Socket);
    slots.busy(d.server as net.Socket);
    const e = await s.connect();
    assert.equal(e.server, undefined);
    await closedWithin(e.client, 5000);
    assert.equal(slots.refused, 1);
    assert.equal(slots.size, 2);
  });

  test('full: the address holding the most idle slots loses one first, not the longest idle', async (t) => {
    const slots = new ConnectionSlots({ ...limits, max: 4 });
    const s = await slotServer(t, slots);
    // The probe's address (127.0.0.2) holds one slot, idle the longest; a peer on 127.0.0.1 holds
    // three and opens more: it closes its own, oldest first.
    const probe = await s.connect('127.0.0.2');
    const peer = [await s.connect(), await s.connect(), await s.connect()];
    await s.connect();
    await closedWithin(peer[0]?.client as net.Socket, 5000);
    await s.connect();
    await closedWithin(peer[1]?.client as net.Socket, 5000);
    assert.equal(probe.client.destroyed, false, 'the other address keeps its slot');
    assert.equal(slots.evicted, 2);
  });

  test('timeouts: no first request within headersMs, idle past keepAliveMs, busy past busyMs', async (t) => {
    const slots = new ConnectionSlots({
      max: 8,
      headersMs: 150,
      keepAliveMs: 300,
      busyMs: 450,
      sweepMs: 20,
    });
    const s = await slotServer(t, slots);
    const silent = await s.connect();
    const served = await s.connect();
    const busy = await s.connect();
    slots.busy(served.server as net.Socket);
    slots.idle(served.server as net.Socket);
    slots.busy(busy.server as net.Socket);
    const order: string[] = [];
    const closed = [
      closedWithin(silent.client, 5000).then(() => order.push('silent')),
      closedWithin(served.client, 5000).then(() => order.push('served')),
      closedWithin(busy.client, 5000).then(() => order.push('busy')),
    ];
    await Promise.all(closed);
    assert.deepEqual(order, ['silent', 'served', 'busy']);
    assert.equal(slots.size, 0);
  });
});
