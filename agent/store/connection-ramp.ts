/** The rate comparisons that add or give back a reader's extra connections are this far apart. */
const RAMP_MS = 1000;
/** An added connection stays if it brought at least this share of what each one brought before it. */
const RAMP_SHARE = 0.5;
/** After one was given back, no connection is added for this long. */
const RAMP_HOLD_MS = 10_000;

/**
 * How many connections a sequential reader of one file may have in front of it, learned from
 * what they bring. A read waiting on the download in front of it means the reader takes bytes
 * faster than they come. Then, at most once a second, the file's rate over the last second is
 * compared with the second before: a connection added stays if it brought at least RAMP_SHARE
 * of what each one brought before (and another may be added next time, up to the per-file
 * cap); otherwise it is given back (no new one for RAMP_HOLD_MS), since the origin or the
 * link, not the connection, was the limit. The scheduler places them (#fillAhead).
 */
export class ConnectionRamp {
  readonly #max: number;
  readonly #now: () => number;
  #parallel = 1;
  /** The last comparison: when, the bytes present then, the rate before it, whether it added a connection. */
  readonly #last = { at: -Infinity, present: 0, rate: 0, added: false, holdUntil: -Infinity };

  /** `max`: the per-file cap. `now`: monotonic milliseconds. */
  constructor (max: number, now: () => number) {
    this.#max = max;
    this.#now = now;
  }

  /** Connections a sequential reader may have in front of it now. */
  get parallel (): number { return this.#parallel; }

  /** A read waits on the download in front of it, with `presentBytes` of the file present: compare, and add or give back one. */
  readerWaited (presentBytes: number): void {
    const now = this.#now();
    const r = this.#last;
    if (now - r.at < RAMP_MS) return;
    const rate = r.at === -Infinity ? 0 : (presentBytes - r.present) / ((now - r.at) / 1000);
    // A comparison needs a full second behind it at the same number of connections.
    const measured = now - r.at < 2 * RAMP_MS;
    if (measured && r.added && rate < r.rate * (1 + RAMP_SHARE / (this.#parallel - 1))) {
      this.#parallel = Math.max(1, this.#parallel - 1);
      r.holdUntil = now + RAMP_HOLD_MS;
      r.added = false;
    } else if (measured && this.#parallel < this.#max && now >= r.holdUntil) {
      this.#parallel++;
      r.added = true;
    } else {
      r.added = false;
    }
    Object.assign(r, { at: now, present: presentBytes, rate });
  }

  /** No further connection could be had: the `running` ones are what there is, and an added one was not one. */
  noneToBeHad (running: number): void {
    this.#last.added = false;
    this.#parallel = Math.max(1, running);
  }

  /** The file's bytes are dropped: one connection, until a reader waits again. */
  reset (): void {
    this.#parallel = 1;
  }
}
