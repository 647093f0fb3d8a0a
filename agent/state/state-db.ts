import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { OriginInfo, RequestHeaders } from '../origin/origin-info';
import type { Digest } from '../verify/digest';
import type { FileState } from '../file-state';
import { MIGRATIONS } from './schema';

/** One catalogued file as stored. */
export interface FileRecord {
  id: string;
  name: string;
  url: string;
  headers: RequestHeaders;
  urlCommand: string[] | null;
  /** The folder (fsctl add --recursive) the file came from, or null. */
  folder: string | null;
  origin: OriginInfo;
  addedAt: number;
  lastAccessAt: number;
  mtimeMs: number;
  state: FileState;
  lastError: string | null;
  pinned: boolean;
  /** Paused (fsctl pause): nothing is downloaded that no program waits for. */
  paused: boolean;
  /** The bytes on disk hashed to the file's digest (cleared when they are dropped). */
  verified: boolean;
  /** Byte ranges whose data was on disk and synced when they were committed. */
  ranges: Array<[number, number]>;
}

interface FileRow {
  id: string;
  name: string;
  url: string;
  headers: string;
  url_command: string | null;
  folder: string | null;
  size: number;
  etag: string | null;
  last_modified: string | null;
  accept_ranges: number;
  added_at: number;
  last_access_at: number;
  mtime_ms: number;
  state: string;
  last_error: string | null;
  pinned: number;
  digest: string | null;
  verified: number;
  paused: number;
}

/** A remote folder added whole, with what decides which of its files are in the mount. */
export interface FolderRecord {
  /** Its path in the mount; its files are under it. */
  name: string;
  url: string;
  headers: RequestHeaders;
  include: string[];
  exclude: string[];
  depth: number | null;
  /** Read its index again this often (ms), or null: only on fsctl refresh. */
  refreshEveryMs: number | null;
  addedAt: number;
}

interface FolderRow {
  name: string;
  url: string;
  headers: string;
  include: string;
  exclude: string;
  depth: number | null;
  refresh_every_ms: number | null;
  added_at: number;
}

export interface OpenResult {
  db: StateDb;
  /** Set when the old database could not be used and was moved aside; the agent reports it. */
  problem: string | null;
}

/**
 * The agent's SQLite state: the catalogue, each temp file's committed ranges, and settings.
 * better-sqlite3 is synchronous, so every method here is one small statement or one short
 * transaction, called off the per-read path.
 */
export class StateDb {
  readonly #db: Db;
  readonly #stmts: ReturnType<typeof prepare>;

  private constructor (path: string, db: Db) {
    this.#db = db;
    this.#stmts = prepare(db);
  }

