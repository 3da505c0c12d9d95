/**
 * The PROXY protocol (HAProxy's doc/proxy-protocol.txt), both versions: an incremental parser of
 * the header a client sends first, and the encoder of the header switchyard sends to a server.
 *
 * Parsing is incremental: `parse(buf, start, end)` is called again each time more bytes have
 * been appended to the same buffer, and resumes where it stopped (it never looks at a byte
 * twice before the header is complete), so reads of any size work, one byte at a time included.
 * It throws nothing: a bad header is FAILED, with `error` saying why. Nothing is allocated per
 * call; once a header is complete, its addresses become strings (the client's identity) and
 * its TLVs, when there are any, one object.
 */
import { formatIPv4, formatIPv6, isMappedV4, parseIpInto } from '../cidr.ts';
import type { ProxyAccept, ProxySend } from '../config/schema.ts';

export type { ProxyAccept, ProxySend };

/** `parse` needs more bytes. */
export const NEED_MORE = -1;
/** `parse` found a bad header; `error` says why. */
export const FAILED = -2;

/** The 12 bytes a v2 header starts with. */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** "PROXY " */
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20];
/** The longest v1 header, CRLF included (the spec's 107). */
export const V1_MAX_BYTES = 107;
/** A v2 header's fixed part: signature, version/command, family/protocol, length. */
const V2_FIXED = 16;

/** v2 TLV types (spec section 2.2). */
const TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  SSL_VERSION: 0x21,
  SSL_CN: 0x22,
  SSL_CIPHER: 0x23,
  SSL_SIG_ALG: 0x24,
  SSL_KEY_ALG: 0x25,
  NETNS: 0x30,
} as const;

/** What the TLVs of a v2 header said (only the ones present are set). */
export interface ProxyTlvs {
  /** The protocol the client negotiated (ALPN), e.g. "h2". */
  alpn?: string;
  /** The host name the client asked for (SNI, usually). */
  authority?: string;
  /** The upstream proxy's id for this connection (opaque, at most 128 bytes). */
  uniqueId?: Buffer;
  /** The client's TLS connection, as the upstream proxy saw it. */
  ssl?: {
    /** PP2_CLIENT_* bits: 1 = TLS, 2 = a certificate in this connection, 4 = in the session. */
    client: number;
    /** 0 when the client certificate verified. */
    verify: number;
    version?: string;
    cn?: string;
    cipher?: string;
    sigAlg?: string;
    keyAlg?: string;
  };
  netns?: string;
}

/** A complete header, as the session and the route hook see it. */
export interface ProxyHeader {
  version: 1 | 2;
  /** `local`: the upstream's own connection (a health check); its addresses mean nothing. */
  command: 'proxy' | 'local';
  /**
   * False when the header names no IP client (v2 LOCAL, v1 UNKNOWN, unspecified or unix
   * addresses): the TCP peer is the client then.
   */
  hasAddresses: boolean;
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  tlvs: ProxyTlvs | null;
}

/**
 * The header of one connection, parsed as it arrives. Fields hold the result once `parse` has
 * returned a length; `error` holds the reason once it has returned FAILED.
 */
export class ProxyHeaderParser implements ProxyHeader {
  readonly accept: ProxyAccept;
  /** The longest header taken; a longer one fails as soon as its length is known. */
  readonly maxBytes: number;
  /** Bytes of the header looked at so far (from `start`). */
  private pos = 0;
  version: 1 | 2 = 1;
  private versionKnown = false;
  command: 'proxy' | 'local' = 'proxy';
  hasAddresses = false;
  sourceAddress = '';
  sourcePort = 0;
  destinationAddress = '';
  destinationPort = 0;
  tlvs: ProxyTlvs | null = null;
  error = '';

  constructor(accept: ProxyAccept, maxBytes: number) {
    this.accept = accept;
    this.maxBytes = maxBytes;
  }

