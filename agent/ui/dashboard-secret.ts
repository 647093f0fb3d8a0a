import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The dashboard's secret: every request must carry it (in the link `fsctl ui` opens, then in
 * a cookie). Kept in the state folder, readable by the user only, so it survives restarts
 * (a tab left open keeps working) and anyone who can read it could also drive the control
 * socket anyway. A file with looser permissions is tightened; one that is not a secret of
 * ours (too short) is replaced.
 */
export async function loadDashboardSecret (stateDir: string): Promise<string> {
  const file = path.join(stateDir, 'ui-secret');
  const existing = await fs.readFile(file, 'utf8').then(s => s.trim(), () => '');
  if (/^[0-9a-f]{64}$/.test(existing)) {
    await fs.chmod(file, 0o600);
    return existing;
  }
  const secret = randomBytes(32).toString('hex');
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, secret + '\n', { mode: 0o600 });
  await fs.rename(temp, file);
  return secret;
}
