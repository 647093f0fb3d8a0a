/**
 * Fixed-size buffers handed out and taken back, so a download's bytes pass through the same
 * few buffers instead of a fresh one per socket read. A fresh buffer per read that lives until
 * its write lands outlives the young generation, and only full collections free it: at 1 GiB
 * that was most of the agent's garbage-collector time (see docs/PERFORMANCE.md).
 */
export class BufferPool {
  readonly size: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];

  /** Buffers of `size` bytes; at most `keep` idle ones are kept for reuse. */
  constructor (size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  take (): Buffer {
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives a buffer back; the caller must not touch it again. */
  give (buf: Buffer): void {
    if (buf.length === this.size && this.#free.length < this.#keep) this.#free.push(buf);
  }
}

/** Buffers bodies arrive in: large enough that a fast origin's bytes are written a few hundred KiB at a time. */
const BODY_BUFFER_BYTES = 256 * 1024;
/** Idle ones kept: what 16 downloads at their high-water mark hold, about. */
const BODY_BUFFERS_KEPT = 64;

/** The pool every download of an agent shares. */
export function bodyBufferPool (): BufferPool {
  return new BufferPool(BODY_BUFFER_BYTES, BODY_BUFFERS_KEPT);
}
