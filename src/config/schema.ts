/**
 * The shape of a switchyard config, as a zod schema. The same schema checks a YAML file
 * (`--config`) and a config object handed to `createProxy`. Durations are `500ms`/`2s`/`1m`/`1h`
 * or milliseconds, addresses `HOST:PORT`, sizes `16k`; after parsing they are milliseconds,
 * `{ host, port }` and bytes. Every default comes from src/defaults.ts.
 */
import { z } from 'zod';
import { parseCidr } from '../cidr.ts';
import { defaults, limits } from '../defaults.ts';
import {
  bufferSizeProblem,
  durationProblem,
  formatHostPort,
  type HostPort,
  ipFamily,
  isLoopbackHost,
  parseDuration,
  parseHostPort,
  parseRate,
  parseSize,
  rangeProblem,
  rateProblem,
  serverAddressProblem,
  type WholeRange,
} from '../units.ts';
import { parseAdminAddress } from './address.ts';

export const BALANCE_ALGORITHMS = ['roundrobin', 'leastconn', 'source', 'random'] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

/** PROXY protocol header versions a frontend takes (`proxyProtocol.accept`). */
export const PROXY_ACCEPT = ['v1', 'v2', 'any'] as const;
export type ProxyAccept = (typeof PROXY_ACCEPT)[number];
/** PROXY protocol header version a server is sent (`servers[].sendProxy`). */
export const PROXY_SEND = ['v1', 'v2'] as const;
export type ProxySend = (typeof PROXY_SEND)[number];

/**
 * `text` as it may appear in an error: control characters replaced, at most `max`
 * characters (then `…`), so a wrong file never pours into the logs.
 */
export function echo(text: string, max: number = defaults.configMaxEcho): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** A custom type error, except "required" when the key is missing. */
function orRequired(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message);
}

/**
 * A number, or text with a unit that `parse` turns into that number (a duration in milliseconds,
 * a size in bytes). `example` completes "expected ..." in both error messages.
 */
