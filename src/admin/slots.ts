/**
 * The admin server's connection slots: at most `max` connections at once, and an idle one never
 * keeps a new one out. A connection is idle from its accept until its first request arrives, and
 * again after each response; busy while a request is being answered. When every slot is taken,
 * an idle one is closed to make room (a slowloris client, connected and silent or stopped inside
 * its request line, is idle): of the client address holding the most idle slots, the one idle
 * the longest. Only when all are busy is the new one closed. So however many idle connections a
 * peer opens, a probe's connection is the newest and gets its answer, and a peer that churns
 * connections from one address closes its own ones first, not the kubelet's: the liveness probe
 * cannot be locked out by 64 silent sockets.
 *
 * The timeouts are here too, the same on every runtime (Bun's node:http applies none of
 * headersTimeout, keepAliveTimeout or setTimeout to the connections handed to it): one coarse
 * timer closes a connection idle past its limit (before its first request: headersMs; after a
 * response: keepAliveMs) or busy past busyMs.
 */
import type { Socket } from 'node:net';

/** Per connection: requests in flight (pipelined ones come one at a time), and since when. */
interface Slot {
  busy: number;
  /** performance.now() when it was accepted or last changed between idle and busy. */
  since: number;
  /** Whether it has had a response: its idle limit is then keepAliveMs. */
  served: boolean;
  /** The client's address, for the share each address holds. */
  address: string;
}

export interface SlotLimits {
  /** Connections at once (at least 1). */
  max: number;
  /** Ms a connection may wait for its first request. */
  headersMs: number;
  /** Ms a connection may stay idle after a response. */
  keepAliveMs: number;
  /** Ms one request may take, its answer included. */
  busyMs: number;
  /** Ms between two sweeps of the timer. */
  sweepMs: number;
}

/** The slots (see the file comment). Sockets are destroyed here, never ended: nothing is owed. */
export class ConnectionSlots {
  private readonly limits: SlotLimits;
  private readonly slots = new Map<Socket, Slot>();
  private timer: NodeJS.Timeout | null = null;
  /** Idle connections closed to make room, since start. */
  evicted = 0;
  /** New connections closed because every slot was busy, since start. */
  refused = 0;

  constructor(limits: SlotLimits) {
    this.limits = limits;
    this.sweep = this.sweep.bind(this);
  }

  /** Connections held now. */
  get size(): number {
    return this.slots.size;
  }

  /**
   * Takes a new connection: true when it has a slot (an idle one may have been closed for it),
   * false when every slot is busy (it is then destroyed).
   */
  admit(socket: Socket): boolean {
    if (this.slots.size >= this.limits.max) {
      const victim = this.longestIdle();
      if (victim === null) {
        this.refused++;
        socket.destroy();
        return false;
      }
      this.evicted++;
      this.drop(victim);
    }
    this.slots.set(socket, {
      busy: 0,
      since: performance.now(),
      served: false,
      address: socket.remoteAddress ?? '',
    });
    socket.once('close', () => this.slots.delete(socket));
    this.timer ??= setInterval(this.sweep, this.limits.sweepMs).unref();
    return true;
  }

  /** A request arrived on `socket`. */
  busy(socket: Socket): void {
    const slot = this.slots.get(socket);
    if (slot === undefined) return;
    if (slot.busy++ === 0) slot.since = performance.now();
  }

  /** A response on `socket` is over (sent or abandoned). */
  idle(socket: Socket): void {
    const slot = this.slots.get(socket);
    if (slot === undefined || slot.busy === 0) return;
    slot.served = true;
    if (--slot.busy === 0) slot.since = performance.now();
  }

  /** Closes every connection and stops the timer. */
  closeAll(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const socket of [...this.slots.keys()]) this.drop(socket);
  }

  /**
   * Of the address with the most idle connections, the one idle the longest; null when all are
   * busy. Two passes over at most `max` slots.
   */
  private longestIdle(): Socket | null {
    const idle = new Map<string, number>();
    let most = 0;
    for (const slot of this.slots.values()) {
      if (slot.busy > 0) continue;
      const n = (idle.get(slot.address) ?? 0) + 1;
      idle.set(slot.address, n);
      if (n > most) most = n;
    }
    let found: Socket | null = null;
    let since = Number.POSITIVE_INFINITY;
    for (const [socket, slot] of this.slots) {
      if (slot.busy === 0 && idle.get(slot.address) === most && slot.since < since) {
        found = socket;
        since = slot.since;
      }
    }
    return found;
  }

  private drop(socket: Socket): void {
    this.slots.delete(socket);
    socket.destroy();
  }

  private sweep(): void {
    const now = performance.now();
    const { headersMs, keepAliveMs, busyMs } = this.limits;
    for (const [socket, slot] of this.slots) {
      const limit = slot.busy > 0 ? busyMs : slot.served ? keepAliveMs : headersMs;
      if (now - slot.since >= limit) this.drop(socket);
    }
    if (this.slots.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
