// The files of TLS blocks: read, checked, and refused with the key named (start, --check, reload).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createProxy } from '../../src/api.ts';
import { parseConfig } from '../../src/config/load.ts';
import { readTlsFiles } from '../../src/config/tls-files.ts';
import { ConfigError } from '../../src/errors.ts';
import { formatMetrics } from '../../src/observability/metrics.ts';
import { FRONTEND_STATS } from '../../src/stats.ts';
import { makeCa, makeCert, tempDir, writePem } from '../support/certs.ts';
import { emptyOf } from '../support/stats.ts';

function config(certificates: { cert: string; key: string }[], server?: Record<string, unknown>) {
  return parseConfig({
    frontends: [{ name: 'https', listen: '127.0.0.1:0', backend: 'app', tls: { certificates } }],
    backends: [
      {
        name: 'app',
        servers: [{ name: 'a', address: '127.0.0.1:1', ...(server ? { tls: server } : {}) }],
      },
    ],
  });
}

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'SWITCHYARD_ERR_INVALID_CONFIG');
    return err.problems;
  }
  assert.fail('no ConfigError');
}

test('names, expiry and serial are read off the certificate', async (t) => {
  const dir = tempDir(t);
  const ca = await makeCa();
  const notAfter = new Date(Date.now() + 3 * 24 * 3600 * 1000);
  const files = writePem(dir, 'w', await makeCert(ca, ['*.W.example.com', 'x.org'], { notAfter }));
  const tls = readTlsFiles(config([{ cert: files.certFile, key: files.keyFile }]));
  const [c] = tls.frontends.get('https')?.certificates ?? [];
  assert.deepEqual(c?.names, ['*.w.example.com', 'x.org']);
  assert.ok(Math.abs((c?.notAfter ?? 0) - notAfter.getTime()) < 2000);
  assert.match(c?.serial ?? '', /^[0-9A-F]+$/);
});

test('a runtime without X509Certificate.validToDate (Node 20) reads the expiry off validTo', async (t) => {
  const dir = tempDir(t);
  const ca = await makeCa();
  const notAfter = new Date(Date.now() + 3 * 24 * 3600 * 1000);
  const files = writePem(dir, 'w', await makeCert(ca, ['w.example.com'], { notAfter }));
  const own = Object.getOwnPropertyDescriptor(X509Certificate.prototype, 'validToDate');
  assert.ok(own, 'validToDate is a getter of the prototype here');
  Object.defineProperty(X509Certificate.prototype, 'validToDate', {
    get: () => undefined,
    configurable: true,
  });
  t.after(() => Object.defineProperty(X509Certificate.prototype, 'validToDate', own));
  const tls = readTlsFiles(config([{ cert: files.certFile, key: files.keyFile }]));
  const [c] = tls.frontends.get('https')?.certificates ?? [];
  assert.ok(Math.abs((c?.notAfter ?? 0) - notAfter.getTime()) < 2000);
});

test('every bad file is a problem naming its key: unreadable, missing, not PEM, wrong key', async (t) => {
  const dir = tempDir(t);
  const ca = await makeCa();
  const a = writePem(dir, 'a', await makeCert(ca, ['a.example.com']));
  const b = writePem(dir, 'b', await makeCert(ca, ['b.example.com']));
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  const locked = join(dir, 'locked.key');
  writeFileSync(locked, a.key);
  chmodSync(locked, 0);
  const asRoot = process.getuid?.() === 0; // root reads a mode-0 file anyway
  const got = problems(() =>
    readTlsFiles(
      config(
        [
          { cert: a.certFile, key: b.keyFile },
          { cert: join(dir, 'missing.pem'), key: a.keyFile },
          { cert: garbage, key: a.keyFile },
          { cert: a.certFile, key: locked },
        ],
        { ca: garbage },
      ),
    ),
  );
  assert.match(
    got[0] ?? '',
    /^frontends\.0\.tls\.certificates\.0\.key: .*b\.key is not the key of .*a\.pem$/,
  );
  assert.match(
    got[1] ?? '',
    /^frontends\.0\.tls\.certificates\.1\.cert: cannot read .*missing\.pem \(ENOENT\)$/,
  );
  assert.match(
    got[2] ?? '',
    /^frontends\.0\.tls\.certificates\.2\.cert: .*garbage\.pem holds no PEM certificate$/,
  );
  const rest = asRoot ? got.slice(3) : got.slice(4);
  if (!asRoot)
    assert.match(got[3] ?? '', /certificates\.3\.key: cannot read .*locked\.key \(EACCES\)$/);
  assert.deepEqual(
    rest.map((p) => p.split(':')[0]),
    ['backends.0.servers.0.tls.ca'],
  );
});

test('a client certificate needs both cert and key (schema)', () => {
  const got = problems(() =>
    parseConfig({
      frontends: [{ name: 'f', listen: '127.0.0.1:0', backend: 'app' }],
      backends: [
        { name: 'app', servers: [{ name: 'a', address: '127.0.0.1:1', tls: { cert: '/x' } }] },
      ],
    }),
  );
  assert.deepEqual(got, [
    'backends.0.servers.0.tls.key: required: a client certificate needs both cert and key',
  ]);
});

test('the expiry gauge: seconds to each certificate expiry, by frontend and cert', () => {
  const expiresAt = Date.now() + 1000 * 1000;
  const text = formatMetrics({
    frontends: {
      https: {
        ...emptyOf(FRONTEND_STATS),
        listen: '127.0.0.1:443',
        backend: 'app',
        tlsCertificates: [{ name: '/etc/site.pem', expiresAt }],
      },
    },
    backends: {},
  });
  const m =
    /switchyard_tls_certificate_expiry_seconds\{frontend="https",cert="\/etc\/site\.pem"\} (\d+)/.exec(
      text,
    );
  assert.ok(
    m,
    text
      .split('\n')
      .filter((l) => l.includes('tls'))
      .join('\n'),
  );
  assert.ok(Math.abs(Number(m[1]) - 1000) <= 2);
  assert.match(
    text,
    /switchyard_connections_rejected_total\{frontend="https",reason="tls_handshake"\} 0/,
  );
});

test('a certificate expiring within 14 days is a warning at start', async (t) => {
  const dir = tempDir(t);
  const ca = await makeCa();
  const soon = writePem(
    dir,
    'soon',
    await makeCert(ca, ['a.example.com'], {
      notAfter: new Date(Date.now() + 3 * 24 * 3600 * 1000),
    }),
  );
  const later = writePem(dir, 'later', await makeCert(ca, ['b.example.com']));
  const lines: { msg: string; cert?: string }[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const handle = await createProxy(
    config([
      { cert: later.certFile, key: later.keyFile },
      { cert: soon.certFile, key: soon.keyFile },
    ]),
    { log },
  );
  await handle.close(true);
  const warned = lines.filter((l) => /expires in/.test(l.msg));
  assert.equal(warned.length, 1, JSON.stringify(lines));
  assert.equal(warned[0]?.cert, soon.certFile);
  assert.match(warned[0]?.msg ?? '', /expires in [23] days/);
});
