/**
 * The shape of a switchyard config, as a zod schema. The same schema checks a YAML file
 * (`--config`) and a config object handed to `createProxy`. Durations are `500ms`/`2s`/`1m`/`1h`
 * or milliseconds, addresses `HOST:PORT`, sizes `16k`; after parsing they are milliseconds,
 * `{ host, port }` and bytes. Every default comes from src/defaults.ts.
 */
import { z } from 'zod';
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
  parseSize,
  rangeProblem,
  serverAddressProblem,
  type WholeRange,
} from '../units.ts';
import { parseAdminAddress } from './address.ts';

export const BALANCE_ALGORITHMS = ['roundrobin', 'leastconn', 'source', 'random'] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

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

export const serverSchema = z.strictObject({
  name,
  address: address.superRefine(check(serverAddressProblem)),
  /** Share of new connections relative to the other servers; 0 = drained (no new connections). */
  weight: ranged(limits.weight).default(defaults.weight),
  /** Simultaneous connections; excess clients wait in the backend's queue. 0 = unlimited. */
  maxConnections: ranged(limits.serverMaxConnections).default(defaults.serverMaxConnections),
  /** Takes traffic only while no regular server of the backend is up. */
  backup: z.boolean().default(false),
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

export const frontendSchema = z.strictObject({
  name,
  listen: address,
  backend: name,
  maxConnections: ranged(limits.maxConnections).default(defaults.maxConnections),
});

/**
 * `listen`: `HOST:PORT`, or a port alone for 127.0.0.1. `token`: required of every request, and
 * required to listen on anything but loopback (the API can close any connection).
 */
export const adminSchema = z
  .strictObject({
    // A bare port may come as a YAML number.
    listen: z.preprocess(
      (value) => (typeof value === 'number' ? String(value) : value),
      hostPort(parseAdminAddress, 'HOST:PORT or PORT'),
    ),
    token: z.string().min(1).optional(),
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
export type DiscoverConfig = z.output<typeof discoverSchema>;