  /**
   * Parses buf[start..end), the bytes of this connection so far (the same buffer, appended to
   * between calls). Returns NEED_MORE, FAILED, or the header's length in bytes: what follows it
   * is the client's data.
   */
  parse(buf: Uint8Array, start: number, end: number): number {
    if (this.error !== '') return FAILED;
    const have = end - start;
    while (this.pos < have) {
      const i = this.pos;
      const b = buf[start + i] as number;
      if (!this.versionKnown) {
        if (b === 0x50) {
          if (this.accept === 'v2') return this.fail('a v1 header where only v2 is accepted');
          this.version = 1;
        } else if (b === 0x0d) {
          if (this.accept === 'v1') return this.fail('a v2 header where only v1 is accepted');
          this.version = 2;
        } else {
          return this.fail('no PROXY protocol header');
        }
        this.versionKnown = true;
      }
      if (this.version === 1) {
        if (i < V1_PREFIX.length) {
          if (b !== V1_PREFIX[i]) return this.fail('no PROXY protocol header');
        } else if (b === 0x0a) {
          return this.v1Line(buf, start, i);
        } else if (i + 1 >= V1_MAX_BYTES) {
          return this.fail(`a v1 header longer than ${V1_MAX_BYTES} bytes`);
        }
        this.pos++;
        continue;
      }
      // Version 2: the fixed part byte by byte, then the rest once it is all there.
      if (i < V2_SIGNATURE.length) {
        if (b !== V2_SIGNATURE[i]) return this.fail('no PROXY protocol header');
      } else if (i === 12) {
        if (b >> 4 !== 2) return this.fail(`v2 version ${b >> 4}`);
        const cmd = b & 0x0f;
        if (cmd > 1) return this.fail(`v2 command ${cmd}`);
        this.command = cmd === 0 ? 'local' : 'proxy';
      } else if (i === 13) {
        // With LOCAL the whole block, family included, is to be ignored (spec 2.2).
        if (this.command === 'proxy' && !isKnownFamily(b)) {
          return this.fail(`v2 address family/protocol 0x${b.toString(16)}`);
        }
      } else if (i === 15) {
        const total = V2_FIXED + (((buf[start + 14] as number) << 8) | b);
        if (total > this.maxBytes) {
          return this.fail(`a v2 header of ${total} bytes (at most ${this.maxBytes})`);
        }
        if (have < total) {
          this.pos = have; // wait for the rest: nothing more to check byte by byte
          return NEED_MORE;
        }
        return this.v2Body(buf, start, total);
      } else if (i > 15) {
        // Resumed after NEED_MORE above: the length bytes are already checked.
        const total = V2_FIXED + (((buf[start + 14] as number) << 8) | (buf[start + 15] as number));
        if (have < total) {
          this.pos = have;
          return NEED_MORE;
        }
        return this.v2Body(buf, start, total);
      }
      this.pos++;
    }
    return NEED_MORE;
  }

  private fail(reason: string): number {
    this.error = reason;
    return FAILED;
  }

  /** A complete v1 line: buf[start..start+lf] with the LF at `lf` (relative). */
  private v1Line(buf: Uint8Array, start: number, lf: number): number {
    if (lf < 7 || buf[start + lf - 1] !== 0x0d) return this.fail('a v1 header without CRLF');
    const end = start + lf - 1; // the CR
    let p = start + V1_PREFIX.length;
    const proto = word(buf, p, end);
    const protoText = latin1(buf, p, proto);
    if (protoText === 'UNKNOWN') {
      // Anything may follow; the TCP peer is the client.
      this.hasAddresses = false;
      return lf + 1;
    }
    if (protoText !== 'TCP4' && protoText !== 'TCP6') {
      return this.fail(`v1 protocol "${printable(protoText)}"`);
    }
    const fields: string[] = [];
    p = proto;
    for (let k = 0; k < 4; k++) {
      if (p >= end || buf[p] !== 0x20) return this.fail('a v1 header with missing fields');
      const e = word(buf, p + 1, end);
      if (e === p + 1) return this.fail('a v1 header with an empty field');
      fields.push(latin1(buf, p + 1, e));
      p = e;
    }
    if (p !== end) return this.fail('a v1 header with extra fields');
    const [src, dst, sport, dport] = fields as [string, string, string, string];
    const v6 = protoText === 'TCP6';
    const scratch = ADDRESS_SCRATCH;
    for (const a of [src, dst]) {
      if (a.includes(':') !== v6 || !parseIpInto(a, scratch)) {
        return this.fail(`v1 ${protoText} address "${printable(a)}"`);
      }
    }
    const sp = v1Port(sport);
    const dp = v1Port(dport);
    if (sp < 0 || dp < 0) return this.fail(`v1 port "${printable(sp < 0 ? sport : dport)}"`);
    this.hasAddresses = true;
    this.sourceAddress = src;
    this.destinationAddress = dst;
    this.sourcePort = sp;
    this.destinationPort = dp;
    return lf + 1;
  }

