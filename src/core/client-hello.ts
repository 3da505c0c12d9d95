/**
 * Reads a TLS ClientHello as it arrives, in any number of pieces, to route by its server name
 * (SNI) without decrypting: the bytes are kept unchanged, to be forwarded to the chosen server,
 * which then speaks TLS with the client end to end.
 *
 * `parseClientHello` is pure: no sockets, no timers (the caller bounds the time with its
 * handshake timeout). Total: no input throws; anything that is not a well-formed ClientHello is
 * `invalid` with a reason.
 *
 * Wire format (RFC 8446 §4.1.2, §5.1; RFC 6066 §3): TLS records (type 22 = handshake, version
 * 3.x, 16-bit length ≤ 2^14) carry the handshake message, which may span several records:
 * type 1 (ClientHello), 24-bit length, then version, random[32], session_id<0..32>,
 * cipher_suites<2..2^16-2>, compression_methods<1..2^8-1>, extensions<0..2^16-1>; extension 0
 * (server_name) holds a list of (type 0 = host_name, name<1..2^16-1>).
 *
 * `ClientHelloStage` runs it as a preamble stage (preamble.ts), bounded: it reads the pool buffer
 * the preamble fills, so an SNI-routing frontend holds one buffer per waiting client, and refuses
 * a ClientHello not complete within `maxBytes`.
 */
import { type PreambleStage, STAGE_FAILED, STAGE_NEED_MORE } from './preamble.ts';

/** Not done yet: more bytes are needed. */
export interface HelloMore {
  readonly status: 'more';
}
/** A whole ClientHello: its server name (lower case), or null when it sent none. */
export interface HelloDone {
  readonly status: 'done';
  readonly sni: string | null;
}
/** Not a TLS ClientHello. */
export interface HelloInvalid {
  readonly status: 'invalid';
  readonly reason: string;
}
export type HelloResult = HelloMore | HelloDone | HelloInvalid;

const MORE: HelloMore = { status: 'more' };
const RECORD_HEADER = 5;
const MAX_RECORD = 16384;

function invalid(reason: string): HelloInvalid {
  return { status: 'invalid', reason };
}

/**
 * The verdict on `buf[0..length)`, the first bytes of a connection: `more`, `done` (the whole
 * ClientHello is there) or `invalid`. Reads only the record headers until the handshake message
 * is complete, so calling it after every piece costs little.
 */
export function parseClientHello(buf: Buffer, length: number): HelloResult {
  // 1. Gather the handshake message's bytes across records (only the lengths are needed first).
  let offset = 0;
  let messageLength = -1; // unknown until its 4-byte header is in
  const payload: Buffer[] = [];
  let have = 0;
  while (offset < length) {
    if (length - offset < RECORD_HEADER) {
      // Check what we can of a partial header: a first byte that is not 22 fails at once.
      if (buf[offset] !== 22) return invalid('not a TLS handshake record');
      if (length - offset >= 2 && buf[offset + 1] !== 3) return invalid('not TLS (record version)');
      return MORE;
    }
    if (buf[offset] !== 22) return invalid('not a TLS handshake record');
    if (buf[offset + 1] !== 3) return invalid('not TLS (record version)');
    const recordLength = buf.readUInt16BE(offset + 3);
    if (recordLength === 0 || recordLength > MAX_RECORD) return invalid('bad record length');
    const start = offset + RECORD_HEADER;
    const end = Math.min(start + recordLength, length);
    payload.push(buf.subarray(start, end));
    have += end - start;
    offset = start + recordLength;
    if (messageLength < 0 && have >= 4) {
      const head = payload.length === 1 ? (payload[0] as Buffer) : Buffer.concat(payload);
      if (head[0] !== 1) return invalid('not a ClientHello');
      messageLength = 4 + head.readUIntBE(1, 3);
    }
    if (messageLength >= 0 && have >= messageLength) {
      const message = Buffer.concat(payload).subarray(0, messageLength);
      return parseBody(message.subarray(4));
    }
  }
  return MORE;
}

