/**
 * Name resolution for the core: `discover` names (A/AAAA or SRV records, through `node:dns`'s
 * Resolver and the configured nameservers) and static servers given by hostname (the system's
 * getaddrinfo, as before). One Dns per process; Discovery (discovery.ts) decides when to ask.
 *
 * No DNS client of our own: the Resolver is c-ares on both runtimes (measured, Node 26 and Bun
 * 1.4.5): `setServers` with a port, `{ ttl: true }` on resolve4/resolve6, UDP with a retry over
 * TCP when an answer is truncated (300 A records came back whole), ETIMEOUT after
 * `timeout`×`tries` (doubling), EBADRESP for garbage, ECANCELLED on cancel(). An empty answer is
 * ENODATA on Node and ENOTFOUND on Bun: both are "no records" here. `resolveSrv` gives no TTL on
 * either, so an SRV answer's TTL is its targets' A/AAAA TTL.
 *
 * One Resolver per resolution, not one per process: Bun's Resolver keeps answers for their TTL
 * (c-ares' query cache; measured: the same instance answered the old address for the whole 30 s
 * TTL, a new one asked the server), so a record change took TTL, not `every`, to reach traffic.
 * A Resolver is a small c-ares channel; a few per `every` per backend cost nothing measurable.
 */
import { promises as dns, type SrvRecord } from 'node:dns';
import { defaults } from '../defaults.ts';
import { formatHostPort, type HostPort, ipFamily } from '../units.ts';

/** One address a name resolved to, with what SRV says of it (1 and regular otherwise). */
export interface Resolved {
  host: string;
  port: number;
  weight: number;
  /** A SRV record of a higher (less preferred) priority than the lowest in the answer. */
  backup: boolean;
}

/** A resolution: the addresses, and the shortest TTL among them (ms; null when unknown). */
export interface Answer {
  addresses: Resolved[];
  ttlMs: number | null;
}

/** Codes that mean "the name has no such records" rather than "DNS failed". */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

/** A resolution that failed; `code` is c-ares' (ETIMEOUT, ESERVFAIL, EBADRESP, ...) or ENODATA. */
export class DnsError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'DnsError';
    this.code = code;
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

/** The process's resolver: nameservers from `resolvers`, or the system's (/etc/resolv.conf). */
export class Dns {
  private servers: string;
  /** Resolvers with a query in flight, cancelled by close(). */
  private readonly inFlight = new Set<dns.Resolver>();

  constructor(resolvers?: readonly HostPort[]) {
    this.servers = serverList(resolvers);
  }

  /** Uses other nameservers from the next resolution on (a reload); those in flight finish. */
  setResolvers(resolvers?: readonly HostPort[]): void {
    this.servers = serverList(resolvers);
  }

  /** Runs `ask` with a Resolver of its own (see the file comment), tracked until it settles. */
  private async round<T>(ask: (r: dns.Resolver) => Promise<T>): Promise<T> {
    const resolver = newResolver(this.servers);
    this.inFlight.add(resolver);
    try {
      return await ask(resolver);
    } finally {
      this.inFlight.delete(resolver);
    }
  }

  /**
   * A and AAAA records of `name`, each address on `port`. The two are asked at once; the answer
   * is whatever either gave (an IPv4-only name has no AAAA: that is no failure). Throws DnsError
   * when neither gave an address.
   */
  addresses(name: string, port: number): Promise<Answer> {
    return this.round((r) => addressesWith(r, name, port));
  }

  /**
   * SRV records of `name`: each target's addresses (A/AAAA) on the record's port, with its
   * weight; records of the lowest priority are regular servers, the others backups. A target
   * of "." (the service is not offered) or port 0 is left out, as is a target that does not
   * resolve. At most `maxTargets` targets are asked. Throws DnsError when no address is left.
   */
  srv(name: string, maxTargets: number = defaults.maxDiscoveredServers): Promise<Answer> {
    return this.round((r) => srvWith(r, name, maxTargets));
  }

  /**
   * The system's resolution of a static server's hostname (getaddrinfo: /etc/hosts, then DNS),
   * as the per-connection lookup did before, now asked every few seconds instead. TTL unknown.
   */
  async lookup(name: string, port: number): Promise<Answer> {
    let found: { address: string; family: number }[];
    try {
      found = await dns.lookup(name, { all: true });
    } catch (err) {
      throw failure(name, [{ status: 'rejected', reason: err }]);
    }
    const addresses = found.filter((a) => ipFamily(a.address) !== 0);
    if (addresses.length === 0) throw new DnsError('ENODATA', `${name}: no address`);
    return { addresses: addresses.map((a) => resolved(a.address, port)), ttlMs: null };
  }

