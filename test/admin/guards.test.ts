// The admin server's guards, on each engine's runtime: the Host allow-list (DNS rebinding), the
// browser security headers, the token that state-changing routes need even on loopback, and a
// bad request target answered 400 with rate-limited log lines.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { parseResponse, rawRequest, startAdminProcess } from '../support/admin-process.ts';
import { inParallel, waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';

const FOREIGN = 'rebind.attacker.example';

for (const engine of ENGINES) {
  describe(`admin guards (${engine} engine)`, () => {
    test('a foreign Host is refused (421); loopback names, IP addresses and allowedHosts are served', async (t) => {
      const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
      const at = (host: string, line = 'GET /api/connections HTTP/1.1') =>
        rawRequest(p.admin, `${line}\r\nHost: ${host}\r\nOrigin: http://${host}`);
      for (const line of [
        'GET /api/connections HTTP/1.1',
        'DELETE /api/connections/1 HTTP/1.1',
        'GET / HTTP/1.1',
        'GET /healthz HTTP/1.1',
      ]) {
        const res = await at(`${FOREIGN}:${p.admin}`, line);
        assert.equal(res.status, 421, `${line} with Host: ${FOREIGN}`);
        assert.doesNotMatch(res.body, /127\.0\.0\.1/);
      }
      assert.equal((await at(FOREIGN)).status, 421, 'without a port too');
      // The listen address, the loopback names, and any IP address (a name can be rebound, an
      // address cannot): the kubelet probes with Host: POD_IP:PORT.
      for (const host of [
        `127.0.0.1:${p.admin}`,
        `localhost:${p.admin}`,
        `LocalHost:${p.admin}`,
        `[::1]:${p.admin}`,
        '10.1.2.3:9100',
        '[fd00::7]:9100',
      ]) {
        assert.equal((await at(host)).status, 200, `Host: ${host}`);
      }

      const named = await startAdminProcess(
        t,
        { listen: '127.0.0.1:0', allowedHosts: ['admin.example'] },
        engine,
      );
      const on = (host: string) =>
        rawRequest(named.admin, `GET /healthz HTTP/1.1\r\nHost: ${host}`);
      assert.equal((await on(`admin.example:${named.admin}`)).status, 200);
      assert.equal((await on('ADMIN.example')).status, 200);
      assert.equal((await on('other.example')).status, 421);
      assert.equal((await on(`localhost:${named.admin}`)).status, 200, 'loopback names stay');

      const any = await startAdminProcess(
        t,
        { listen: '127.0.0.1:0', allowedHosts: ['*'] },
        engine,
      );
      assert.equal(
        (await rawRequest(any.admin, `GET /healthz HTTP/1.1\r\nHost: ${FOREIGN}`)).status,
        200,
        '* allows every host',
      );
    });

    test('the page and every answer carry the browser security headers', async (t) => {
      const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
      for (const path of ['/', '/healthz', '/api/connections', '/nope']) {
        const res = await rawRequest(p.admin, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1`);
        assert.equal(res.headers['x-frame-options'], 'DENY', path);
        assert.equal(res.headers['referrer-policy'], 'no-referrer', path);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
        assert.match(res.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, path);
      }
      const page = await rawRequest(p.admin, 'GET / HTTP/1.1\r\nHost: 127.0.0.1');
      const csp = page.headers['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
      assert.match(csp, /connect-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    });

    test('DELETE needs the token even on loopback, unless allowChangesWithoutToken', async (t) => {
      const open = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
      const del = (port: number, auth = '') =>
        rawRequest(port, `DELETE /api/connections/1 HTTP/1.1\r\nHost: 127.0.0.1${auth}`);
      const refused = await del(open.admin);
      assert.equal(refused.status, 403);
      assert.match(refused.body, /admin\.token/);
      assert.match(refused.body, /admin\.allowChangesWithoutToken/);
      // Reading stays open on loopback.
      const read = await rawRequest(open.admin, 'GET /api/connections HTTP/1.1\r\nHost: 127.0.0.1');
      assert.equal(read.status, 200);

      const allowed = await startAdminProcess(
        t,
        { listen: '127.0.0.1:0', allowChangesWithoutToken: true },
        engine,
      );
      assert.equal((await del(allowed.admin)).status, 404, 'past the check: no such connection');

      const tokened = await startAdminProcess(t, { listen: '127.0.0.1:0', token: 'tk' }, engine);
      assert.equal((await del(tokened.admin)).status, 401);
      assert.equal((await del(tokened.admin, '\r\nAuthorization: Bearer tk')).status, 404);
    });

    test('GET //[ x1,000 and broken request lines: 400s, 10 log lines and a summary', async (t) => {
      const p = await startAdminProcess(t, { listen: '127.0.0.1:0' }, engine);
      // 10 connections of 100 pipelined requests each.
      const statuses = await inParallel(10, 10, async () => {
        const s = net.connect(p.admin, '127.0.0.1');
        s.on('error', () => {});
        await once(s, 'connect');
        s.write('GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(99));
        s.end('GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        await once(s, 'close');
        const text = Buffer.concat(chunks).toString('latin1');
        return text.match(/^HTTP\/1\.1 \d{3}/gm) ?? [];
      });
      const all = statuses.flat();
      assert.equal(all.length, 1000);
      assert.deepEqual(new Set(all), new Set(['HTTP/1.1 400']));
      const broken = await rawRequest(p.admin, 'NOT HTTP AT ALL');
      assert.equal(broken.status, 400);
      assert.equal(parseResponse('').status, 0);

      const bad = () => p.logs.filter((l) => l.msg === 'admin bad request');
      const summary = () =>
        p.logs.filter((l) => l.key === 'admin bad request' && typeof l.suppressed === 'number');
      const counted = () =>
        bad().length + summary().reduce((n, l) => n + (l.suppressed as number), 0);
      // Every bad request (the broken line too) is written or counted in a summary line.
      await waitFor(() => counted() === 1001, 10_000, 'the summary lines of 1,001 bad requests');
      t.diagnostic(`${bad().length} lines and ${summary().length} summary line(s)`);
      // One window of the limiter (10 lines, then one summary) when the requests take under a
      // second, as they do here; a slower run spans more windows, 11 lines each.
      assert.ok(summary().length >= 1);
      assert.ok(bad().length <= 10 * summary().length, `${bad().length} lines`);
      assert.ok(bad().length + summary().length <= 33, 'a few lines for 1,001 bad requests');
      assert.equal(
        p.logs.filter((l) => (l.level as number) >= 50).length,
        0,
        'nothing at error level',
      );
    });
  });
}