/** The ClientHello body, whole: its server name, or why it is malformed. */
function parseBody(body: Buffer): HelloResult {
  let p = 0;
  const need = (n: number) => p + n <= body.length;
  if (!need(2 + 32 + 1)) return invalid('ClientHello too short');
  if (body[0] !== 3) return invalid('not TLS (hello version)');
  p += 2 + 32;
  const sessionId = body[p] as number;
  if (sessionId > 32) return invalid('bad session id');
  p += 1 + sessionId;
  if (!need(2)) return invalid('ClientHello too short');
  const suites = body.readUInt16BE(p);
  if (suites < 2 || suites % 2 !== 0) return invalid('bad cipher suites');
  p += 2 + suites;
  if (!need(1)) return invalid('ClientHello too short');
  const compression = body[p] as number;
  if (compression < 1) return invalid('bad compression methods');
  p += 1 + compression;
  if (p === body.length) return { status: 'done', sni: null }; // no extensions at all
  if (!need(2)) return invalid('ClientHello too short');
  const extensionsEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  if (extensionsEnd > body.length) return invalid('extensions overrun the ClientHello');
  let sni: string | null = null;
  while (p < extensionsEnd) {
    if (p + 4 > extensionsEnd) return invalid('truncated extension');
    const type = body.readUInt16BE(p);
    const size = body.readUInt16BE(p + 2);
    p += 4;
    if (p + size > extensionsEnd) return invalid('extension overruns the list');
    if (type === 0) {
      const name = serverName(body.subarray(p, p + size));
      if (typeof name !== 'string' && name !== null) return name;
      sni = name;
    }
    p += size;
  }
  return { status: 'done', sni };
}

/** The host_name of a server_name extension, null without one, or why it is malformed. */
function serverName(ext: Buffer): string | null | HelloInvalid {
  if (ext.length < 2) return invalid('bad server_name');
  const listEnd = 2 + ext.readUInt16BE(0);
  if (listEnd > ext.length) return invalid('bad server_name list');
  let p = 2;
  while (p + 3 <= listEnd) {
    const type = ext[p] as number;
    const size = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + size > listEnd) return invalid('bad server_name entry');
    if (type === 0) {
      const name = ext.toString('latin1', p, p + size);
      // A DNS name: letters, digits, hyphens, dots, underscores; at most 253 characters.
      if (size === 0 || size > 253 || !/^[A-Za-z0-9._-]+$/.test(name)) {
        return invalid('server name is not a DNS name');
      }
      return name.toLowerCase();
    }
    p += size;
  }
  return null;
}

/**
 * The ClientHello as a preamble stage: it only looks (consumes nothing), so every byte it read
 * is forwarded unchanged to the server chosen by `sni`. Fails on anything but a well-formed
 * ClientHello, and on one not complete within `maxBytes`.
 */
export class ClientHelloStage implements PreambleStage {
  readonly maxBytes: number;
  /** The server name asked for (lower case), once the stage is done; null when none was sent. */
  sni: string | null = null;
  error = '';

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  parse(buf: Uint8Array, start: number, end: number): number {
    const bytes = buf as Buffer; // the preamble's pool buffer
    // Only the first maxBytes count: a longer ClientHello is refused whether it came in one read
    // or in many (the buffer may be larger than the bound).
    const length = Math.min(end - start, this.maxBytes);
    const r = parseClientHello(start === 0 ? bytes : bytes.subarray(start, end), length);
    if (r.status === 'done') {
      this.sni = r.sni;
      return 0;
    }
    if (r.status === 'invalid') {
      this.error = r.reason;
      return STAGE_FAILED;
    }
    if (length >= this.maxBytes) {
      this.error = `no complete ClientHello in ${this.maxBytes} bytes`;
      return STAGE_FAILED;
    }
    return STAGE_NEED_MORE;
  }
}

/**
 * The backend for `sni` among `rules`: a rule whose `match` is the exact name wins; else the
 * first `*.example.com` rule whose domain is the name less its first label (a wildcard covers
 * one label). Null when none matches (the frontend's own backend), as certificate selection
 * does for a terminating frontend.
 */
export function matchSni(
  rules: readonly { match: string; backend: string }[],
  sni: string | null,
): string | null {
  if (sni === null) return null;
  for (const rule of rules) if (rule.match.toLowerCase() === sni) return rule.backend;
  const dot = sni.indexOf('.');
  if (dot <= 0) return null;
  const wildcard = `*${sni.slice(dot)}`;
  for (const rule of rules) if (rule.match.toLowerCase() === wildcard) return rule.backend;
  return null;
}
