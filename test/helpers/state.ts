import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentDirs } from './agent';

export function dbPath (dirs: AgentDirs): string {
  return path.join(dirs.stateDir, 'fusestream.db');
}

/**
 * What the agent's database claims for a file after a restart in this boot: its id, and the
 * ranges committed unsynced in this boot if any, else those committed synced. `synced` are
 * what it would claim after a reboot. Read with the agent stopped or live (WAL allows both).
 */
export function claimedRanges (
  dirs: AgentDirs, name: string
): { id: string; ranges: Array<[number, number]>; synced: Array<[number, number]> } {
  const db = new Database(dbPath(dirs), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT id FROM files WHERE name = ?').get(name) as { id: string } | undefined;
    if (row === undefined) throw new Error(`${name} is not in the database`);
    const list = (sql: string, ...args: string[]): Array<[number, number]> =>
      (db.prepare(sql).all(...args) as Array<{ start: number; end: number }>).map(r => [r.start, r.end]);
    const synced = list('SELECT start, end FROM ranges WHERE file_id = ? ORDER BY start', row.id);
    const unsynced = list('SELECT start, end FROM unsynced_ranges WHERE file_id = ? AND boot_id = ? ORDER BY start', row.id, bootId());
    return { id: row.id, ranges: unsynced.length > 0 ? unsynced : synced, synced };
  } finally {
    db.close();
  }
}

/** This boot's id, as the agent reads it. */
function bootId (): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** Makes the database look as after a reboot: what was committed unsynced belongs to an earlier boot. */
export function pretendReboot (dirs: AgentDirs): void {
  const db = new Database(dbPath(dirs), { fileMustExist: true });
  try {
    db.prepare('UPDATE unsynced_ranges SET boot_id = ?').run('a-boot-before-the-power-cut');
  } finally {
    db.close();
  }
}

export function tempFile (dirs: AgentDirs, id: string): string {
  return path.join(dirs.cacheDir, `${id}.part`);
}
