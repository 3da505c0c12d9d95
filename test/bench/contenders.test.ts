// The config the bench gives switchyard for the PROXY protocol and TLS scenarios is one
// switchyard accepts, with the files it names readable and matching.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeCert } from '../../bench/certs.ts';
import { switchyardConfig } from '../../bench/contenders.ts';
import { parseConfigYaml } from '../../src/config/load.ts';
import { readTlsFiles } from '../../src/config/tls-files.ts';

test('plain: one frontend and one server, no PROXY header, no TLS', () => {
  const c = parseConfigYaml(switchyardConfig(8080, 9090, { kind: 'plain' }));
  assert.equal(c.frontends[0]?.proxyProtocol, undefined);
  assert.equal(c.frontends[0]?.tls, undefined);
  assert.equal(c.frontends[0]?.maxConnections, 9000);
  assert.equal(c.backends[0]?.servers[0]?.sendProxy, undefined);
});

test('proxy-v2: accepts only v2 from clients and sends v2 to the server', () => {
  const c = parseConfigYaml(switchyardConfig(8080, 9090, { kind: 'proxy-v2' }));
  assert.equal(c.frontends[0]?.proxyProtocol?.accept, 'v2');
  assert.equal(c.backends[0]?.servers[0]?.sendProxy, 'v2');
});

test('tls: both generated certificates load as switchyard reads them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-certs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const keyType of ['ecdsa-p256', 'rsa-2048'] as const) {
    const cert = await makeCert(keyType, dir);
    const c = parseConfigYaml(switchyardConfig(8080, 9090, { kind: 'tls', cert }));
    assert.deepEqual(c.frontends[0]?.tls?.certificates, [{ cert: cert.cert, key: cert.key }]);
    const files = readTlsFiles(c);
    assert.ok(files.frontends.get('bench'), `${keyType}: TLS material read`);
  }
});

test('sni: only the rule reaches the server; the default backend is the dead port', () => {
  const c = parseConfigYaml(
    switchyardConfig(8080, 9090, { kind: 'sni', serverName: 'localhost', deadPort: 9999 }),
  );
  const f = c.frontends[0];
  assert.equal(f?.tls, undefined);
  assert.deepEqual(f?.sni, [{ match: 'localhost', backend: 'origin' }]);
  assert.equal(f?.backend, 'dead');
  const address = (name: string) => {
    const a = c.backends.find((b) => b.name === name)?.servers[0]?.address;
    return a && 'port' in a ? a.port : null;
  };
  assert.equal(address('origin'), 9090);
  assert.equal(address('dead'), 9999);
});
