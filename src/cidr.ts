/**
 * IP addresses as 16 bytes and sets of CIDR blocks, for admission control (`allow`, `deny`,
 * `proxyProtocol.from`) and the PROXY protocol. An IPv4 address is kept as its IPv4-mapped IPv6
 * form (::ffff:a.b.c.d), so `10.0.0.0/8` and `::ffff:10.0.0.0/104` are the same block and an IPv4
 * client arriving on a dual-stack listener as ::ffff:10.1.2.3 matches either.
 *
 * Written here rather than taken from `node:net` (BlockList): the core must not import the
 * runtime's socket modules (the engine is the only layer that does), and a binary trie answers a
 * lookup in at most 128 steps whatever the number of blocks, without allocating.
 *
 * A leaf module (imports nothing): the config schema checks blocks with it, the core matches them.
 */

/** Parses `text` (IPv4 dotted decimal or IPv6, no zone) into `out[offset..offset+16)`. */
export function parseIpInto(text: string, out: Uint8Array, offset = 0): boolean {
  if (text.includes(':')) return parseIPv6(text, out, offset);
  out.fill(0, offset, offset + 10);
  out[offset + 10] = 0xff;
  out[offset + 11] = 0xff;
  return parseIPv4(text, 0, text.length, out, offset + 12);
}

/** Parses dotted decimal text[from..to) into out[at..at+4); strict: 4 parts, no leading zeros. */
function parseIPv4(text: string, from: number, to: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : 0x2e; // a '.' after the end closes the last part
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return false;
      continue;
    }
    if (c !== 0x2e || digits === 0 || part > 3) return false;
    out[at + part++] = value;
    value = 0;
    digits = 0;
  }
  return part === 4;
}

function parseIPv6(text: string, out: Uint8Array, offset: number): boolean {
  const len = text.length;
  if (len < 2 || len > 45) return false;
  const groups: number[] = [];
  let gap = -1; // index in `groups` where "::" stands
  let i = 0;
  if (text.startsWith('::')) {
    gap = 0;
    i = 2;
  }
  while (i < len) {
    let j = i;
    let value = 0;
    while (j < len && j - i < 5) {
      const c = text.charCodeAt(j);
      const h = hexValue(c);
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j < len && text.charCodeAt(j) === 0x2e) {
      // an IPv4 tail: the last 32 bits
      if (groups.length > 6) return false;
      const v4 = new Uint8Array(4);
      if (!parseIPv4(text, i, len, v4, 0)) return false;
      groups.push(((v4[0] as number) << 8) | (v4[1] as number));
      groups.push(((v4[2] as number) << 8) | (v4[3] as number));
      i = len;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups.push(value);
    if (j === len) {
      i = j;
      break;
    }
    if (text.charCodeAt(j) !== 0x3a) return false;
    if (j + 1 < len && text.charCodeAt(j + 1) === 0x3a) {
      if (gap >= 0) return false; // a second "::"
      gap = groups.length;
      i = j + 2;
    } else {
      if (j + 1 === len) return false; // a trailing single ':'
      i = j + 1;
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return false;
  const zeros = 8 - groups.length;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    let value = 0;
    if (gap >= 0 && k >= gap && k < gap + zeros) value = 0;
    else value = groups[g++] as number;
    out[offset + 2 * k] = value >> 8;
    out[offset + 2 * k + 1] = value & 0xff;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** True when bytes[offset..offset+16) is an IPv4-mapped address (::ffff:a.b.c.d). */
export function isMappedV4(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** Formats 4 bytes as dotted decimal. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * Formats 16 bytes as RFC 5952 text, as the runtimes report peers: lower case, the longest run
 * of two or more zero groups as `::`, an IPv4-mapped address as ::ffff:a.b.c.d.
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  if (isMappedV4(bytes, offset)) return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (group(bytes, offset, k) !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && group(bytes, offset, e) === 0) e++;
    if (e - k > bestLen) {
      bestStart = k;
      bestLen = e - k;
    }
    k = e;
  }
  let text = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      text += '::';
      k += bestLen - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(':')) text += ':';
    text += group(bytes, offset, k).toString(16);
  }
  return text;
}

function group(bytes: Uint8Array, offset: number, k: number): number {
  return ((bytes[offset + 2 * k] as number) << 8) | (bytes[offset + 2 * k + 1] as number);
}

/**
 * The key a client address is counted under (per-source limits, the access log): an IPv4
 * client as a.b.c.d whether it came as 10.1.2.3 or ::ffff:10.1.2.3.
 */
export function sourceKey(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** A parsed CIDR block: 16 address bytes and the prefix length in bits (IPv4 ones + 96). */
export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a block of one); null with a reason
 * when it is not one. Bits set past the prefix are refused (`10.1.0.0/8` is most likely a typo
 * for /16, and silently widening it would admit more than the operator wrote).
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const bytes = new Uint8Array(16);
  if (!parseIpInto(address, bytes)) return `"${address}" is not an IPv4 or IPv6 address`;
  const v4 = !address.includes(':');
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `prefix "/${p}" is not 0 to ${max}`;
    prefix = Number(p);
  }
  const bits = v4 ? prefix + 96 : prefix;
  for (let bit = bits; bit < 128; bit++) {
    if (bitAt(bytes, bit) !== 0) return `"${text}" has address bits set past the /${prefix} prefix`;
  }
  return { bytes, prefix: bits };
}

function bitAt(bytes: Uint8Array, bit: number): number {
  return ((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1;
}

/**
 * A set of CIDR blocks as a binary trie over the 128 address bits: `has` walks at most one node
 * per bit, with no allocation, however many blocks the set holds. Nodes live in one typed array
 * (two child indexes per node; 0 = none, as node 0 is the root and nobody's child).
 */
export class CidrSet {
  private children = new Int32Array(64);
  private terminal = new Uint8Array(32);
  private nodes = 1;
  /** Blocks added (for logs and tests). */
  size = 0;

  /** A set of the blocks in `list` (each already checked by parseCidr). */
  static of(list: readonly (Cidr | string)[]): CidrSet {
    const set = new CidrSet();
    for (const item of list) {
      const c = typeof item === 'string' ? parseCidr(item) : item;
      if (typeof c === 'string') throw new Error(c);
      set.add(c);
    }
    return set;
  }

  add(cidr: Cidr): void {
    this.size++;
    let node = 0;
    for (let bit = 0; bit < cidr.prefix; bit++) {
      if (this.terminal[node] === 1) return; // a wider block already covers it
      const slot = node * 2 + bitAt(cidr.bytes, bit);
      let next = this.children[slot] as number;
      if (next === 0) {
        next = this.newNode();
        this.children[slot] = next;
      }
      node = next;
    }
    this.terminal[node] = 1;
  }

  private newNode(): number {
    const n = this.nodes++;
    if (n >= this.terminal.length) {
      const children = new Int32Array(this.children.length * 2);
      children.set(this.children);
      this.children = children;
      const terminal = new Uint8Array(this.terminal.length * 2);
      terminal.set(this.terminal);
      this.terminal = terminal;
    }
    return n;
  }

  /** True when the address in bytes[offset..offset+16) lies in one of the blocks. */
  has(bytes: Uint8Array, offset = 0): boolean {
    let node = 0;
    for (let bit = 0; bit < 128; bit++) {
      if (this.terminal[node] === 1) return true;
      const b = ((bytes[offset + (bit >> 3)] as number) >> (7 - (bit & 7))) & 1;
      const next = this.children[node * 2 + b] as number;
      if (next === 0) return false;
      node = next;
    }
    return this.terminal[node] === 1;
  }
}
