import { createHash } from 'node:crypto';
import { FsError } from '../errors';
import type { FileSource } from '../origin/file-source';
import type { OriginInfo, RequestHeaders } from '../origin/origin-info';

/** One remote file as the mount shows it. */
export interface FileEntry {
  /** Stable id: names the temp file in the cache dir. */
  readonly id: string;
  /** Path inside the mount without a leading "/", e.g. "videos/a.mp4". */
  readonly name: string;
  /** The URL it was added with; for a file with a url-command and no URL, the first minted one without its query. */
  readonly url: string;
  /** The headers it was added with (a url-command gives its own). */
  readonly headers: RequestHeaders;
  /** The command that mints its URL and headers (argv, no shell), or null. */
  readonly urlCommand: readonly string[] | null;
  /** Gives each connection its URL and headers, from the fields above. */
  readonly endpoints: FileSource;
  /** The folder (fsctl add --recursive) it came from, or null. */
  readonly folder: string | null;
  readonly origin: OriginInfo;
  readonly addedAt: number;
  /** Shown as the file's mtime: the origin's Last-Modified, or when it was added. */
  readonly mtimeMs: number;
}

export type Lookup =
  | { kind: 'file'; entry: FileEntry }
  | { kind: 'dir'; children: ReadonlySet<string> };

/**
 * The names the mount shows, held in memory so that getattr, readdir and statfs never wait
 * on anything. Folders are implied by names with "/" and vanish with their last file.
 */
export class Catalogue {
  readonly #files = new Map<string, FileEntry>();
  /** Folder path ("" for the root) -> names of its children. */
  readonly #dirs = new Map<string, Set<string>>([['', new Set()]]);
  #totalBytes = 0;
  readonly #listeners: Array<() => void> = [];

  get size (): number { return this.#files.size; }
  get totalBytes (): number { return this.#totalBytes; }

  static entryId (name: string, url: string): string {
    return createHash('sha256').update(name).update('\0').update(url).digest('hex').slice(0, 24);
  }

  get (name: string): FileEntry | undefined { return this.#files.get(name); }

  /** Calls `listener` after every change, in the same turn. */
  onChange (listener: () => void): void { this.#listeners.push(listener); }

  /** Resolves a FUSE path ("/", "/videos/a.mp4"). */
  lookup (fusePath: string): Lookup | null {
    const key = fusePath === '/' ? '' : fusePath.slice(1);
    const entry = this.#files.get(key);
    if (entry !== undefined) return { kind: 'file', entry };
    const children = this.#dirs.get(key);
    return children === undefined ? null : { kind: 'dir', children };
  }

  /** Checks that `name` could be added: no file where a folder must go, and no folder under it. */
  checkFree (name: string): void {
    if (this.#files.has(name)) throw new FsError('EEXIST', `${name} is already in the mount`);
    if (this.#dirs.has(name)) throw new FsError('EISDIR', `${name} is a folder in the mount`);
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.#files.has(dir)) throw new FsError('ENOTDIR', `${dir} is a file in the mount, so it cannot hold ${name}`);
    }
  }

  add (entry: FileEntry): void {
    this.checkFree(entry.name);
    this.#files.set(entry.name, entry);
    this.#totalBytes += entry.origin.size;
    const parts = entry.name.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      let children = this.#dirs.get(dir);
      if (children === undefined) this.#dirs.set(dir, children = new Set());
      children.add(parts[i]);
    }
    this.#changed();
  }

  remove (name: string): FileEntry | undefined {
    const entry = this.#files.get(name);
    if (entry === undefined) return undefined;
    this.#files.delete(name);
    this.#totalBytes -= entry.origin.size;
    // Walk up, dropping each folder the removal left empty.
    const parts = name.split('/');
    for (let i = parts.length - 1; i >= 0; i--) {
      const dir = parts.slice(0, i).join('/');
      const children = this.#dirs.get(dir)!;
      children.delete(parts[i]);
      if (children.size > 0 || dir === '') break;
      this.#dirs.delete(dir);
    }
    this.#changed();
    return entry;
  }

  /** Swaps an entry for a new one under the same name (a new version at the origin). */
  replace (entry: FileEntry): void {
    this.remove(entry.name);
    this.add(entry);
  }

  entries (): IterableIterator<FileEntry> { return this.#files.values(); }

  /** Folder paths ("" for the root). */
  dirs (): IterableIterator<string> { return this.#dirs.keys(); }

  #changed (): void {
    for (const listener of this.#listeners) listener();
  }
}