  /**
   * Opens (creating, owner-only) the database. One that cannot be opened or fails its
   * integrity check is moved aside to `<path>.corrupt-<time>` and a fresh one is started,
   * so a bad file never makes the agent crash-loop.
   */
  static open (path: string): OpenResult {
    try {
      return { db: StateDb.#openChecked(path), problem: null };
    } catch (err) {
      const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      for (const suffix of ['', '-wal', '-shm']) {
        try { fs.renameSync(path + suffix, aside + suffix); } catch { /* not there */ }
      }
      const problem = `the state database ${path} could not be used (${(err as Error).message}); ` +
        `it was moved to ${aside} and the agent started with an empty catalogue`;
      return { db: StateDb.#openChecked(path), problem };
    }
  }

  static #openChecked (path: string): StateDb {
    const existed = fs.existsSync(path);
    const db = new Database(path);
    try {
      if (!existed) fs.chmodSync(path, 0o600);
      db.pragma('journal_mode = WAL');
      // WAL + NORMAL: a commit survives a crash of the agent; a power cut may lose the last
      // commits but never corrupts, and lost commits only mean re-downloading some bytes.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
      migrate(db);
      return new StateDb(path, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Every file with the ranges it may claim: those committed unsynced in this boot when
   * there are such (a later snapshot of the same file), otherwise those committed synced.
   */
  loadFiles (bootId: string | null): FileRecord[] {
    const ranges = new Map<string, Array<[number, number]>>();
    const add = (into: Map<string, Array<[number, number]>>, r: { file_id: string; start: number; end: number }): void => {
      let list = into.get(r.file_id);
      if (list === undefined) into.set(r.file_id, list = []);
      list.push([r.start, r.end]);
    };
    for (const r of this.#stmts.allRanges.all() as Array<{ file_id: string; start: number; end: number }>) add(ranges, r);
    if (bootId !== null) {
      const unsynced = new Map<string, Array<[number, number]>>();
      for (const r of this.#stmts.unsyncedRanges.all(bootId) as Array<{ file_id: string; start: number; end: number }>) add(unsynced, r);
      for (const [id, list] of unsynced) ranges.set(id, list);
    }
    return (this.#stmts.allFiles.all() as FileRow[]).map(row => ({
      id: row.id,
      name: row.name,
      url: row.url,
      headers: JSON.parse(row.headers) as RequestHeaders,
      urlCommand: row.url_command === null ? null : JSON.parse(row.url_command) as string[],
      folder: row.folder,
      origin: {
        size: row.size,
        etag: row.etag,
        lastModified: row.last_modified,
        acceptRanges: row.accept_ranges === 1,
        digest: row.digest === null ? null : JSON.parse(row.digest) as Digest,
      },
      addedAt: row.added_at,
      lastAccessAt: row.last_access_at,
      mtimeMs: row.mtime_ms,
      state: row.state as FileState,
      lastError: row.last_error,
      pinned: row.pinned === 1,
      paused: row.paused === 1,
      verified: row.verified === 1,
      ranges: ranges.get(row.id) ?? [],
    }));
  }

  folders (): FolderRecord[] {
    return (this.#stmts.allFolders.all() as FolderRow[]).map(row => ({
      name: row.name,
      url: row.url,
      headers: JSON.parse(row.headers) as RequestHeaders,
      include: JSON.parse(row.include) as string[],
      exclude: JSON.parse(row.exclude) as string[],
      depth: row.depth,
      refreshEveryMs: row.refresh_every_ms,
      addedAt: row.added_at,
    }));
  }

  insertFolder (f: FolderRecord): void {
    this.#stmts.insertFolder.run({
      name: f.name,
      url: f.url,
      headers: JSON.stringify(f.headers),
      include: JSON.stringify(f.include),
      exclude: JSON.stringify(f.exclude),
      depth: f.depth,
      refresh_every_ms: f.refreshEveryMs,
      added_at: f.addedAt,
    });
  }

  /** Forgets a folder; its files stay (they are removed one by one, each with its ranges). */
  deleteFolder (name: string): void {
    this.#stmts.deleteFolder.run(name);
  }

  insertFile (f: Omit<FileRecord, 'ranges' | 'verified' | 'paused'>): void {
    this.#stmts.insertFile.run({
      id: f.id,
      name: f.name,
      url: f.url,
      headers: JSON.stringify(f.headers),
      url_command: f.urlCommand === null ? null : JSON.stringify(f.urlCommand),
      folder: f.folder,
      size: f.origin.size,
      etag: f.origin.etag,
      last_modified: f.origin.lastModified,
      accept_ranges: f.origin.acceptRanges ? 1 : 0,
      digest: digestColumn(f.origin.digest),
      added_at: f.addedAt,
      last_access_at: f.lastAccessAt,
      mtime_ms: f.mtimeMs,
      state: f.state,
      last_error: f.lastError,
      pinned: f.pinned ? 1 : 0,
    });
  }

  deleteFile (id: string): void {
    this.#stmts.deleteFile.run(id);
  }

  /** fsctl set-url: a new URL, headers or url-command for the same file. */
  replaceSource (id: string, url: string, headers: RequestHeaders, urlCommand: readonly string[] | null): void {
    this.#stmts.updateSource.run(url, JSON.stringify(headers), urlCommand === null ? null : JSON.stringify(urlCommand), id);
  }

  /** A new version at the origin: new validators and size, and no bytes of the old one. */
  replaceOrigin (id: string, origin: OriginInfo, mtimeMs: number): void {
    this.#db.transaction(() => {
      this.#stmts.updateOrigin.run({
        id,
        size: origin.size,
        etag: origin.etag,
        last_modified: origin.lastModified,
        accept_ranges: origin.acceptRanges ? 1 : 0,
        digest: digestColumn(origin.digest),
        mtime_ms: mtimeMs,
      });
      this.#stmts.deleteRanges.run(id);
    })();
  }

  setState (id: string, state: FileState, lastError: string | null): void {
    this.#stmts.setState.run(state, lastError, id);
  }

  setVerified (id: string, verified: boolean): void {
    this.#stmts.setVerified.run(verified ? 1 : 0, id);
  }

  setPinned (id: string, pinned: boolean): void {
    this.#stmts.setPinned.run(pinned ? 1 : 0, id);
  }

  setPaused (id: string, paused: boolean): void {
    this.#stmts.setPaused.run(paused ? 1 : 0, id);
  }

  /** Replaces a file's committed ranges in one transaction; the caller has synced their bytes first. */
  saveRanges (id: string, ranges: ReadonlyArray<readonly [number, number]>): void {
    this.#db.transaction(() => {
      this.#stmts.deleteRanges.run(id);
      this.#stmts.deleteUnsynced.run(id);
      for (const [start, end] of ranges) this.#stmts.insertRange.run(id, start, end);
    })();
  }

  /**
   * Replaces a file's ranges written in this boot but not yet synced (the caller has written
   * their bytes); its synced ranges stay as they are, for after a reboot.
   */
  saveUnsyncedRanges (id: string, ranges: ReadonlyArray<readonly [number, number]>, bootId: string): void {
    this.#db.transaction(() => {
      this.#stmts.deleteUnsynced.run(id);
      for (const [start, end] of ranges) this.#stmts.insertUnsynced.run(id, start, end, bootId);
    })();
  }

  setLastAccess (id: string, at: number): void {
    this.#stmts.setAccess.run(at, id);
  }

  getSetting (key: string): string | null {
    return (this.#stmts.getSetting.get(key) as { value: string } | undefined)?.value ?? null;
  }

  setSetting (key: string, value: string): void {
    this.#stmts.setSetting.run(key, value);
  }

  close (): void {
    this.#db.close();
  }
}

