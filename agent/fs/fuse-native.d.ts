// fuse-native ships no types; this covers the part fusestream uses.
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
  export interface FuseOps {
    init?(cb: Cb): void;
    getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
    fgetattr?(path: string, fd: number, cb: (err: number, stat?: Stat) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[]) => void): void;
    statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
    access?(path: string, mode: number, cb: Cb): void;
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
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
  }
  class Fuse {
    constructor (mnt: string, ops: FuseOps, opts?: FuseOptions);
    mount (cb: (err: Error | null) => void): void;
    unmount (cb: (err: Error | null) => void): void;
    static unmount (mnt: string, cb: (err: Error | null) => void): void;
    static readonly EIO: number;
  }
  export default Fuse;
}