  /** A complete v2 header of `total` bytes at buf[start..]. */
  private v2Body(buf: Uint8Array, start: number, total: number): number {
    if (this.command === 'local') {
      this.hasAddresses = false;
      return total;
    }
    const family = buf[start + 13] as number;
    const length = total - V2_FIXED;
    const need = addressLength(family);
    if (length < need) {
      return this.fail(`a v2 address block of ${length} bytes (the family needs ${need})`);
    }
    const a = start + V2_FIXED;
    const ip = family >> 4;
    this.hasAddresses = ip === 1 || ip === 2;
    if (this.hasAddresses && ip === 1) {
      this.sourceAddress = formatIPv4(buf, a);
      this.destinationAddress = formatIPv4(buf, a + 4);
      this.sourcePort = ((buf[a + 8] as number) << 8) | (buf[a + 9] as number);
      this.destinationPort = ((buf[a + 10] as number) << 8) | (buf[a + 11] as number);
    } else if (this.hasAddresses) {
      this.sourceAddress = formatIPv6(buf, a);
      this.destinationAddress = formatIPv6(buf, a + 16);
      this.sourcePort = ((buf[a + 32] as number) << 8) | (buf[a + 33] as number);
      this.destinationPort = ((buf[a + 34] as number) << 8) | (buf[a + 35] as number);
    }
    const problem = this.readTlvs(buf, a + need, start + total);
    if (problem !== null) return this.fail(problem);
    return total;
  }

  /** Reads the TLVs in buf[from..to); a reason when one overruns, else null. */
  private readTlvs(buf: Uint8Array, from: number, to: number): string | null {
    let p = from;
    while (p < to) {
      if (p + 3 > to) return 'a v2 TLV header overruns the header';
      const type = buf[p] as number;
      const len = ((buf[p + 1] as number) << 8) | (buf[p + 2] as number);
      const v = p + 3;
      if (v + len > to) return `a v2 TLV (type 0x${type.toString(16)}) overruns the header`;
      switch (type) {
        case TLV.ALPN:
          this.tlvObject().alpn = latin1(buf, v, v + len);
          break;
        case TLV.AUTHORITY:
          this.tlvObject().authority = utf8(buf, v, v + len);
          break;
        case TLV.UNIQUE_ID:
          if (len > 128) return `a v2 unique ID of ${len} bytes (at most 128)`;
          this.tlvObject().uniqueId = Buffer.from(buf.subarray(v, v + len));
          break;
        case TLV.NETNS:
          this.tlvObject().netns = latin1(buf, v, v + len);
          break;
        case TLV.SSL: {
          const problem = this.readSsl(buf, v, v + len);
          if (problem !== null) return problem;
          break;
        }
        default:
          // CRC32C, NOOP and custom types: not needed to route; skipped (the CRC is not checked).
          break;
      }
      p = v + len;
    }
    return null;
  }

  private readSsl(buf: Uint8Array, from: number, to: number): string | null {
    if (to - from < 5) return 'a v2 SSL TLV shorter than 5 bytes';
    const ssl: NonNullable<ProxyTlvs['ssl']> = {
      client: buf[from] as number,
      verify:
        (((buf[from + 1] as number) << 24) |
          ((buf[from + 2] as number) << 16) |
          ((buf[from + 3] as number) << 8) |
          (buf[from + 4] as number)) >>>
        0,
    };
    this.tlvObject().ssl = ssl;
    let p = from + 5;
    while (p < to) {
      if (p + 3 > to) return 'a v2 SSL sub-TLV header overruns the SSL TLV';
      const type = buf[p] as number;
      const len = ((buf[p + 1] as number) << 8) | (buf[p + 2] as number);
      const v = p + 3;
      if (v + len > to)
        return `a v2 SSL sub-TLV (type 0x${type.toString(16)}) overruns the SSL TLV`;
      const text = latin1(buf, v, v + len);
      if (type === TLV.SSL_VERSION) ssl.version = text;
      else if (type === TLV.SSL_CN) ssl.cn = utf8(buf, v, v + len);
      else if (type === TLV.SSL_CIPHER) ssl.cipher = text;
      else if (type === TLV.SSL_SIG_ALG) ssl.sigAlg = text;
      else if (type === TLV.SSL_KEY_ALG) ssl.keyAlg = text;
      p = v + len;
    }
    return null;
  }

  private tlvObject(): ProxyTlvs {
    this.tlvs ??= {};
    return this.tlvs;
  }
}

