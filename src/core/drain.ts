import { defaults } from '../defaults.ts';

/**
 * Resolves true once `active()` is 0, or false when `deadlineMs` passed first (0 = no wait: true
 * only if nothing is open now). Polls every `pollMs`: a drain lasts seconds, so a coarse check is
 * cheaper than a callback on every closing connection.
 */
export async function waitForIdle(
  active: () => number,
  deadlineMs: number,
  pollMs: number = defaults.drainPollMs,
): Promise<boolean> {
  const deadline = performance.now() + deadlineMs;
  while (active() > 0) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, left)));
  }
  return true;
}
