/**
 * Schema migrations, applied in order; PRAGMA user_version records how many have run.
 * Append only: a released migration is never edited.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE files (
     id              TEXT PRIMARY KEY,
     name            TEXT NOT NULL UNIQUE,
     url             TEXT NOT NULL,
     headers         TEXT NOT NULL DEFAULT '{}',
     size            INTEGER NOT NULL,
     etag            TEXT,
     last_modified   TEXT,
     accept_ranges   INTEGER NOT NULL,
     added_at        INTEGER NOT NULL,
     last_access_at  INTEGER NOT NULL,
     mtime_ms        INTEGER NOT NULL,
     state           TEXT NOT NULL DEFAULT 'idle',
     last_error      TEXT,
     pinned          INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE ranges (
     file_id  TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
     start    INTEGER NOT NULL,
     end      INTEGER NOT NULL,
     PRIMARY KEY (file_id, start)
   ) WITHOUT ROWID;
   CREATE TABLE settings (
     key    TEXT PRIMARY KEY,
     value  TEXT NOT NULL
   );`,
  // Ranges committed before their bytes were synced, with the boot they were written in:
  // trusted after the agent dies (the page cache keeps them), not after a reboot.
  `CREATE TABLE unsynced_ranges (
     file_id  TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
     start    INTEGER NOT NULL,
     end      INTEGER NOT NULL,
     boot_id  TEXT NOT NULL,
     PRIMARY KEY (file_id, start)
   ) WITHOUT ROWID;`,
  // The command (JSON argv) that mints a file's URL and headers, for temporary links.
  'ALTER TABLE files ADD COLUMN url_command TEXT;',
  // Remote folders added whole (fsctl add --recursive), and which files came from one.
  `CREATE TABLE folders (
     name              TEXT PRIMARY KEY,
     url               TEXT NOT NULL,
     headers           TEXT NOT NULL DEFAULT '{}',
     include           TEXT NOT NULL DEFAULT '[]',
     exclude           TEXT NOT NULL DEFAULT '[]',
     depth             INTEGER,
     refresh_every_ms  INTEGER,
     added_at          INTEGER NOT NULL
   );
   ALTER TABLE files ADD COLUMN folder TEXT;`,
  // What a file must hash to (JSON: algorithm, hex, source), and whether its bytes on disk did.
  `ALTER TABLE files ADD COLUMN digest TEXT;
   ALTER TABLE files ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;`,
  // fsctl pause: the file downloads nothing no program waits for, across restarts.
  'ALTER TABLE files ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;',
];
