/**
 * Asks DNS for a name again and again, and hands every good answer on. One Discovery per
 * `discover` block and per static server given by hostname.
 *
 * - The next question comes `every` ms after an answer, sooner when the answer's TTL is shorter,
 *   never sooner than defaults.dnsMinIntervalMs (a TTL of 0 would otherwise ask in a loop).
 * - One question at a time: a slow nameserver delays the next one, it never piles them up
 *   (c-ares gives up after its timeout × tries).
 * - A failed or empty resolution hands nothing on, so the owner keeps the last good answer. It is
 *   counted (`failures`, the metric switchyard_dns_failures_total) and logged once per outage:
 *   one warning when answers stop, one line when they come back.
 */
import type { Logger } from 'pino';
import { defaults } from '../defaults.ts';
import type { Answer, Resolved } from './dns.ts';

export interface DiscoveryOptions {
  /** Asks DNS once (Dns.addresses, Dns.srv or Dns.lookup, bound to the name). */
  query: () => Promise<Answer>;
  /** Milliseconds between questions when the TTL allows it. */
  everyMs: number;
  /** Told of every good answer (never of a failed or empty one). */
  answer: (addresses: Resolved[]) => void;
  /** Told of every failed resolution (the owner counts them). */
  failed: () => void;
  log: Logger;
  /** For log lines: the backend and what is resolved ("dns app.svc", "srv _x._tcp...", "host db"). */
  backend: string;
  what: string;
}

export class Discovery {
  private readonly options: DiscoveryOptions;
  everyMs: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private asking = false;
  private stopped = false;
  /** Failed resolutions in a row (0: the last one answered). */
  private outage = 0;
  /** Whether some resolution has answered yet. */
  answered = false;

  constructor(options: DiscoveryOptions) {
    this.options = options;
    this.everyMs = options.everyMs;
  }

  /** Asks at once, then on schedule. */
  start(): void {
    this.stopped = false;
    this.ask();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(askAgain, ms, this);
    this.timer.unref(); // the listeners keep the process alive, not a DNS timer
  }

  /** @internal the timer's callback (a named function, see askAgain). */
  ask(): void {
    this.timer = null;
    if (this.stopped || this.asking) return;
    this.asking = true;
    this.options.query().then(
      (answer) => this.onAnswer(answer),
      (err: unknown) => this.onFailure(err),
    );
  }

  private onAnswer(answer: Answer): void {
    this.asking = false;
    if (this.stopped) return;
    const o = this.options;
    if (this.outage > 0) {
      o.log.info(
        { backend: o.backend, name: o.what, failures: this.outage },
        `DNS answers again for ${o.what} (backend ${o.backend}) after ${this.outage} failed resolutions`,
      );
    }
    this.outage = 0;
    this.answered = true;
    o.answer(answer.addresses);
    const ttl = answer.ttlMs ?? Number.POSITIVE_INFINITY;
    this.schedule(Math.max(defaults.dnsMinIntervalMs, Math.min(this.everyMs, ttl)));
  }

  private onFailure(err: unknown): void {
    this.asking = false;
    if (this.stopped) return;
    const o = this.options;
    o.failed();
    this.outage++;
    if (this.outage === 1) {
      const code = (err as { code?: unknown })?.code;
      o.log.warn(
        { backend: o.backend, name: o.what, code, err: (err as Error)?.message },
        this.answered
          ? `DNS resolution of ${o.what} failed (${String(code)}); backend ${o.backend} keeps its last answer`
          : `DNS resolution of ${o.what} failed (${String(code)}); backend ${o.backend} has no server from it yet`,
      );
    }
    this.schedule(this.everyMs);
  }
}

function askAgain(d: Discovery): void {
  d.ask();
}
