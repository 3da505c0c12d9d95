// Certificates made by the test itself (selfsigned, from npm: no system openssl): a CA, and
// certificates it signs for given DNS names, written to a temporary directory removed in t.after.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { generate } from 'selfsigned';

export interface Pem {
  cert: string;
  key: string;
}

/** A certificate and key as PEM text, and where they were written. */
export interface CertFiles extends Pem {
  certFile: string;
  keyFile: string;
}

export async function makeCa(cn = 'switchyard test CA'): Promise<Pem> {
  const ca = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/** A certificate for `names` (DNS SANs; the first is the CN), signed by `ca`. */
export async function makeCert(
  ca: Pem,
  names: string[],
  options: { notAfter?: Date; client?: boolean } = {},
): Promise<Pem> {
  const c = await generate([{ name: 'commonName', value: names[0] ?? 'client' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca,
    ...(options.notAfter ? { notAfterDate: options.notAfter } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      ...(names.length > 0
        ? [
            {
              name: 'subjectAltName' as const,
              altNames: names.map((value) => ({ type: 2 as const, value })),
            },
          ]
        : []),
    ],
  });
  return { cert: c.cert, key: c.private };
}

/** A temporary directory, removed in t.after. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `pem` as NAME.pem and NAME.key in `dir`. */
export function writePem(dir: string, name: string, pem: Pem): CertFiles {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key);
  return { ...pem, certFile, keyFile };
}
