// The command with a TLS frontend: SIGHUP re-reads the certificate files, so new connections get
// the renewed certificate while a connection made before keeps working; a broken key file makes
// the reload refused (logged with the key named) and the running certificate stays.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { configFile, startCli } from '../faults/cli.ts';
import { makeCa, makeCert, tempDir, writePem } from '../support/certs.ts';
import { waitFor } from '../support/clients.ts';
import { ENGINES } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

function connectTls(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const c = tls.connect({ port, host: '127.0.0.1', ca, servername: 'a.example.com' }, () =>
      resolve(c),
    );
    c.once('error', reject);
  });
}

for (const engine of ENGINES) {
  describe(`TLS reload by SIGHUP (${engine} engine)`, { timeout: 60_000 }, () => {
    test('SIGHUP serves the renewed certificate to new connections; a bad key is refused', async (t) => {
      const dir = tempDir(t);
      const ca = await makeCa();
      const first = writePem(dir, 'a', await makeCert(ca, ['a.example.com']));
      const echo = await startEchoServer(t);
      const file = configFile(
        t,
        `frontends:
  - name: web
    listen: "127.0.0.1:0"
    backend: app
    tls: { certificates: [{ cert: "${first.certFile}", key: "${first.keyFile}" }] }
backends: [{ name: app, servers: [{ name: a, address: "127.0.0.1:${echo.port}" }] }]
`,
      );
      const cli = startCli(t, engine, ['--config', file, '--engine', engine]);
      const listening = await cli.line(/listening on/, 10_000);
      const port = Number(String(listening.listen).split(':').pop());
      const serialOf = (c: tls.TLSSocket) => c.getPeerCertificate().serialNumber.toUpperCase();

      const before = await connectTls(port, ca.cert);
      t.after(() => before.destroy());
      assert.equal(serialOf(before), new X509Certificate(first.cert).serialNumber);

      const renewed = writePem(dir, 'a', await makeCert(ca, ['a.example.com']));
      cli.child.kill('SIGHUP');
      await cli.line(/config reloaded/, 10_000);
      const after = await connectTls(port, ca.cert);
      assert.equal(serialOf(after), new X509Certificate(renewed.cert).serialNumber);
      after.destroy();
      // The connection made before the reload is untouched.
      before.write('still here');
      const [data] = await once(before, 'data');
      assert.equal(String(data), 'still here');

      // A key file that holds no key: the reload is refused, naming the key; the certificate stays.
      writeFileSync(join(dir, 'a.key'), 'garbage');
      cli.child.kill('SIGHUP');
      await waitFor(
        () =>
          cli.lines.some((l) => /frontends\.0\.tls\.certificates\.0\.key/.test(JSON.stringify(l))),
        10_000,
        'the refused reload naming the key',
      );
      const still = await connectTls(port, ca.cert);
      assert.equal(serialOf(still), new X509Certificate(renewed.cert).serialNumber);
      still.destroy();
      before.destroy();
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0);
    });
  });
}
