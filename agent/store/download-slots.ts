/** Serving a read a program waits on, or filling ahead / in the background. */
export type DownloadKind = 'demand' | 'fill';

/**
 * A file that has brought nothing for this long is stalled: its downloads give their slots
 * to reads of other files, and it stops no download to get one itself (it waits for a free
 * slot, so stalled files neither trade connections nor take a healthy file's read-ahead).
 * Long enough that a healthy download between two packets never counts; short enough that
 * a healthy file is held up by stalled ones for no longer: at most this, and a quarter of
 * the read timeout (stalledYieldMs), so a healthy file's read has three quarters of its
 * deadline left for its own download whatever --read-timeout says.
 */
export const STALLED_YIELD_MS = 2000;
const STALLED_YIELD_MIN_MS = 250;

/** The stalled yield for a read timeout: a quarter of it, between 250 ms and STALLED_YIELD_MS. */
export function stalledYieldMs (readTimeoutMs: number): number {
  return Math.min(STALLED_YIELD_MS, Math.max(STALLED_YIELD_MIN_MS, Math.floor(readTimeoutMs / 4)));
}

/** One running download, or one asking to run, as the slots see it. */
export interface SlotHolder {
  readonly kind: DownloadKind;
  /** True while a read a program waits on depends on this download. */
  needed (): boolean;
  /** Monotonic time of its file's last byte (or of its first download's start). */
  fileLastProgressAt (): number;
  /** Stops it; it gives its slot back when it has ended. */
  preempt (): void;
}

/** A file's way to ask again for a slot. */
type Retry = () => void;

/**
 * The limit on origin connections across all files.
 *
 * A download a program is waiting on (demand) that finds no free slot stops one that can
 * give way, in this order: a read-ahead or background fill; a demand download whose reads
 * are served; one of the file stalled longest. A stalled file's request stops nobody.
 * The stopped one keeps its slot until it has really ended, so the limit holds at the
 * origin too, and then its slot is promised to the file that stopped it: the stopped
 * download's own file, which asks again as soon as it ends, cannot take it back.
 *
 * Files refused a slot are told when one may be had: those promised one first, then those
 * waiting for demand downloads, then, if slots are left, those waiting for fill (a fill
 * never takes a slot while a file waits for a demand one). While files wait for demand
 * slots and a holder is not yet stalled, a timer tells them again when it will be.
 */
export class DownloadSlots {
  readonly max: number;
  readonly #active = new Set<SlotHolder>();
  /** Holders asked to stop for a waiting read, until they have ended, and the file they stop for. */
  readonly #stopping = new Map<SlotHolder, Retry>();
  /** Files whose stopped download has ended: each is owed one slot. */
  readonly #promised = new Set<Retry>();
  /** Files that could not get a slot: demand before fill. */
  readonly #waiting: Record<DownloadKind, Set<Retry>> = { demand: new Set(), fill: new Set() };
  #wakeQueued = false;
  #recheck: NodeJS.Timeout | null = null;
  #recheckAt = Infinity;

  /** A holder whose file brought nothing for this long gives way (stalledYieldMs). */
  readonly #yieldMs: number;

  constructor (max: number, yieldMs = STALLED_YIELD_MS) {
    this.max = max;
    this.#yieldMs = yieldMs;
  }

  get active (): number { return this.#active.size; }
  /** The most slots ever held at once. */
  peak = 0;

  /**
   * Takes a slot for `holder`, or queues `retry` to be called when one may be had (once,
   * however often it is asked before then). A demand download that finds none stops one
   * that can give way, and is owed its slot.
   */
  acquire (holder: SlotHolder, retry: Retry): boolean {
    const waitingForDemand = this.#waiting.demand.size > 0 || this.#promised.size > 0;
    const free = this.max - this.#active.size - this.#promised.size; // owed slots are not free
    if (free > 0 && !(holder.kind === 'fill' && waitingForDemand)) {
      this.#active.add(holder);
      this.peak = Math.max(this.peak, this.#active.size);
      return true;
    }
    if (holder.kind === 'demand' && ![...this.#stopping.values()].includes(retry)) {
      const victim = this.#victim(holder);
      if (victim !== undefined) {
        this.#stopping.set(victim, retry);
        victim.preempt();
        return false;
      }
    }
    this.#waiting[holder.kind].add(retry);
    if (holder.kind === 'demand') this.#recheckWhenStalled();
    return false;
  }

  release (holder: SlotHolder): void {
    this.#active.delete(holder);
    const owed = this.#stopping.get(holder);
    if (owed !== undefined) {
      this.#stopping.delete(holder);
      this.#promised.add(owed);
    }
    this.#wake();
  }

  /** Reads were served somewhere, so a slot may now be taken: files waiting for one try again. */
  poke (): void {
    if (this.#waiting.demand.size > 0) this.#wake();
  }

  /** Forgets a file that no longer wants a slot (it closed). */
  forget (retry: Retry): void {
    this.#waiting.demand.delete(retry);
    this.#waiting.fill.delete(retry);
    this.#promised.delete(retry);
  }

  /** The holder that gives way to `asker`: see the class note for the order. */
  #victim (asker: SlotHolder): SlotHolder | undefined {
    const now = performance.now();
    if (now - asker.fileLastProgressAt() >= this.#yieldMs) return undefined; // it waits for a free slot
    let stalled: SlotHolder | undefined;
    let stalledSince = Infinity;
    for (const h of this.#active) {
      if (this.#stopping.has(h)) continue;
      if (h.kind === 'fill' || !h.needed()) return h;
      const since = h.fileLastProgressAt();
      if (now - since >= this.#yieldMs && since < stalledSince) {
        stalled = h;
        stalledSince = since;
      }
    }
    return stalled;
  }

  /**
   * Tells the demand queue again when the first holder that is not stalled yet will be.
   * Holders stalled already arm nothing: the queue was just told, and could not use them.
   */
  #recheckWhenStalled (): void {
    const now = performance.now();
    let at = Infinity;
    for (const h of this.#active) {
      const due = h.fileLastProgressAt() + this.#yieldMs;
      if (!this.#stopping.has(h) && due > now) at = Math.min(at, due);
    }
    if (at === Infinity || at >= this.#recheckAt) return;
    if (this.#recheck !== null) clearTimeout(this.#recheck);
    this.#recheckAt = at;
    this.#recheck = setTimeout(() => {
      this.#recheck = null;
      this.#recheckAt = Infinity;
      this.#wake();
    }, at - now);
    this.#recheck.unref(); // the agent's mount and socket keep it alive; this wait never does by itself
  }

  #wake (): void {
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    // Each tries again; one that still finds no slot queues itself again.
    setImmediate(() => {
      this.#wakeQueued = false;
      const promised = [...this.#promised];
      this.#promised.clear(); // now theirs to take
      for (const retry of promised) retry();
      this.#tellAll('demand');
      if (this.#active.size < this.max) this.#tellAll('fill');
    });
  }

  #tellAll (kind: DownloadKind): void {
    const told = [...this.#waiting[kind]];
    this.#waiting[kind].clear();
    for (const retry of told) retry();
  }
}
