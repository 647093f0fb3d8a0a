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
 * Keeps the FUSE threads' copy of the catalogue current: a change drops the copy at once, in
 * the same turn (JavaScript answers meanwhile, from the catalogue itself), and a new one is
 * handed over on the next turn, once for any number of changes (a folder of 10,000 files).
 */
export class MetadataPublisher {
  readonly #publish: (snapshot: Buffer | null) => void;
  readonly #encode: () => Buffer;
  #pending: NodeJS.Immediate | null = null;
  /** After close (shutdown), a change only drops the copy: none is handed over again. */
  #closed = false;

  constructor (publish: (snapshot: Buffer | null) => void, encode: () => Buffer) {
    this.#publish = publish;
    this.#encode = encode;
  }

  changed (): void {
    this.#publish(null);
    if (this.#closed) return;
    this.#pending ??= setImmediate(() => {
      this.#pending = null;
      this.#publish(this.#encode());
    });
  }

  close (): void {
    this.#closed = true;
    if (this.#pending !== null) clearImmediate(this.#pending);
    this.#pending = null;
  }
}
