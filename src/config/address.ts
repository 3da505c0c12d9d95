import { defaults } from '../defaults.ts';
import { type HostPort, parseHostPort } from '../units.ts';

/**
 * The admin server's address: `HOST:PORT`, or a bare `PORT` / `:PORT`, which bind
 * defaults.adminHost (loopback): the admin API is never exposed unless a host says so.
 */
export function parseAdminAddress(text: string, what: string): HostPort {
  const t = text.trim();
  if (/^\d{1,5}$/.test(t)) return parseHostPort(`${defaults.adminHost}:${t}`, what);
  if (/^:\d{1,5}$/.test(t)) return parseHostPort(`${defaults.adminHost}${t}`, what);
  return parseHostPort(t, what);
}
