import Database from 'better-sqlite3';
import path from 'node:path';
import type { AgentDirs } from './agent';

export function dbPath (dirs: AgentDirs): string {
  return path.join(dirs.stateDir, 'fusestream.db');
}

/** What the agent's database claims for a file: its id and committed ranges (read with the agent stopped or live, WAL allows both). */
export function claimedRanges (dirs: AgentDirs, name: string): { id: string; ranges: Array<[number, number]> } {
  const db = new Database(dbPath(dirs), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT id FROM files WHERE name = ?').get(name) as { id: string } | undefined;
    if (row === undefined) throw new Error(`${name} is not in the database`);
    const query = db.prepare('SELECT start, end FROM ranges WHERE file_id = ? ORDER BY start');
    const rows = query.all(row.id) as Array<{ start: number; end: number }>;
    const ranges = rows.map(r => [r.start, r.end] as [number, number]);
    return { id: row.id, ranges };
  } finally {
    db.close();
  }
}

export function tempFile (dirs: AgentDirs, id: string): string {
  return path.join(dirs.cacheDir, `${id}.part`);
}
