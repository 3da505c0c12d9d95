/**
 * Reads and checks the files a config's `tls` blocks name (certificates, keys, CA bundles), so
 * that a start, `--check` and a reload (SIGHUP) refuse a bad file with the key named, before any
 * listener changes: `frontends.0.tls.certificates.1.key: cannot read /etc/x.key (EACCES)`.
 * The result is what the engines take (src/tls.ts): PEM text, each certificate's DNS names (for
 * SNI) and expiry. Files are read again on every call: a reload picks up renewed certificates.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { CertificateMaterial, TlsClientMaterial, TlsServerMaterial } from '../tls.ts';
import { type Config, echo, type FrontendTlsConfig, type ServerTlsConfig } from './schema.ts';

/** A PEM file larger than this is no certificate, key or bundle worth reading. */
const MAX_PEM_BYTES = 1024 * 1024;

/** Every TLS block of a config, read: frontends by name, servers by `serverKey`. */
export interface TlsFiles {
  readonly frontends: ReadonlyMap<string, TlsServerMaterial>;
  readonly servers: ReadonlyMap<string, TlsClientMaterial>;
}

/** The key of a server in TlsFiles.servers. */
export function serverKey(backend: string, server: string): string {
  return `${backend}/${server}`;
}

/** Reads every file of `config`'s TLS blocks. Throws ConfigError listing every problem. */
export function readTlsFiles(config: Config): TlsFiles {
  const problems: string[] = [];
  const frontends = new Map<string, TlsServerMaterial>();
  const servers = new Map<string, TlsClientMaterial>();
  config.frontends.forEach((f, i) => {
    if (!f.tls) return;
    const m = readServerTls(f.tls, `frontends.${i}.tls`, problems);
    if (m) frontends.set(f.name, m);
  });
  config.backends.forEach((b, i) => {
    b.servers.forEach((s, j) => {
      if (!s.tls) return;
      const m = readClientTls(s.tls, `backends.${i}.servers.${j}.tls`, problems);
      if (m) servers.set(serverKey(b.name, s.name), m);
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return { frontends, servers };
}

/**
 * The certificate's expiry, ms since the epoch. `validToDate` is Node >= 22.10 (and Bun); the
 * `validTo` text (`Dec  3 08:21:24 2027 GMT`), which every runtime has, parses to the same time.
 */
function notAfter(x509: X509Certificate): number {
  return (x509.validToDate as Date | undefined)?.getTime() ?? Date.parse(x509.validTo);
}

function readServerTls(
  tls: FrontendTlsConfig,
  path: string,
  problems: string[],
): TlsServerMaterial | null {
  const before = problems.length;
  const certificates: CertificateMaterial[] = [];
  tls.certificates.forEach((c, k) => {
    const at = `${path}.certificates.${k}`;
    const cert = readPem(c.cert, `${at}.cert`, problems);
    const key = readPem(c.key, `${at}.key`, problems);
    if (cert === null || key === null) return;
    const x509 = parseCert(cert, `${at}.cert`, c.cert, problems);
    const keyObject = parseKey(key, `${at}.key`, c.key, problems);
    if (x509 === null || keyObject === null) return;
    if (!x509.checkPrivateKey(keyObject)) {
      problems.push(`${at}.key: ${echo(c.key)} is not the key of ${echo(c.cert)}`);
      return;
    }
    certificates.push({
      cert,
      key,
      names: dnsNames(x509),
      notAfter: notAfter(x509),
      serial: x509.serialNumber,
      file: c.cert,
    });
  });
  let clientCa: string | null = null;
  if (tls.clientCa !== undefined) {
    clientCa = readPem(tls.clientCa, `${path}.clientCa`, problems);
    if (clientCa !== null) parseCert(clientCa, `${path}.clientCa`, tls.clientCa, problems);
  }
  if (problems.length > before) return null;
  return {
    certificates,
    alpn: tls.alpn ?? [],
    minVersion: tls.minVersion,
    clientCa,
    handshakeTimeoutMs: tls.handshakeTimeout,
  };
}

function readClientTls(
  tls: ServerTlsConfig,
  path: string,
  problems: string[],
): TlsClientMaterial | null {
  const before = problems.length;
  const read = (file: string | undefined, key: string) =>
    file === undefined ? null : readPem(file, `${path}.${key}`, problems);
  const ca = read(tls.ca, 'ca');
  if (ca !== null) parseCert(ca, `${path}.ca`, tls.ca as string, problems);
  const cert = read(tls.cert, 'cert');
  const key = read(tls.key, 'key');
  if (cert !== null && key !== null) {
    const x509 = parseCert(cert, `${path}.cert`, tls.cert as string, problems);
    const keyObject = parseKey(key, `${path}.key`, tls.key as string, problems);
    if (x509 && keyObject && !x509.checkPrivateKey(keyObject)) {
      problems.push(
        `${path}.key: ${echo(tls.key as string)} is not the key of ${echo(tls.cert as string)}`,
      );
    }
  }
  if (problems.length > before) return null;
  return { ca, servername: tls.servername ?? null, verify: tls.verify, cert, key };
}

/** The file's text (at most MAX_PEM_BYTES), or null with a problem naming `at`. */
function readPem(file: string, at: string, problems: string[]): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    problems.push(
      `${at}: cannot read ${echo(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return null;
  }
  try {
    const buf = Buffer.allocUnsafe(MAX_PEM_BYTES + 1);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_PEM_BYTES) {
        problems.push(`${at}: ${echo(file)} is larger than ${MAX_PEM_BYTES} bytes; not PEM`);
        return null;
      }
    }
    return buf.toString('utf8', 0, total);
  } catch (err) {
    problems.push(
      `${at}: cannot read ${echo(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return null;
  } finally {
    closeSync(fd);
  }
}

function parseCert(
  pem: string,
  at: string,
  file: string,
  problems: string[],
): X509Certificate | null {
  try {
    return new X509Certificate(pem);
  } catch {
    problems.push(`${at}: ${echo(file)} holds no PEM certificate`);
    return null;
  }
}

function parseKey(pem: string, at: string, file: string, problems: string[]): KeyObject | null {
  try {
    return createPrivateKey(pem);
  } catch {
    problems.push(`${at}: ${echo(file)} holds no PEM private key (or it is encrypted)`);
    return null;
  }
}

/** The DNS names a certificate is for: its SAN dNSNames, else its subject's CN. Lower case. */
function dnsNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName ?? '';
  const names = san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (names.length > 0) return names;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}