/** Address scratch for validation (the event loop is single-threaded: one is enough). */
const ADDRESS_SCRATCH = new Uint8Array(16);

function isKnownFamily(b: number): boolean {
  // UNSPEC, and TCP or UDP over IPv4, IPv6 and unix (spec section 2.2).
  return (
    b === 0x00 || b === 0x11 || b === 0x12 || b === 0x21 || b === 0x22 || b === 0x31 || b === 0x32
  );
}

/** The address block a v2 family needs, in bytes. */
function addressLength(family: number): number {
  switch (family >> 4) {
    case 1:
      return 12;
    case 2:
      return 36;
    case 3:
      return 216;
    default:
      return 0;
  }
}

/** The end of the word starting at `p` (the next space or `end`). */
function word(buf: Uint8Array, p: number, end: number): number {
  let e = p;
  while (e < end && buf[e] !== 0x20) e++;
  return e;
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString('latin1');
}

function utf8(buf: Uint8Array, from: number, to: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString('utf8');
}

/** A v1 port: 1 to 5 digits, no leading zero, at most 65535; -1 otherwise. */
function v1Port(text: string): number {
  if (!/^(?:0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

/** Text from a peer, safe to put in a log line. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}

// ─── Encoding: the header sent to a server ───

/** The longest header `encodeProxyHeader` writes (a v1 TCP6 line). */
export const MAX_ENCODED_BYTES = V1_MAX_BYTES;

const SCRATCH_SRC = new Uint8Array(16);
const SCRATCH_DST = new Uint8Array(16);

/**
 * Writes the header for a connection from `src`:`sport` to `dst`:`dport` into out[0..) and
 * returns its length. Addresses that are not IP (or of mixed families where one is IPv4-only)
 * give v1 UNKNOWN / v2 LOCAL-less PROXY with unspecified addresses; an IPv4 or IPv4-mapped pair
 * is sent as TCP4. `out` must have room for MAX_ENCODED_BYTES.
 */
export function encodeProxyHeader(
  version: ProxySend,
  out: Uint8Array,
  src: string,
  sport: number,
  dst: string,
  dport: number,
): number {
  const ok = parseIpInto(src, SCRATCH_SRC) && parseIpInto(dst, SCRATCH_DST);
  const v4 = ok && isMappedV4(SCRATCH_SRC) && isMappedV4(SCRATCH_DST);
  if (version === 'v1') {
    let line: string;
    if (!ok) line = 'PROXY UNKNOWN\r\n';
    else if (v4) {
      line = `PROXY TCP4 ${formatIPv4(SCRATCH_SRC, 12)} ${formatIPv4(SCRATCH_DST, 12)} ${sport} ${dport}\r\n`;
    } else {
      line = `PROXY TCP6 ${formatIPv6(SCRATCH_SRC)} ${formatIPv6(SCRATCH_DST)} ${sport} ${dport}\r\n`;
    }
    return Buffer.from(out.buffer, out.byteOffset, out.length).write(line, 0, 'latin1');
  }
  for (let i = 0; i < 12; i++) out[i] = V2_SIGNATURE[i] as number;
  out[12] = 0x21; // version 2, PROXY
  if (!ok) {
    out[13] = 0x00;
    out[14] = 0;
    out[15] = 0;
    return V2_FIXED;
  }
  const a = V2_FIXED;
  if (v4) {
    out[13] = 0x11;
    out[14] = 0;
    out[15] = 12;
    out.set(SCRATCH_SRC.subarray(12), a);
    out.set(SCRATCH_DST.subarray(12), a + 4);
    writePorts(out, a + 8, sport, dport);
    return a + 12;
  }
  out[13] = 0x21;
  out[14] = 0;
  out[15] = 36;
  out.set(SCRATCH_SRC, a);
  out.set(SCRATCH_DST, a + 16);
  writePorts(out, a + 32, sport, dport);
  return a + 36;
}

function writePorts(out: Uint8Array, at: number, sport: number, dport: number): void {
  out[at] = sport >> 8;
  out[at + 1] = sport & 0xff;
  out[at + 2] = dport >> 8;
  out[at + 3] = dport & 0xff;
}

/**
 * The header a health check sends a server that expects one: v2 LOCAL (the proxy's own
 * connection, no addresses) or v1 UNKNOWN, as the spec asks of health checks.
 */
export function healthCheckHeader(version: ProxySend): Buffer {
  if (version === 'v1') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from([...V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00]);
}