function withUnit(
  number: z.ZodNumber,
  parse: (text: string, what: string) => number,
  example: string,
) {
  return z
    .union([number, z.string()], { error: orRequired(`expected ${example}`) })
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      try {
        return parse(value, 'value');
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected ${example}, got "${echo(value)}"` });
        return z.NEVER;
      }
    });
}

/** Adds `problem(value)` as an issue when it is not null: the checks the command line shares. */
function check<T>(problem: (value: T) => string | null) {
  return (value: T, ctx: z.RefinementCtx) => {
    const message = problem(value);
    if (message !== null) ctx.addIssue({ code: 'custom', message });
  };
}

/** A duration as text or milliseconds; parses to milliseconds, at most limits.maxDurationMs. */
const duration = withUnit(
  z.number().int().nonnegative(),
  parseDuration,
  'a duration such as 500ms, 2s, 1m or 1h',
).superRefine(check(durationProblem));

/** A whole number within one of the `limits` ranges. */
const ranged = (range: WholeRange) =>
  z.number().superRefine(check((n: number) => rangeProblem(n, range)));

/**
 * An address as text, parsed by `parse`, or an already parsed `{ host, port }` taken as is, so a
 * parsed Config is valid input again (reload). `expected` names the accepted forms in errors.
 */
function hostPort(parse: (text: string, what: string) => HostPort, expected: string) {
  return z.unknown().transform((value, ctx): HostPort => {
    if (typeof value === 'string') {
      try {
        return parse(value, 'address');
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}, got "${echo(value)}"` });
        return z.NEVER;
      }
    }
    const hp = value as Partial<HostPort> | null;
    if (
      typeof hp === 'object' &&
      hp !== null &&
      typeof hp.host === 'string' &&
      Number.isInteger(hp.port) &&
      (hp.port as number) >= 0 &&
      (hp.port as number) <= 65535
    ) {
      return { host: hp.host, port: hp.port as number };
    }
    ctx.addIssue({
      code: 'custom',
      message: value === undefined ? 'required' : `expected ${expected}`,
    });
    return z.NEVER;
  });
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT`; parses to `{ host, port }`. */
const address = hostPort(parseHostPort, 'HOST:PORT');

/** A size as text (`16k`) or bytes. */
const size = withUnit(z.number().int().positive(), parseSize, 'a size such as 16384, 16k or 1m');

const name = z.string({ error: orRequired('expected a name') }).regex(/^[A-Za-z0-9_.:-]+$/, {
  error: 'expected letters, digits, and _ . : - only',
});

const whole = (min: number) => z.number().int().min(min);

/** A file path (PEM); read when the config is applied (src/config/tls-files.ts). */
const pemFile = z.string({ error: orRequired('expected a file path') }).min(1);

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/**
 * Originating TLS to a server: `verify` (default true) checks its certificate against `ca` (the
 * system's roots when left out) and `servername` (also sent as SNI; default the address's host).
 * `cert` and `key`: a client certificate, both or neither.
 */
export const serverTlsSchema = z
  .strictObject({
    ca: pemFile.optional(),
    servername: z.string().min(1).optional(),
    verify: z.boolean().default(true),
    cert: pemFile.optional(),
    key: pemFile.optional(),
  })
  .superRefine((tls, ctx) => {
    if ((tls.cert === undefined) === (tls.key === undefined)) return;
    ctx.addIssue({
      code: 'custom',
      path: [tls.cert === undefined ? 'cert' : 'key'],
      message: 'required: a client certificate needs both cert and key',
    });
  });
/** A CIDR block (`10.0.0.0/8`, `2001:db8::/32`) or one address; kept as text, checked here. */
const cidr = z
  .string({ error: orRequired('expected a CIDR block such as 10.0.0.0/8') })
  .superRefine(
    check((text: string) => {
      const parsed = parseCidr(text.trim());
      return typeof parsed === 'string'
        ? `expected a CIDR block such as 10.0.0.0/8: ${echo(parsed)}`
        : null;
    }),
  );
const cidrList = z.array(cidr);

/**
 * New connections per second, written `50/s`, `600/m` or `10/h`; a bare number is refused (is
 * 50 a second or a minute?). Parses to `{ perSecond }`, which is taken as is, so a parsed
 * Config is valid input again (reload).
 */
const rate = z
  .union([z.string(), z.strictObject({ perSecond: z.number() })], {
    error: orRequired('expected a rate such as 50/s (a number needs its unit)'),
  })
  .transform((value, ctx) => {
    if (typeof value !== 'string') return value;
    try {
      return { perSecond: parseRate(value, 'rate') };
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `expected a rate such as 50/s, 600/m or 10/h, got "${echo(value)}"`,
      });
      return z.NEVER;
    }
  })
  .superRefine(check((r: { perSecond: number }) => rateProblem(r.perSecond)));

export const serverSchema = z.strictObject({
  name,
  address: address.superRefine(check(serverAddressProblem)),
  /** Share of new connections relative to the other servers; 0 = drained (no new connections). */
  weight: ranged(limits.weight).default(defaults.weight),
  /** Simultaneous connections; excess clients wait in the backend's queue. 0 = unlimited. */
  maxConnections: ranged(limits.serverMaxConnections).default(defaults.serverMaxConnections),
  /** Takes traffic only while no regular server of the backend is up. */
  backup: z.boolean().default(false),
  /** Left out: plain TCP to the server. */
  tls: serverTlsSchema.optional(),
  /** A PROXY protocol header (v1 or v2) before the first byte to this server; left out: none. */
  sendProxy: z.enum(PROXY_SEND).optional(),
});

export const healthCheckSchema = z.strictObject({
  interval: duration
    .refine((ms) => ms > 0, { error: 'must be more than 0' })
    .default(defaults.healthCheckIntervalMs),
  /** 0 = the interval. */
  timeout: duration.default(defaults.healthCheckTimeoutMs),
  rise: whole(1).default(defaults.healthCheckRise),
  fall: whole(1).default(defaults.healthCheckFall),
  /** Bytes written once connected (UTF-8); none by default. */
  send: z.string().optional(),
  /** Bytes the server must answer with (a prefix of its reply); without it, connecting is enough. */
  expect: z.string().min(1).optional(),
});

/** A DNS name (letters, digits, `_` and `-` in dot-separated labels), as `discover` asks it. */
const dnsName = z
  .string({ error: orRequired('expected a DNS name') })
  .max(253, { error: 'a DNS name has at most 253 characters' })
  .regex(
    /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/,
    {
      error: 'expected a DNS name such as app.default.svc.cluster.local',
    },
  );

/**
 * Servers from DNS: `dns` (A and AAAA records, each address on `port`) or `srv` (SRV records:
 * targets, ports, weights, priorities). Re-asked every `every`, sooner when the TTL is shorter.
 */
export const discoverSchema = z
  .strictObject({
    dns: dnsName.optional(),
    srv: dnsName.optional(),
    /** The servers' port, for `dns` (SRV records carry their own). */
    port: z.number().int().min(1).max(65535).optional(),
    every: duration
      .superRefine(check((ms: number) => rangeProblem(ms, limits.discoverEveryMs) && 'at least 1s'))
      .default(defaults.dnsEveryMs),
  })
  .superRefine((d, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if ((d.dns === undefined) === (d.srv === undefined)) {
      problem(d.dns === undefined ? 'dns' : 'srv', 'give either dns (with port) or srv');
    } else if (d.dns !== undefined && d.port === undefined) {
      problem('port', 'required with dns (the A/AAAA records carry no port)');
    } else if (d.srv !== undefined && d.port !== undefined) {
      problem('port', 'not with srv: the SRV records carry the ports');
    }
  });

/** A nameserver: `IP:PORT` (`[IPv6]:PORT`); the resolver library takes addresses, not names. */
const resolverAddress = address.superRefine(
  check((a: HostPort) =>
    ipFamily(a.host) === 0
      ? 'expected an IP address and port, e.g. 10.96.0.10:53'
      : a.port === 0
        ? 'port 0 is not a nameserver port'
        : null,
  ),
);

export const backendSchema = z.strictObject({
  name,
  balance: z.enum(BALANCE_ALGORITHMS).default(defaults.balance),
  /** 0 = no timeout (the kernel's applies). */
  connectTimeout: duration.default(defaults.connectTimeoutMs),
  retries: ranged(limits.retries).default(defaults.retries),
  /** 0 = wait without limit. */
  queueTimeout: duration.default(defaults.queueTimeoutMs),
  /** 0 = no queue. */
  maxQueued: whole(0).default(defaults.maxQueued),
  /** Left out: no active checks; every server counts as up. */
  healthCheck: healthCheckSchema.optional(),
  servers: z.array(serverSchema).default([]), // at least one, or `discover` (cross-check.ts)
  discover: discoverSchema.optional(),
});

/**
 * Terminating TLS on a frontend. The certificate is chosen by the client's SNI (an exact name of
 * a certificate's SANs, then a `*.` wildcard one); the first is the default. `clientCa`: client
 * certificates are required and verified against it (mTLS).
 */
export const frontendTlsSchema = z.strictObject({
  certificates: z
    .array(z.strictObject({ cert: pemFile, key: pemFile }))
    .min(1, { error: 'at least one certificate is needed' }),
  alpn: z.array(z.string().min(1).max(255)).optional(),
  minVersion: z.enum(TLS_VERSIONS).default(defaults.tlsMinVersion),
  clientCa: pemFile.optional(),
  /** 0 = none. */
  handshakeTimeout: duration.default(defaults.tlsHandshakeTimeoutMs),
});

/** A frontend's clients must start with a PROXY header (from trusted senders only). */
export const proxyProtocolSchema = z.strictObject({
  accept: z.enum(PROXY_ACCEPT).default(defaults.proxyProtocolAccept),
  /** Senders trusted to send a header; others are closed unread. Left out: every source. */
  from: cidrList.optional(),
  timeout: duration
    .refine((ms) => ms > 0, { error: 'must be more than 0' })
    .default(defaults.proxyProtocolTimeoutMs),
});

/** Per-frontend limits, on the client address (the PROXY header's, when there is one). */
export const limitsSchema = z.strictObject({
  /** 0 = no limit. */
  perSourceConnections: ranged(limits.perSourceConnections).default(defaults.perSourceConnections),
  /** Token bucket per client address, burst = one second's worth; left out: none. */
  perSourceRate: rate.optional(),
  /** Token bucket for the whole frontend, burst = one second's worth; left out: none. */
  acceptRate: rate.optional(),
  /** 0 = none. */
  maxLifetime: duration.default(defaults.maxLifetimeMs),
});

/**
 * A server name an `sni` rule matches: a DNS name (`a.example.com`), or `*.` and a domain
 * (`*.example.com`: any name with exactly one more label). Case does not matter (kept lower case).
 */
const SNI_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const SNI_PATTERN = new RegExp(`^(?:\\*\\.)?${SNI_LABEL}(?:\\.${SNI_LABEL})*$`);
const sniMatch = z
  .string({ error: orRequired('expected a server name such as a.example.com or *.example.com') })
  .transform((text) => text.toLowerCase())
  .superRefine(
    check((text: string) =>
      SNI_PATTERN.test(text) && text.length <= 253
        ? null
        : `expected a server name such as a.example.com or *.example.com, got "${echo(text)}"`,
    ),
  );

/** One SNI routing rule: clients asking for `match` go to `backend`. */
export const sniRuleSchema = z.strictObject({ match: sniMatch, backend: name });

export const frontendSchema = z.strictObject({
  name,
  listen: address,
  backend: name,
  maxConnections: ranged(limits.maxConnections).default(defaults.maxConnections),
  /** Left out: plain TCP (or SNI routing, below). */
  tls: frontendTlsSchema.optional(),
  proxyProtocol: proxyProtocolSchema.optional(),
  /** When present, only these client addresses are served. */
  allow: cidrList.optional(),
  /** Always refused, even when allowed. */
  deny: cidrList.optional(),
  limits: limitsSchema.optional(),
  /**
   * SNI routing without decrypting: the client's ClientHello is read (after a PROXY header) and
   * its server name picks the backend (exact name, then `*.` wildcard); no SNI or no match:
   * `backend`. Left out: none. Not together with `tls`.
   */
  sni: z.array(sniRuleSchema).min(1, { error: 'at least one rule is needed' }).optional(),
  /** With `sni`: the whole ClientHello must arrive within this (after a PROXY header); 0 = none. */
  handshakeTimeout: duration.optional(),
});

/**
 * `listen`: `HOST:PORT`, or a port alone for 127.0.0.1. `token`: required of every request, and
 * required to listen on anything but loopback (the API can close any connection).
 * `allowedHosts`: names a request's Host may carry besides those always served (admin/hosts.ts).
 * `allowChangesWithoutToken`: lets state-changing routes through when no token is set.
 */
export const adminSchema = z
  .strictObject({
    // A bare port may come as a YAML number.
    listen: z.preprocess(
      (value) => (typeof value === 'number' ? String(value) : value),
      hostPort(parseAdminAddress, 'HOST:PORT or PORT'),
    ),
    token: z.string().min(1).optional(),
    /** Host names served besides IP addresses, localhost and the listen host; `*`: any. */
    allowedHosts: z
      .array(
        z
          .string()
          .regex(/^(?:\*|[A-Za-z0-9_.-]+)$/, { error: 'expected a host name (no port) or *' }),
      )
      .optional(),
    /** DELETE without a token (none set): refused (403) unless true. */
    allowChangesWithoutToken: z.boolean().optional(),
  })
  .superRefine((admin, ctx) => {
    if (admin.token !== undefined || isLoopbackHost(admin.listen.host)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['token'],
      message: `required: admin.listen ${formatHostPort(admin.listen.host, admin.listen.port)} is not a loopback address`,
    });
  });

export const configSchema = z.strictObject({
  frontends: z.array(frontendSchema).min(1, { error: 'at least one frontend is needed' }),
  backends: z.array(backendSchema).min(1, { error: 'at least one backend is needed' }),
  timeouts: z
    .strictObject({
      /** 0 = none. */
      idle: duration.default(defaults.idleTimeoutMs),
      /** 0 = no half-closed timeout; the idle timeout still applies to a half-closed pair. */
      halfClosed: duration.default(defaults.halfClosedTimeoutMs),
    })
    .default({ idle: defaults.idleTimeoutMs, halfClosed: defaults.halfClosedTimeoutMs }),
  bufferSize: size.superRefine(check(bufferSizeProblem)).default(defaults.bufferSize),
  /** The admin HTTP server; left out: none. */
  admin: adminSchema.optional(),
  /** A file, `stdout`, or `off`; left out: defaults.accessLog. */
  accessLog: z.string().min(1).optional(),
  resolvers: z.array(resolverAddress).min(1).optional(), // nameservers of `discover`; left out: the system's
});

/** A config as written: durations, addresses and sizes still text (or numbers). */
export type ConfigInput = z.input<typeof configSchema>;

/** A validated config: durations in milliseconds, addresses parsed, every default filled in. */
export type Config = z.output<typeof configSchema>;
export type FrontendConfig = z.output<typeof frontendSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
export type ServerConfig = z.output<typeof serverSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type FrontendTlsConfig = z.output<typeof frontendTlsSchema>;
export type ServerTlsConfig = z.output<typeof serverTlsSchema>;
export type ProxyProtocolConfig = z.output<typeof proxyProtocolSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type DiscoverConfig = z.output<typeof discoverSchema>;
export type SniRuleConfig = z.output<typeof sniRuleSchema>;
