import type { DownloadKind } from './download-scheduler';

/** One running download as the slots see it. */
export interface SlotHolder {
  readonly kind: DownloadKind;
  /** True while a read a program waits on depends on this download. */
  needed (): boolean;
  /** Stops it; it gives its slot back when it has ended. */
  preempt (): void;
}

/**
 * The limit on origin connections across all files. A download a program is waiting on
 * (demand) may take the slot of one no waiting read needs (read-ahead, background fill, or
 * a demand download whose reads are served), which is stopped; a fill download only starts
 * when a slot is free and no file waits for one for a demand download, so a stopped fill's
 * file cannot take back the slot its stop freed. Files refused a slot are told when one
 * frees or may be taken: those waiting for demand first, then, if slots are left, fill.
 */
export class DownloadSlots {
  readonly max: number;
  readonly #active = new Set<SlotHolder>();
  /** Holders asked to stop for a waiting read, until they have ended. */
  readonly #stopping = new Set<SlotHolder>();
  /** Files that could not get a slot, told when one frees: demand before fill. */
  readonly #waiting: Record<DownloadKind, Set<() => void>> = { demand: new Set(), fill: new Set() };
  #wakeQueued = false;

  constructor (max: number) {
    this.max = max;
  }

  get active (): number { return this.#active.size; }
  /** The most slots ever held at once. */
  peak = 0;

  /**
   * Takes a slot for `holder`; false when none is free. For a demand download it then stops
   * one no waiting read needs: that one keeps its slot until it has really ended (so the
   * limit holds at the origin too), and the caller, queued with whenFree, gets it next.
   */
  acquire (holder: SlotHolder): boolean {
    if (holder.kind === 'fill' && this.#waiting.demand.size > 0) return false;
    if (this.#active.size < this.max) {
      this.#active.add(holder);
      this.peak = Math.max(this.peak, this.#active.size);
      return true;
    }
    if (holder.kind === 'demand') {
      const victim = [...this.#active].find(h => !this.#stopping.has(h) && (h.kind === 'fill' || !h.needed()));
      if (victim !== undefined) {
        this.#stopping.add(victim);
        victim.preempt();
      }
    }
    return false;
  }

  release (holder: SlotHolder): void {
    this.#active.delete(holder);
    this.#stopping.delete(holder);
    this.#wake();
  }

  /** Reads were served somewhere, so a slot may now be taken: files waiting for one try again. */
  poke (): void {
    if (this.#waiting.demand.size > 0) this.#wake();
  }

  #wake (): void {
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    // Each tries again; one that still finds no slot queues itself again.
    setImmediate(() => {
      this.#wakeQueued = false;
      this.#wakeAll('demand');
      if (this.#active.size < this.max) this.#wakeAll('fill');
    });
  }

  #wakeAll (kind: DownloadKind): void {
    const wake = [...this.#waiting[kind]];
    this.#waiting[kind].clear();
    for (const w of wake) w();
  }

  /** Calls `retry` once a slot frees (once, however often it is asked before then). */
  whenFree (kind: DownloadKind, retry: () => void): void {
    this.#waiting[kind].add(retry);
  }

  /** Forgets a file that no longer wants a slot (it closed). */
  forget (retry: () => void): void {
    this.#waiting.demand.delete(retry);
    this.#waiting.fill.delete(retry);
  }
}
