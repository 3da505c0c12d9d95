/**
 * One coarse timer shared by every connection's timeouts (connect, idle, half-closed), in the
 * spirit of undici's: thousands of connections cost one interval, not one setTimeout each.
 *
 * A hashed wheel with lazy rescheduling: an entry sits in the slot of the deadline it had when it
 * was filed. When the slot comes round, the entry is asked for its current deadline — activity
 * since filing pushes it later, so it is filed again instead of expiring. Activity therefore costs
 * one field store (`lastActivity = wheel.now`), never a timer operation.
 */
export interface TimerEntry {
  /** The absolute deadline now, in wheel milliseconds; 0 means none (drop the entry). */
  deadline(): number;
  /** Called once when the deadline has passed. */
  expire(): void;
  /** Slot the entry is filed in, or -1; owned by the wheel. */
  wheelSlot: number;
  /** Position inside that slot; owned by the wheel. */
  wheelIndex: number;
}

export class TimerWheel {
  /** Coarse clock in milliseconds, refreshed every tick. Read it instead of Date.now() per event. */
  now: number;
  private readonly tickMs: number;
  private readonly slots: TimerEntry[][];
  private cursor: number;
  private handle: ReturnType<typeof setInterval> | undefined;

  constructor(tickMs: number, slotCount = 1024) {
    this.tickMs = tickMs;
    this.slots = Array.from({ length: slotCount }, () => []);
    this.now = Date.now();
    this.cursor = this.slotFor(this.now);
  }

  /** Starts ticking. The interval is unref'd: the wheel never keeps a process alive. */
  start(): void {
    if (this.handle) return;
    this.handle = setInterval(() => this.tick(), this.tickMs);
    this.handle.unref();
  }

  stop(): void {
    if (this.handle) clearInterval(this.handle);
    this.handle = undefined;
  }

  /** Files (or refiles) an entry by its current deadline. */
  schedule(entry: TimerEntry): void {
    this.cancel(entry);
    const at = entry.deadline();
    if (at === 0) return;
    // Past the wheel's horizon, file it in the farthest slot; it is refiled when reached.
    const horizon = this.now + (this.slots.length - 1) * this.tickMs;
    const slot = this.slotFor(Math.max(Math.min(at, horizon), this.now + this.tickMs));
    const list = this.slots[slot] as TimerEntry[];
    entry.wheelSlot = slot;
    entry.wheelIndex = list.length;
    list.push(entry);
  }

  /** Takes an entry out of the wheel in O(1), so a closed connection is not kept alive by it. */
  cancel(entry: TimerEntry): void {
    if (entry.wheelSlot < 0) return;
    const list = this.slots[entry.wheelSlot] as TimerEntry[];
    const last = list.pop() as TimerEntry;
    if (last !== entry) {
      list[entry.wheelIndex] = last;
      last.wheelIndex = entry.wheelIndex;
    }
    entry.wheelSlot = -1;
  }

  /** Advances the clock and handles every slot it passed. Public for tests. */
  tick(now = Date.now()): void {
    this.now = now;
    const target = this.slotFor(now);
    while (this.cursor !== target) {
      this.cursor = (this.cursor + 1) % this.slots.length;
      this.runSlot(this.cursor);
    }
  }

  private runSlot(index: number): void {
    const due = this.slots[index] as TimerEntry[];
    if (due.length === 0) return;
    this.slots[index] = [];
    // Unfile them all first: expiring one may cancel another, which must not touch the new slot.
    for (const entry of due) entry.wheelSlot = -1;
    for (const entry of due) {
      if (entry.wheelSlot !== -1) continue; // refiled while an earlier one expired
      const at = entry.deadline();
      if (at === 0) continue;
      if (at <= this.now) entry.expire();
      else this.schedule(entry);
    }
  }

  private slotFor(ms: number): number {
    return Math.floor(ms / this.tickMs) % this.slots.length;
  }
}
