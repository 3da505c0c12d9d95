/**
 * The PROXY protocol v2 header the load client sends first on each connection of the PROXY
 * protocol scenario (HAProxy's doc/proxy-protocol.txt, section 2.2). Written here rather than
 * taken from src/: the client must not share the code it measures.
 */
import { isIPv4 } from 'node:net';

/** The 12-byte signature every v2 header starts with. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Version 2 (high nibble), command PROXY (low nibble). */
const VERSION_PROXY = 0x21;
/** AF_INET (high nibble), STREAM (low nibble). */
const TCP4 = 0x11;
/** Two IPv4 addresses and two ports. */
const TCP4_LENGTH = 12;

/**
 * A v2 PROXY header for a TCP connection over IPv4 from src to dst, without TLVs: 28 bytes.
 * Throws for an address that is not a dotted IPv4 or a port outside 0..65535.
 */
export function proxyV2Header(
  srcAddress: string,
  srcPort: number,
  dstAddress: string,
  dstPort: number,
): Buffer {
  const out = Buffer.alloc(V2_SIGNATURE.length + 4 + TCP4_LENGTH);
  V2_SIGNATURE.copy(out, 0);
  out[12] = VERSION_PROXY;
  out[13] = TCP4;
  out.writeUInt16BE(TCP4_LENGTH, 14);
  writeIPv4(out, 16, srcAddress);
  writeIPv4(out, 20, dstAddress);
  out.writeUInt16BE(port(srcPort), 24);
  out.writeUInt16BE(port(dstPort), 26);
  return out;
}

function writeIPv4(out: Buffer, at: number, address: string): void {
  // An IPv4-mapped IPv6 address is what a dual-stack socket reports for an IPv4 peer.
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (!isIPv4(v4)) throw new Error(`not an IPv4 address: ${address}`);
  v4.split('.').forEach((octet, i) => {
    out[at + i] = Number(octet);
  });
}

function port(p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`not a port: ${p}`);
  return p;
}
