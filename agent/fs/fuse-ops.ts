import { constants } from 'node:fs';
import type { FuseOps } from 'fuse-native';
import type { Catalogue, FileEntry } from '../catalogue/catalogue';
import type { TempFileStore } from '../store/temp-file-store';
import { BLOCK_BYTES } from '../store/range-set';
import { EBADF, EISDIR, ENOENT, ENOTDIR, EROFS, errnoOf, ETIMEDOUT, READ_FAILED } from './errno';
import { ReadAhead } from './read-ahead';
import { isDetached, ReadBuffers } from './read-buffers';
import type { ServedCounter } from './served-counter';

/** An open file: the store it reads, and how it reads (for read-ahead). */
interface Handle {
  readonly store: TempFileStore;
  readonly readAhead: ReadAhead;
}

/** What the FUSE operations need of the agent. */
export interface FsBackend {
  readonly catalogue: Catalogue;
  /** The store of a file, created on its first open; starts its download. */
  openStore (entry: FileEntry): Promise<TempFileStore>;
  /** Called when a handle of the store closes. */
  releaseStore (store: TempFileStore): void;
  /** Bumped each time bytes that failed their digest were dropped: cached pages of them must go. */
  contentEpoch (id: string): number;
  /** Counts reads the kernel's page cache did not answer; the agent shows them in its status. */
  readonly served: ServedCounter;
  /** The folders' mtime (agent/fs/metadata-snapshot.ts gives the FUSE threads the same). */
  readonly startedAtMs: number;
}

export interface FuseOpsOptions {
  /**
   * An open not answered by then fails with ETIMEDOUT, answered by us before fuse-native's own
   * timeout does: a store that arrives later is given back, so no handle is left that no
   * release will ever close.
   */
  openDeadlineMs: number;
}

/**
 * What the kernel may have cached of a name: its entry (a name removed and added again gets
 * a new id) in the version the origin then served.
 */
function contentVersion (entry: FileEntry, epoch: number): string {
  const { origin } = entry;
  return `${entry.id}|${origin.size}|${origin.etag ?? ''}|${origin.lastModified ?? ''}|${epoch}`;
}

const DIR_MODE = constants.S_IFDIR | 0o555;
const FILE_MODE = constants.S_IFREG | 0o444;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_RDWR | constants.O_TRUNC | constants.O_APPEND | constants.O_CREAT;

/**
 * The read-only FUSE operations. Metadata (getattr, readdir, statfs, access) answers from
 * the in-memory catalogue and never waits on a download; read goes to the file's store,
 * which may wait for bytes but always answers within its deadlines.
 */
export function createFuseOps (backend: FsBackend, opts: FuseOpsOptions): FuseOps {
  const { catalogue } = backend;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const startedAt = new Date(backend.startedAtMs);
  /** Open handles by FUSE's file handle number. */
  const handles = new Map<number, Handle>();
  let nextHandle = 1;
  /**
   * Name -> the content version its last open handed to the kernel. An open keeps the page
   * cache (keep_cache) unless the version changed since: so no open invalidates, and blocks
   * behind other readers' pending reads, for a file whose content is the same.
   */
  const openedVersion = new Map<string, string>();
  const { served } = backend;
  const buffers = new ReadBuffers();

  const readOnly = (...args: unknown[]): void => (args[args.length - 1] as (err: number) => void)(EROFS);

  return {
    getattr (path, cb) {
      const found = catalogue.lookup(path);
      if (found === null) return cb(ENOENT);
      if (found.kind === 'dir') {
        return cb(0, { mode: DIR_MODE, uid, gid, size: BLOCK_BYTES, nlink: 2, mtime: startedAt, atime: startedAt, ctime: startedAt });
      }
      const { origin, mtimeMs } = found.entry;
      const mtime = new Date(mtimeMs);
      cb(
        0,
        {
          mode: FILE_MODE,
          uid,
          gid,
          size: origin.size,
          nlink: 1,
          mtime,
          atime: mtime,
          ctime: mtime,
          blksize: BLOCK_BYTES,
          blocks: Math.ceil(origin.size / 512),
        }
      );
    },

    readdir (path, cb) {
      const found = catalogue.lookup(path);
      if (found === null) return cb(ENOENT);
      if (found.kind !== 'dir') return cb(ENOTDIR);
      cb(0, ['.', '..', ...found.children]);
    },

    statfs (_path, cb) {
      cb(0, {
        bsize: BLOCK_BYTES,
        frsize: BLOCK_BYTES,
        blocks: Math.ceil(catalogue.totalBytes / BLOCK_BYTES),
        bfree: 0,
        bavail: 0,
        files: catalogue.size,
        ffree: 0,
        favail: 0,
        fsid: 0,
        flag: 1 /* ST_RDONLY */,
        namemax: 255,
      });
    },

    access (path, mode, cb) {
      if (catalogue.lookup(path) === null) return cb(ENOENT);
      cb((mode & constants.W_OK) !== 0 ? EROFS : 0);
    },

    open (path, flags, cb) {
      if ((flags & WRITE_FLAGS) !== 0) return cb(EROFS);
      const found = catalogue.lookup(path);
      if (found === null) return cb(ENOENT);
      if (found.kind === 'dir') return cb(EISDIR);
      let answered = false;
      const deadline = setTimeout(() => {
        answered = true;
        cb(ETIMEDOUT);
      }, opts.openDeadlineMs);
      backend.openStore(found.entry).then(store => {
        if (answered) return backend.releaseStore(store); // the kernel was told the open failed
        answered = true;
        clearTimeout(deadline);
        const fh = nextHandle++;
        handles.set(fh, { store, readAhead: new ReadAhead() });
        served.opened(store.fastReads);
        // The entry as it is now: opening may have found that the origin changed.
        const { name } = found.entry;
        const version = contentVersion(catalogue.get(name) ?? found.entry, backend.contentEpoch(found.entry.id));
        const before = openedVersion.get(name);
        openedVersion.set(name, version);
        cb(0, fh, before === undefined || before === version, store.fastReadHandle() ?? undefined);
      }, err => {
        if (answered) return;
        answered = true;
        clearTimeout(deadline);
        cb(errnoOf(err));
      });
    },

    read (_path, fh, buf, len, pos, cb, pid) {
      const handle = handles.get(fh);
      if (handle === undefined) return cb(EBADF);
      const own = buffers.take(len);
      handle.store.read(own, len, pos, (err, bytes) => {
        if (err === null && !isDetached(buf)) own.copy(buf, 0, 0, bytes);
        buffers.give(own);
        if (err !== null) return cb(READ_FAILED);
        served.countRead(bytes);
        cb(bytes);
      }, handle.readAhead.after(pos, len, handle.store.fastReads.end), pid ?? null);
    },

    release (_path, fh, cb) {
      const handle = handles.get(fh);
      handles.delete(fh);
      if (handle !== undefined) {
        served.released(handle.store.fastReads);
        backend.releaseStore(handle.store);
      }
      cb(0);
    },

    // Everything that would change the tree or a file is refused.
    write: readOnly,
    create: readOnly,
    truncate: readOnly,
    ftruncate: readOnly,
    unlink: readOnly,
    rename: readOnly,
    mkdir: readOnly,
    rmdir: readOnly,
    symlink: readOnly,
    link: readOnly,
    chmod: readOnly,
    chown: readOnly,
    utimens: readOnly,
    mknod: readOnly,
    setxattr: readOnly,
    removexattr: readOnly,
  };
}
