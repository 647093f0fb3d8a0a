/**
 * The switch for reads the FUSE thread answers itself (patches/fuse-native: fast_read): while
 * it is open, reads of this file never enter JavaScript; they pread the temp file. It is
 * open only while every byte of the file is on disk, and closed, with reads already past it
 * drained, before any byte is dropped or the file closed.
 *
 * Shared with the binding, byte for byte: int32 enabled, int32 inFlight, int64 reads,
 * int64 bytes. The buffer's memory never moves, and the store keeps it alive while the
 * file is open (a handle holds its store).
 */
export class FastReadGate {
  readonly state = Buffer.alloc(24);
  readonly #flags = new Int32Array(this.state.buffer, this.state.byteOffset, 2);
  readonly #counts = new BigInt64Array(this.state.buffer, this.state.byteOffset + 8, 2);

  open (): void { Atomics.store(this.#flags, 0, 1); }

  /** Closes the gate and resolves once no read that got past it is still reading. */
  async close (): Promise<void> {
    Atomics.store(this.#flags, 0, 0);
    // A pread takes microseconds; a turn of the event loop per check costs nothing.
    while (Atomics.load(this.#flags, 1) !== 0) await new Promise(resolve => setImmediate(resolve));
  }

  /** Reads answered past JavaScript, and their bytes. */
  get reads (): number { return Number(Atomics.load(this.#counts, 0)); }
  get bytes (): number { return Number(Atomics.load(this.#counts, 1)); }
}
