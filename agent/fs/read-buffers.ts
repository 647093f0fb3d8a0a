/** libfuse 2 caps a read request at 128 KiB (macFUSE reads in iosize units, 1 MiB here). */
const POOLED_BYTES = [128 * 1024, 1024 * 1024];
/** Buffers kept per size: about as many as reads JavaScript answers at once. */
const KEEP = 64;

/**
 * Buffers a read answered by JavaScript is read into before its bytes are copied into FUSE's
 * buffer. fuse-native answers a read itself when its own timeout fires and then frees
 * libfuse's buffer, while a temp-file read already queued in libuv's thread pool still holds
 * the buffer's address: reading into a buffer of our own means a late read can only ever
 * write here, and the copy into FUSE's buffer is skipped once fuse-native has answered.
 */
export class ReadBuffers {
  readonly #free = new Map<number, Buffer[]>(POOLED_BYTES.map(n => [n, []]));

  take (len: number): Buffer {
    const size = POOLED_BYTES.find(n => n >= len);
    return size === undefined ? Buffer.allocUnsafe(len) : (this.#free.get(size)!.pop() ?? Buffer.allocUnsafe(size));
  }

  give (buf: Buffer): void {
    const free = this.#free.get(buf.length);
    if (free !== undefined && free.length < KEEP) free.push(buf);
  }
}

/**
 * True once fuse-native has answered a request itself (its timeout) and detached the
 * ArrayBuffer over libfuse's memory: nothing may be written into it any more.
 */
export function isDetached (buf: Buffer): boolean {
  return buf.buffer.byteLength === 0;
}