function migrate (db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`database schema version ${version} is newer than this agent knows (${MIGRATIONS.length}); upgrade fusestream`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** A digest as the files table holds it: JSON, or NULL. */
function digestColumn (digest: Digest | null): string | null {
  return digest === null ? null : JSON.stringify(digest);
}

function prepare (db: Db): Record<string, Statement> {
  return {
    allFiles: db.prepare('SELECT * FROM files'),
    allRanges: db.prepare('SELECT file_id, start, end FROM ranges ORDER BY file_id, start'),
    insertFile: db.prepare(`
      INSERT INTO files (id, name, url, headers, url_command, folder, size, etag, last_modified, accept_ranges, digest,
        added_at, last_access_at, mtime_ms, state, last_error, pinned)
      VALUES (@id, @name, @url, @headers, @url_command, @folder, @size, @etag, @last_modified, @accept_ranges, @digest,
        @added_at, @last_access_at, @mtime_ms, @state, @last_error, @pinned)`),
    deleteFile: db.prepare('DELETE FROM files WHERE id = ?'),
    updateOrigin: db.prepare(
      'UPDATE files SET size = @size, etag = @etag, last_modified = @last_modified, accept_ranges = @accept_ranges, ' +
      'digest = @digest, verified = 0, mtime_ms = @mtime_ms WHERE id = @id'
    ),
    setVerified: db.prepare('UPDATE files SET verified = ? WHERE id = ?'),
    setState: db.prepare('UPDATE files SET state = ?, last_error = ? WHERE id = ?'),
    updateSource: db.prepare('UPDATE files SET url = ?, headers = ?, url_command = ? WHERE id = ?'),
    setPinned: db.prepare('UPDATE files SET pinned = ? WHERE id = ?'),
    setPaused: db.prepare('UPDATE files SET paused = ? WHERE id = ?'),
    setAccess: db.prepare('UPDATE files SET last_access_at = ? WHERE id = ?'),
    deleteRanges: db.prepare('DELETE FROM ranges WHERE file_id = ?'),
    insertRange: db.prepare('INSERT INTO ranges (file_id, start, end) VALUES (?, ?, ?)'),
    unsyncedRanges: db.prepare('SELECT file_id, start, end FROM unsynced_ranges WHERE boot_id = ? ORDER BY file_id, start'),
    deleteUnsynced: db.prepare('DELETE FROM unsynced_ranges WHERE file_id = ?'),
    insertUnsynced: db.prepare('INSERT INTO unsynced_ranges (file_id, start, end, boot_id) VALUES (?, ?, ?, ?)'),
    allFolders: db.prepare('SELECT * FROM folders ORDER BY name'),
    insertFolder: db.prepare(`
      INSERT INTO folders (name, url, headers, include, exclude, depth, refresh_every_ms, added_at)
      VALUES (@name, @url, @headers, @include, @exclude, @depth, @refresh_every_ms, @added_at)`),
    deleteFolder: db.prepare('DELETE FROM folders WHERE name = ?'),
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
    setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
  };
}
