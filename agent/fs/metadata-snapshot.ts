import type { Catalogue } from '../catalogue/catalogue';
import { BLOCK_BYTES } from '../store/range-set';

/**
 * The catalogue as the FUSE threads answer getattr and readdir from it without JavaScript
 * (native/metadata.c), so listing the mount never waits for a busy event loop.
 * Little-endian: u32 count, then per node u8 isDir, 3 bytes unused, u32 pathBytes, f64 size,
 * f64 mtimeMs, the path in FUSE's form ("/", "/videos/a.mp4"). A folder's size and times
 * are what fuse-ops answers for it.
 */
export function encodeMetadata (catalogue: Catalogue, dirMtimeMs: number): Buffer {
  const nodes: Array<{ dir: boolean; path: Buffer; size: number; mtimeMs: number }> = [];
  for (const dir of catalogue.dirs()) nodes.push({ dir: true, path: Buffer.from(`/${dir}`), size: BLOCK_BYTES, mtimeMs: dirMtimeMs });
  for (const e of catalogue.entries()) nodes.push({ dir: false, path: Buffer.from(`/${e.name}`), size: e.origin.size, mtimeMs: e.mtimeMs });
  let bytes = 4;
  for (const n of nodes) bytes += 24 + n.path.length;
  const out = Buffer.alloc(bytes);
  out.writeUInt32LE(nodes.length, 0);
  let at = 4;
  for (const n of nodes) {
    out[at] = n.dir ? 1 : 0;
    out.writeUInt32LE(n.path.length, at + 4);
    out.writeDoubleLE(n.size, at + 8);
    out.writeDoubleLE(n.mtimeMs, at + 16);
    n.path.copy(out, at + 24);
    at += 24 + n.path.length;
  }
  return out;
}

/**
 * Many turns spent encoding, at most this share of them: a copy that took E ms is followed
 * by the next no sooner than E × (1 / share − 1) ms later.
 */
const ENCODE_SHARE = 0.1;

/**
 * Keeps the FUSE threads' copy of the catalogue current: a change drops the copy at once, in
 * the same turn (JavaScript answers meanwhile, from the catalogue itself), and a new one is
 * handed over on a later turn, once for any number of changes. Changes that keep coming (a
 * list of 10,000 files added one by one, each in its own turn) would otherwise re-encode the
 * growing catalogue 10,000 times: the next copy waits until encoding has had no more than
 * ENCODE_SHARE of the time since the last one (measured: 5.9 s of 12.7 s adding 10,000 files
 * went to encoding before this).
 */
export class MetadataPublisher {
  readonly #publish: (snapshot: Buffer | null) => void;
  readonly #encode: () => Buffer;
  #pending: NodeJS.Immediate | NodeJS.Timeout | null = null;
  /** Monotonic time before which no new copy is made. */
  #nextAt = 0;
  /** After close (shutdown), a change only drops the copy: none is handed over again. */
  #closed = false;

  constructor (publish: (snapshot: Buffer | null) => void, encode: () => Buffer) {
    this.#publish = publish;
    this.#encode = encode;
  }

  changed (): void {
    this.#publish(null);
    if (this.#closed || this.#pending !== null) return;
    const wait = this.#nextAt - performance.now();
    this.#pending = wait <= 0 ? setImmediate(this.#hand) : setTimeout(this.#hand, wait);
  }

  close (): void {
    this.#closed = true;
    if (this.#pending !== null) {
      clearImmediate(this.#pending as NodeJS.Immediate);
      clearTimeout(this.#pending as NodeJS.Timeout);
    }
    this.#pending = null;
  }

  readonly #hand = (): void => {
    this.#pending = null;
    const began = performance.now();
    this.#publish(this.#encode());
    const took = performance.now() - began;
    this.#nextAt = began + took / ENCODE_SHARE;
  };
}
