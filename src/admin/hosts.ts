/**
 * The admin server's Host allow-list, against DNS rebinding: a page on attacker.example whose
 * name is made to resolve to 127.0.0.1 reaches the admin server with the browser's
 * same-origin blessing, but its requests say `Host: attacker.example`. So a request is served
 * only when its Host (the port left aside) is
 * - an IP address, v4 or v6: an address cannot be rebound, only a name can (the kubelet's
 *   probes say `Host: POD_IP:PORT`, a scraper `Host: 10.0.0.7:9100`);
 * - `localhost`, or the host the server listens on;
 * - one of `admin.allowedHosts` (names, compared without case), or anything when that holds `*`.
 * A request without a Host header (HTTP/1.0; never a browser) is served.
 */
import { ipFamily } from '../units.ts';

/** A test of a request's Host header (see the file comment). */
export type HostCheck = (header: string | undefined) => boolean;

/** The Host check for a server listening on `listenHost`, allowing `extra` names too. */
export function hostCheck(listenHost: string, extra: readonly string[] = []): HostCheck {
  if (extra.includes('*')) return () => true;
  const names = new Set(['localhost', listenHost.toLowerCase(), ...extra.map(lower)]);
  return (header) => {
    if (header === undefined) return true;
    const host = hostOf(header);
    return ipFamily(host) !== 0 || names.has(host);
  };
}

/** The host part of a Host header, lower case, without brackets or port. */
function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  // More than one colon without brackets is no valid Host; left whole, it is refused as a name
  // unless it is an address.
  return colon < 0 || h.indexOf(':', colon + 1) >= 0 ? h : h.slice(0, colon);
}

function lower(name: string): string {
  return name.toLowerCase();
}
