/**
 * The switch for reads the FUSE thread answers itself (native/fast-reads.c): while
 * it is open, a read of this file that ends at or before `end` never enters JavaScript; it is
 * a pread of the temp file. `end` only ever covers bytes on disk; the gate is closed, with
 * reads already past it drained, before any byte is dropped or the file closed.
 *
 * Shared with the binding, byte for byte: int32 enabled, int32 inFlight, int64 reads,
 * int64 bytes, int64 end, then the binding's own fields (its descriptor of the temp file,
 * shared by the file's handles; their count; retired). The buffer's memory never moves, and
 * the binding holds a reference to it while a handle that was given it is open.
 */
export class FastReadGate {
  /** An `end` past any file: reads that run past the end of a whole file are short reads. */
  static readonly WHOLE = 2 ** 62;
  readonly state = Buffer.alloc(48);
  readonly #flags = new Int32Array(this.state.buffer, this.state.byteOffset, 2);
  readonly #counts = new BigInt64Array(this.state.buffer, this.state.byteOffset + 8, 3);

  /** Lets reads of [0, end) through (whole files: WHOLE). */
  open (end: number): void {
    Atomics.store(this.#counts, 2, BigInt(end));
    Atomics.store(this.#flags, 0, 1);
  }

  /** Where reads let through end now (0 while closed). */
  get end (): number {
    return Atomics.load(this.#flags, 0) === 0 ? 0 : Number(Atomics.load(this.#counts, 2));
  }

  /** Closes the gate and resolves once no read that got past it is still reading. */
  async close (): Promise<void> {
    Atomics.store(this.#flags, 0, 0);
    Atomics.store(this.#counts, 2, 0n);
    // A pread takes microseconds; a turn of the event loop per check costs nothing.
    while (Atomics.load(this.#flags, 1) !== 0) await new Promise(resolve => setImmediate(resolve));
  }

  /** Reads answered past JavaScript, and their bytes. */
  get reads (): number { return Number(Atomics.load(this.#counts, 0)); }
  get bytes (): number { return Number(Atomics.load(this.#counts, 1)); }
}
