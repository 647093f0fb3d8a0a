import fs from 'node:fs/promises';
import type { StateDb } from '../state/state-db';

/** Default quota: this much at most... */
const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
/** ...and at most this share of the cache disk's free space when the agent first starts. */
const DEFAULT_CACHE_FREE_SHARE = 0.5;

/** The quota chosen at first start (cache-max-bytes unset), kept so it does not drift as the disk fills. */
export async function defaultQuota (db: StateDb, cacheDir: string): Promise<number> {
  const saved = db.getSetting('default_cache_max_bytes');
  if (saved !== null) return Number(saved);
  const st = await fs.statfs(cacheDir);
  const quota = Math.floor(Math.min(DEFAULT_CACHE_MAX_BYTES, st.bavail * st.bsize * DEFAULT_CACHE_FREE_SHARE));
  db.setSetting('default_cache_max_bytes', String(quota));
  return quota;
}
