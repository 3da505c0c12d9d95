/**
 * The certificates of the TLS scenarios, made fresh for each run with `selfsigned` (a
 * devDependency: no system tool needed), and a probe that says what a client actually gets from
 * each proxy, so the report can show both proxies served the same certificate and cipher.
 */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import selfsigned from 'selfsigned';

/**
 * The only key exchange group the load clients offer. Node 26's OpenSSL prefers the hybrid
 * X25519MLKEM768, which Debian's OpenSSL 3.0 under HAProxy lacks: left to their defaults the two
 * proxies would do different key exchanges (measured: switchyard X25519MLKEM768, HAProxy X25519).
 */
export const TLS_GROUP = 'X25519';

/** The key types the handshake scenarios compare. */
export type KeyType = 'ecdsa-p256' | 'rsa-2048';

/** One certificate on disk in the two shapes the proxies read. */
export interface CertFiles {
  keyType: KeyType;
  /** PEM certificate (switchyard's `cert`). */
  cert: string;
  /** PEM private key (switchyard's `key`). */
  key: string;
  /** Certificate then key in one file (HAProxy's `crt`). */
  combined: string;
  /** SHA-256 fingerprint of the certificate, as a client sees it. */
  fingerprint: string;
}

/** Makes a self-signed certificate for `localhost` and writes it to `dir`. */
export async function makeCert(keyType: KeyType, dir: string): Promise<CertFiles> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    ...(keyType === 'ecdsa-p256'
      ? { keyType: 'ec' as const, curve: 'P-256' as const }
      : { keyType: 'rsa' as const, keySize: 2048 }),
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  const files = {
    cert: join(dir, `${keyType}.crt`),
    key: join(dir, `${keyType}.key`),
    combined: join(dir, `${keyType}.pem`),
  };
  writeFileSync(files.cert, pems.cert);
  writeFileSync(files.key, pems.private, { mode: 0o600 });
  writeFileSync(files.combined, `${pems.cert.trim()}\n${pems.private.trim()}\n`, { mode: 0o600 });
  const fingerprint = new X509Certificate(pems.cert).fingerprint256;
  return { keyType, ...files, fingerprint };
}

/** What one TLS handshake with a proxy negotiated. */
export interface Negotiated {
  protocol: string;
  cipher: string;
  /** The key exchange group (X25519, P-256...). */
  group: string;
  fingerprint: string;
}

/**
 * Handshakes once with 127.0.0.1:port, as the load clients do: no verification, and no SNI
 * unless `servername` is given.
 */
export function probeTls(port: number, servername?: string): Promise<Negotiated> {
  return new Promise((resolve, reject) => {
    const options = {
      port,
      host: '127.0.0.1',
      servername,
      rejectUnauthorized: false,
      ecdhCurve: TLS_GROUP,
    };
    const socket = tls.connect(options, () => {
      const key = socket.getEphemeralKeyInfo();
      const out: Negotiated = {
        protocol: socket.getProtocol() ?? '?',
        cipher: socket.getCipher().name,
        group: (key && 'name' in key && key.name) || (key && 'type' in key && key.type) || '?',
        fingerprint: socket.getPeerCertificate().fingerprint256 ?? '?',
      };
      socket.destroy();
      resolve(out);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS probe timed out')));
    socket.once('error', reject);
  });
}

/** One line for the log and the report: protocol, cipher, group and the certificate's start. */
export function describeNegotiated(n: Negotiated): string {
  return `${n.protocol} ${n.cipher} ${n.group}, certificate SHA-256 ${n.fingerprint.slice(0, 11)}…`;
}
