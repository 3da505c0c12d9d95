/**
 * Admission control of one frontend, on the client's address (the PROXY header's when there is
 * one): `allow` / `deny` CIDR sets, simultaneous connections and a token bucket per address, and
 * a token bucket for the whole frontend. Everything is decided before any backend connect.
 *
 * Per-address state lives in one Map used as an LRU list (an entry is moved to the end each time
 * it is touched). It is bounded: see defaults.sourceTableMax for what happens at the cap, and
 * defaults.sourceSweepMs for the sweep that forgets idle addresses.
 */
import { CidrSet, parseIpInto, sourceKey } from '../cidr.ts';
import type { LimitsConfig } from '../config/schema.ts';
import { defaults } from '../defaults.ts';
import type { Rejection } from './ending.ts';

/** What a frontend's config says about admission (all optional). */
export interface AdmissionConfig {
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
  limits?: LimitsConfig | undefined;
}

/** A token bucket: `rate` tokens per ms, at most `burst`. */
class Bucket {
  tokens: number;
  last: number;
  constructor(burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }
}

/** Takes one token from `b` if it has one (after refilling it up to `now`). */
function take(b: Bucket, perMs: number, burst: number, now: number): boolean {
  const refilled = b.tokens + (now - b.last) * perMs;
  b.tokens = Math.min(burst, refilled);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** One client address's state. */
interface Source {
  active: number;
  bucket: Bucket | null;
  /** Last time it was touched (admitted, refused, or a connection of it closed). */
  seen: number;
}

/** Scratch for address bytes (the event loop is single-threaded: one is enough). */
const SCRATCH = new Uint8Array(16);

export class Admission {
  private readonly allow: CidrSet | null;
  private readonly deny: CidrSet | null;
  private readonly perSourceConnections: number;
  /** Rates in tokens per ms; burst = one second's worth, at least 1. */
  private readonly sourcePerMs: number;
  private readonly sourceBurst: number;
  private readonly acceptPerMs: number;
  private readonly acceptBurst: number;
  private readonly acceptBucket: Bucket | null;
  private readonly sources = new Map<string, Source>();
  private readonly maxSources: number;
  /** An idle address is forgotten once its bucket would be full again (and at least this long). */
  private readonly expireMs: number;
  private readonly now: () => number;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  /** Addresses forgotten at the cap (not by the sweep): tests and logs. */
  evicted = 0;

  /** `maxSources`: the per-address cap (default defaults.sourceTableMax; tests lower it). */
  constructor(
    config: AdmissionConfig,
    maxConnections: number,
    now: () => number,
    maxSources: number = defaults.sourceTableMax,
  ) {
    this.now = now;
    this.allow = config.allow ? CidrSet.of(config.allow) : null;
    this.deny = config.deny?.length ? CidrSet.of(config.deny) : null;
    const l = config.limits;
    this.perSourceConnections = l?.perSourceConnections ?? 0;
    const sourceRate = l?.perSourceRate?.perSecond ?? 0;
    const acceptRate = l?.acceptRate?.perSecond ?? 0;
    this.sourcePerMs = sourceRate / 1000;
    this.sourceBurst = Math.max(1, sourceRate);
    this.acceptPerMs = acceptRate / 1000;
    this.acceptBurst = Math.max(1, acceptRate);
    this.acceptBucket = this.acceptPerMs > 0 ? new Bucket(this.acceptBurst, now()) : null;
    // Every address with an open connection keeps its entry: at most maxConnections of them.
    this.maxSources = Math.max(maxSources, maxConnections);
    this.expireMs = Math.max(1000, (this.sourceBurst / Math.max(this.sourcePerMs, 1e-9)) | 0);
    if (this.tracksSources) {
      this.sweeper = setInterval(() => this.sweep(), defaults.sourceSweepMs);
      this.sweeper.unref();
    }
  }

  /** True when some check needs the client's address. */
  get needsAddress(): boolean {
    return this.allow !== null || this.deny !== null || this.tracksSources;
  }

  private get tracksSources(): boolean {
    return this.perSourceConnections > 0 || this.sourcePerMs > 0;
  }

  /** The frontend's rate, checked before a socket object exists: false = refuse (accept_rate). */
  takeAccept(): boolean {
    const b = this.acceptBucket;
    return b === null || take(b, this.acceptPerMs, this.acceptBurst, this.now());
  }

  /**
   * Decides on a client at `address`. Admitted (null): with per-source limits it counts as one
   * of the address's open connections until `release(key)`, with `key` from `keyOf`.
   */
  admit(address: string): Rejection | null {
    if (this.allow !== null || this.deny !== null) {
      if (!parseIpInto(address, SCRATCH)) return 'denied'; // not an IP: no list can vouch for it
      if (this.deny?.has(SCRATCH)) return 'denied';
      if (this.allow !== null && !this.allow.has(SCRATCH)) return 'denied';
    }
    if (!this.tracksSources) return null;
    const key = sourceKey(address);
    const now = this.now();
    let s = this.sources.get(key);
    if (s === undefined) {
      if (this.sources.size >= this.maxSources) this.evictOne();
      s = {
        active: 0,
        bucket: this.sourcePerMs > 0 ? new Bucket(this.sourceBurst, now) : null,
        seen: now,
      };
    } else {
      this.sources.delete(key); // re-inserted below: the Map's order is least recently seen first
    }
    s.seen = now;
    this.sources.set(key, s);
    if (this.perSourceConnections > 0 && s.active >= this.perSourceConnections) {
      return 'source_limit';
    }
    if (s.bucket !== null && !take(s.bucket, this.sourcePerMs, this.sourceBurst, now)) {
      return 'source_rate';
    }
    s.active++;
    return null;
  }

  /** The key an admitted client at `address` is counted under, or null when none is kept. */
  keyOf(address: string): string | null {
    return this.tracksSources ? sourceKey(address) : null;
  }

  /** A connection admitted under `key` has closed. */
  release(key: string): void {
    const s = this.sources.get(key);
    if (s === undefined) return;
    s.active--;
    s.seen = this.now();
    this.sources.delete(key);
    this.sources.set(key, s);
  }

  /** Addresses with state kept (tests). */
  get trackedSources(): number {
    return this.sources.size;
  }

  /** At the cap: forgets the least recently seen address with no open connection. */
  private evictOne(): void {
    for (const [key, s] of this.sources) {
      if (s.active > 0) continue;
      this.sources.delete(key);
      this.evicted++;
      return;
    }
  }

  /** Forgets idle addresses whose bucket is full again; stops at the first recent one. */
  sweep(): void {
    const now = this.now();
    for (const [key, s] of this.sources) {
      if (now - s.seen < this.expireMs) return;
      if (s.active === 0) this.sources.delete(key);
    }
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