  /** Cancels the queries in flight (they fail with ECANCELLED): the proxy is closing. */
  close(): void {
    for (const resolver of this.inFlight) resolver.cancel();
    this.inFlight.clear();
  }
}

/**
 * A and AAAA records of `name`, asked at once; the answer is whatever either gave (an IPv4-only
 * name has no AAAA: that is no failure). Throws DnsError when neither gave an address.
 */
async function addressesWith(r: dns.Resolver, name: string, port: number): Promise<Answer> {
  if (ipFamily(name) !== 0) return { addresses: [resolved(name, port)], ttlMs: null };
  const [v4, v6] = await Promise.allSettled([
    r.resolve4(name, { ttl: true }),
    r.resolve6(name, { ttl: true }),
  ]);
  const addresses: Resolved[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  for (const result of [v4, v6]) {
    if (result.status !== 'fulfilled' || !Array.isArray(result.value)) continue;
    for (const record of result.value) {
      if (typeof record?.address !== 'string' || ipFamily(record.address) === 0) continue;
      addresses.push(resolved(record.address, port));
      if (Number.isFinite(record.ttl)) ttl = Math.min(ttl, record.ttl * 1000);
    }
  }
  if (addresses.length > 0) return { addresses, ttlMs: Number.isFinite(ttl) ? ttl : null };
  throw failure(name, [v4, v6]);
}

/** SRV records of `name` and their targets' addresses (see Dns.srv). */
async function srvWith(r: dns.Resolver, name: string, maxTargets: number): Promise<Answer> {
  let records: SrvRecord[];
  try {
    records = await r.resolveSrv(name);
  } catch (err) {
    throw failure(name, [{ status: 'rejected', reason: err }]);
  }
  const usable = (Array.isArray(records) ? records : []).filter(
    (record) =>
      typeof record?.name === 'string' &&
      record.name !== '' &&
      record.name !== '.' &&
      Number.isInteger(record.port) &&
      record.port > 0 &&
      record.port <= 65535,
  );
  if (usable.length === 0) throw new DnsError('ENODATA', `${name}: no usable SRV record`);
  const best = Math.min(...usable.map((record) => record.priority));
  usable.sort((a, b) => a.priority - b.priority || a.name.localeCompare(b.name));
  const targets = [...new Set(usable.map((record) => record.name))].slice(0, maxTargets);
  const answers = new Map<string, Answer | null>();
  await Promise.all(
    targets.map(async (target) => {
      try {
        answers.set(target, await addressesWith(r, target, 0));
      } catch {
        answers.set(target, null); // one target down is not the whole answer down
      }
    }),
  );
  const addresses: Resolved[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  for (const record of usable) {
    const answer = answers.get(record.name);
    if (!answer) continue;
    if (answer.ttlMs !== null) ttl = Math.min(ttl, answer.ttlMs);
    for (const a of answer.addresses) {
      addresses.push({
        host: a.host,
        port: record.port,
        // Our weights are 1..1000; SRV's 0 ("rarely") is taken as the smallest share, 1.
        weight: Math.min(1000, Math.max(1, record.weight | 0)),
        backup: record.priority !== best,
      });
    }
  }
  if (addresses.length === 0) throw new DnsError('ENODATA', `${name}: no SRV target resolved`);
  return { addresses, ttlMs: Number.isFinite(ttl) ? ttl : null };
}

function resolved(host: string, port: number): Resolved {
  return { host, port, weight: 1, backup: false };
}

/** The DnsError for results none of which gave an address: a real failure wins over "no records". */
function failure(name: string, results: PromiseSettledResult<unknown>[]): DnsError {
  const codes = results.map((r) => (r.status === 'rejected' ? codeOf(r.reason) : 'ENODATA'));
  const code = codes.find((c) => !NO_RECORDS.has(c)) ?? 'ENODATA';
  return new DnsError(code, `${name}: ${NO_RECORDS.has(code) ? 'no records' : code}`);
}

function serverList(resolvers?: readonly HostPort[]): string {
  return (resolvers ?? []).map((r) => formatHostPort(r.host, r.port)).join(',');
}

function newResolver(servers: string): dns.Resolver {
  const resolver = new dns.Resolver({ timeout: defaults.dnsTimeoutMs, tries: defaults.dnsTries });
  if (servers !== '') resolver.setServers(servers.split(','));
  return resolver;
}
