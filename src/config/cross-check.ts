/**
 * The checks no single key can make: names that must exist or be unique, listeners that would
 * collide. They read the raw input defensively, so they run even when the schema found other
 * problems, and a bad file lists everything at once.
 */
import { parseHostPort } from '../units.ts';

/** `path.to.key: reason` lines for cross-key problems in a raw (unvalidated) config. */
export function crossCheck(input: unknown): string[] {
  const problems: string[] = [];
  const config = record(input);
  const backends = list(config?.backends);
  const backendNames = new Set<string>();
  backends.forEach((raw, i) => {
    const b = record(raw);
    const name = b?.name;
    if (typeof name === 'string') {
      if (backendNames.has(name))
        problems.push(`backends.${i}.name: duplicate backend name "${name}"`);
      backendNames.add(name);
    }
    if (b !== null && list(b.servers).length === 0 && b.discover === undefined) {
      problems.push(`backends.${i}.servers: a backend needs at least one server, or discover`);
    }
    const serverNames = new Set<string>();
    list(b?.servers).forEach((s, j) => {
      // The PROXY header goes before the first byte on the wire: under TLS it would have to
      // precede the handshake, which the TLS socket does not do yet.
      if (record(s)?.sendProxy !== undefined && record(s)?.tls !== undefined) {
        problems.push(
          `backends.${i}.servers.${j}.sendProxy: not supported together with tls yet (the header would go inside TLS)`,
        );
      }
      const serverName = record(s)?.name;
      if (typeof serverName !== 'string') return;
      if (serverNames.has(serverName)) {
        problems.push(`backends.${i}.servers.${j}.name: duplicate server name "${serverName}"`);
      }
      serverNames.add(serverName);
    });
  });
  const frontendNames = new Set<string>();
  const listens = new Map<string, number>();
  list(config?.frontends).forEach((raw, i) => {
    const f = record(raw);
    if (f?.proxyProtocol !== undefined && f?.tls !== undefined) {
      problems.push(
        `frontends.${i}.proxyProtocol: not supported together with tls yet (the header comes before the handshake)`,
      );
    }
    const name = f?.name;
    if (typeof name === 'string') {
      if (frontendNames.has(name)) {
        problems.push(`frontends.${i}.name: duplicate frontend name "${name}"`);
      }
      frontendNames.add(name);
    }
    if (f !== null && 'from' in f) {
      problems.push(
        `frontends.${i}.from: trusted PROXY header senders belong in proxyProtocol: { from: [...] }` +
          (f.proxyProtocol === undefined ? ', and this frontend has no proxyProtocol' : ''),
      );
    }
    const backend = f?.backend;
    if (typeof backend === 'string' && !backendNames.has(backend)) {
      problems.push(`frontends.${i}.backend: no backend named "${backend}"`);
    }
    if (f?.sni !== undefined && f?.tls !== undefined) {
      problems.push(
        `frontends.${i}.sni: not together with tls (SNI routing forwards the TLS untouched; a terminating frontend picks a certificate by SNI)`,
      );
    }
    if (f !== null && f.handshakeTimeout !== undefined && f.sni === undefined) {
      problems.push(
        `frontends.${i}.handshakeTimeout: only for a frontend with sni` +
          (f.tls !== undefined ? ' (a tls frontend has tls.handshakeTimeout)' : ''),
      );
    }
    const matches = new Map<string, number>();
    list(f?.sni).forEach((raw, j) => {
      const rule = record(raw);
      const target = rule?.backend;
      if (typeof target === 'string' && !backendNames.has(target)) {
        problems.push(`frontends.${i}.sni.${j}.backend: no backend named "${target}"`);
      }
      if (typeof rule?.match !== 'string') return;
      const match = rule.match.toLowerCase();
      const first = matches.get(match);
      if (first !== undefined) {
        problems.push(
          `frontends.${i}.sni.${j}.match: "${match}" is already frontends.${i}.sni.${first}`,
        );
      } else matches.set(match, j);
    });
    const key = listenKey(f?.listen);
    if (key === null) return;
    const other = listens.get(key);
    if (other !== undefined) {
      problems.push(
        `frontends.${i}.listen: ${key} is already the listen address of frontends.${other}`,
      );
    } else listens.set(key, i);
  });
  return problems;
}

/** The listen address as a comparable key; null when unparsable or port 0 (never collides). */
function listenKey(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  try {
    const { host, port } = parseHostPort(value, 'listen');
    return port === 0 ? null : `${host}:${port}`;
  } catch {
    return null; // the schema reports it
  }
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
