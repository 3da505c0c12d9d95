/** The admin token check: `Authorization: Bearer TOKEN`, compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';

/** True when `header` is `Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  return sameSecret(header.slice('Bearer '.length), token);
}

/**
 * Constant-time equality of two strings. Both are hashed first, so the comparison does not even
 * reveal the token's length (timingSafeEqual needs equal lengths).
 */
export function sameSecret(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
