import { isIP } from 'node:net';
import { limits } from './defaults.ts';
import { ErrorCode, SwitchyardError } from './errors.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses `500ms`, `5s`, `1.5m`, `1h` (or a bare number of milliseconds) into milliseconds. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const m = DURATION.exec(trimmed);
  if (!m) {
    throw invalid(what, `expected a duration such as 500ms, 5s, 1m or 1h, got "${text}"`);
  }
  return Math.round(Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS]);
}

/** Why `ms` is too long for a timer, or null when it is not (the schema and the CLI both ask). */
export function durationProblem(ms: number): string | null {
  return ms > limits.maxDurationMs
    ? `at most ${limits.maxDurationMs} ms (about 24.8 days): longer timers overflow`
    : null;
}

/** Parses a duration for a timer: parseDuration, then at most limits.maxDurationMs. */
export function parseTimerDuration(text: string, what: string): number {
  const ms = parseDuration(text, what);
  const problem = durationProblem(ms);
  if (problem !== null) throw invalid(what, `${problem}, got "${text}"`);
  return ms;
}

/** A closed range of whole numbers (the shape of the entries of `limits`). */
export interface WholeRange {
  readonly min: number;
  readonly max: number;
}

/** Why `n` is not a whole number in `range`, or null when it is (the schema and the CLI both ask). */
export function rangeProblem(n: number, range: WholeRange): string | null {
  if (Number.isInteger(n) && n >= range.min && n <= range.max) return null;
  return `expected a whole number from ${range.min} to ${range.max}`;
}

/** Parses a whole number within `range`; throws SwitchyardError(INVALID_ARGUMENT) naming `what`. */
export function parseWhole(text: string, what: string, range: WholeRange): number {
  const n = /^\d{1,16}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  const problem = rangeProblem(n, range);
  if (problem !== null) throw invalid(what, `${problem}, got "${text}"`);
  return n;
}

/** Why `n` bytes is not a valid buffer size, or null (the schema and the CLI both ask). */
export function bufferSizeProblem(n: number): string | null {
  const { min, max } = limits.bufferSize;
  return n >= min && n <= max ? null : `expected between ${min / 1024}k and ${max / 1024 / 1024}m`;
}

/** Why `address` cannot be a server's (a connect target), or null. */
export function serverAddressProblem(address: HostPort): string | null {
  return address.port === 0 ? 'port 0 is not a server port' : null;
}

const RATE = /^(\d+(?:\.\d+)?)\/(s|m|h)$/;
const RATE_PER_SECOND = { s: 1, m: 1 / 60, h: 1 / 3600 } as const;

/** Parses `50/s`, `600/m`, `10/h` into events per second; a number without a unit is refused. */
export function parseRate(text: string, what: string): number {
  const m = RATE.exec(text.trim());
  if (!m) throw invalid(what, `expected a rate such as 50/s, 600/m or 10/h, got "${text}"`);
  return Number(m[1]) * RATE_PER_SECOND[m[2] as keyof typeof RATE_PER_SECOND];
}

/** Why `perSecond` is not a usable rate, or null (the schema asks). */
export function rateProblem(perSecond: number): string | null {
  const { min, max } = limits.ratePerSecond;
  return perSecond >= min && perSecond <= max ? null : `expected from ${min} to ${max} per second`;
}

const SIZE = /^(\d+)([kKmM]?)(?:[iI]?[bB])?$/;

/** Parses `16384`, `16k`, `16KiB`, `1m` into bytes (k = 1024). */
export function parseSize(text: string, what: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw invalid(what, `expected a size such as 16384, 16k or 1m, got "${text}"`);
  const unit = (m[2] ?? '').toLowerCase();
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1);
}

/** A parsed `HOST:PORT`; IPv6 hosts are written `[::1]:PORT` and kept here without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * The host `:PORT` binds: every interface, IPv6 and IPv4. The engines listen on `::` dual-stack
 * (Node with ipv6Only false; Bun's default), so IPv4 clients arrive as ::ffff:a.b.c.d.
 */
export const ANY_HOST = '::';

/** Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces, IPv4 and IPv6: ANY_HOST). */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw invalid(what, `expected HOST:PORT (IPv6 as [::1]:PORT), got "${text}"`);
  }
  const host = m[1] ?? (m[2] || ANY_HOST);
  return { host, port };
}

/**
 * True for a host that only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and
 * `localhost`. Any other name may resolve anywhere, so counts as not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * 4 or 6 for an IP address, 0 for anything else (a hostname). A pure function of the text
 * (node:net's isIP, which Bun has too), so every layer may ask it; no socket is involved.
 */
export function ipFamily(host: string): 0 | 4 | 6 {
  return isIP(host) as 0 | 4 | 6;
}

/** Formats an address the way it is parsed: IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function invalid(what: string, reason: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.INVALID_ARGUMENT, `${what}: ${reason}`);
}
