import type { FastReadGate } from '../store/fast-read-gate';

interface Live { handles: number; reads: number; bytes: number }

/**
 * Reads answered through the mount (what the kernel's page cache did not answer): those
 * JavaScript answered, plus those the FUSE thread answered itself, which each file's
 * FastReadGate counts. A gate is counted from its first open handle to its last release.
 */
export class ServedCounter {
  /** Reads JavaScript answered. */
  #reads = 0;
  #fastReads = 0;
  #bytes = 0;
  /** Gates with open handles -> their counts when they were first opened. */
  readonly #live = new Map<FastReadGate, Live>();

  countRead (bytes: number): void {
    this.#reads++;
    this.#bytes += bytes;
  }

  opened (gate: FastReadGate): void {
    const live = this.#live.get(gate);
    if (live !== undefined) live.handles++;
    else this.#live.set(gate, { handles: 1, reads: gate.reads, bytes: gate.bytes });
  }

  released (gate: FastReadGate): void {
    const live = this.#live.get(gate);
    if (live === undefined || --live.handles > 0) return;
    this.#live.delete(gate);
    this.#fastReads += gate.reads - live.reads;
    this.#bytes += gate.bytes - live.bytes;
  }

  /** `fastReads`: those of `reads` the FUSE thread answered itself. */
  get total (): { reads: number; bytes: number; fastReads: number } {
    let fastReads = this.#fastReads;
    let bytes = this.#bytes;
    for (const [gate, live] of this.#live) {
      fastReads += gate.reads - live.reads;
      bytes += gate.bytes - live.bytes;
    }
    return { reads: this.#reads + fastReads, bytes, fastReads };
  }
}
