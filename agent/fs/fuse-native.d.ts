// fuse-native ships no types; this covers the part fusestream uses, with what
// patches/fuse-native+2.2.6.patch adds (the caller's pid, keep_cache, raw -o options).
declare module 'fuse-native' {
  type Cb = (err: number) => void;
  interface Stat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink: number;
    mtime: Date;
    atime: Date;
    ctime: Date;
    blocks?: number;
    blksize?: number;
    ino?: number;
  }
  interface Statfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }
  type OpenCallback = (err: number, fd?: number, keepCache?: boolean, fast?: { fd: number; state: Buffer }) => void;
  export interface FuseOps {
    init?(cb: Cb): void;
    getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
    fgetattr?(path: string, fd: number, cb: (err: number, stat?: Stat) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[]) => void): void;
    statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
    access?(path: string, mode: number, cb: Cb): void;
    /** `keepCache`: the kernel keeps the file's page cache from earlier opens (FOPEN_KEEP_CACHE). */
    /**
     * `fast`: a descriptor of the file's bytes and a state block (agent/store/fast-read-gate.ts)
     * for reads the FUSE thread answers itself while the state says the file is whole.
     */
    open?(path: string, flags: number, cb: OpenCallback, pid?: number): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void, pid?: number): void;
    release?(path: string, fd: number, cb: Cb): void;
    [op: string]: unknown;
  }
  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    autoCache?: boolean;
    kernelCache?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    debug?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    timeout?: number | false | Record<string, number>;
    /** -o options passed to libfuse as they are. */
    options?: string[];
    /** A missing mount point is left to the platform's mount helper (macFUSE's creates it). */
    helperCreatesMountPoint?: boolean;
  }
  class Fuse {
    constructor (mnt: string, ops: FuseOps, opts?: FuseOptions);
    mount (cb: (err: Error | null) => void): void;
    unmount (cb: (err: Error | null) => void): void;
    static unmount (mnt: string, cb: (err: Error | null) => void): void;
    /**
     * A copy of the tree the FUSE threads answer getattr and readdir from (agent/fs/metadata-snapshot.ts),
     * or null. False when the copy could not be built: then the handlers answer.
     */
    setMetadata (snapshot: Buffer | null): boolean;
    /** How many getattr and readdir answers the FUSE threads gave from that copy. */
    metadataAnswers (): number;
    /** A store closed, its fast-read gate shut and drained: the binding closes its descriptor of the temp file now. */
    retireFastReads (state: Buffer): void;
    static readonly EIO: number;
  }
  export default Fuse;
}
