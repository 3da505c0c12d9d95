// The listen backlog: at the old 511, `wrk -c2000` overflowed the accept queue (nstat
// ListenOverflows 92-1,865 a run) and the dropped SYNs came back a second later as a p99 of
// 1.41 s. A frontend queues as many pending connections as it may hold (maxConnections), as
// HAProxy does; the kernel caps it at net.core.somaxconn.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ENGINES } from '../support/proc.ts';
import { startBalancer } from '../support/proxy-process.ts';
import { balancerConfig, startEchoServer } from '../support/servers.ts';

/** The backlog of the listener on 127.0.0.1:port, as `ss -ltn` reports it (Send-Q). */
function backlogOf(port: number): number {
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  const cols = out.trim().split(/\s+/);
  return Number(cols[2]);
}

const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
const ss = ['/usr/bin/ss', '/bin/ss', '/usr/sbin/ss', '/sbin/ss'].some((p) => existsSync(p));

for (const engine of ENGINES) {
  describe(`listen backlog (${engine} engine)`, () => {
    test('a frontend queues up to its maxConnections pending connects (capped by somaxconn)', {
      skip:
        (!ss && 'no ss (iproute2) on this machine') ||
        (engine === 'bun' && 'Bun.listen takes no backlog (uSockets listens with 512)'),
    }, async (t) => {
      const echo = await startEchoServer(t);
      const config = balancerConfig([{ name: 'a', port: echo.port }]);
      (config.frontends[0] as Record<string, unknown>).maxConnections = 4096;
      const proxy = await startBalancer(t, config, engine);
      assert.equal(backlogOf(proxy.port), Math.min(4096, somaxconn));
    });
  });
}
