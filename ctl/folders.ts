import fs from 'node:fs/promises';
import { Methods, type AddFileResult, type FolderResult } from '../agent/control/protocol';
import { eachLimited } from '../agent/each-limited';
import { AgentError, type AgentClient } from './client';

/** Adds sent at once by --from-file; each waits on its own probe of the origin. */
const FROM_FILE_CONCURRENCY = 8;

/** A duration as fsctl takes it: "90" (seconds), "90s", "10m", "2h", "1d"; ms, or null when it does not parse. */
export function parseDuration (text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/i.exec(text.trim());
  if (m === null) return null;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's').toLowerCase() as 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/** What fsctl prints of folders.add / folders.refresh: one line per file that changed or failed, then a summary. */
export function folderReport (r: FolderResult): string {
  const lines: string[] = [];
  for (const n of r.added) lines.push(`added    ${n}`);
  for (const n of r.changed) lines.push(`changed  ${n} (the origin serves another version; its cached bytes were dropped)`);
  for (const n of r.removed) lines.push(`removed  ${n} (gone from the index)`);
  for (const n of r.removeWhenClosed) lines.push(`removing ${n} (gone from the index; leaves once closed)`);
  for (const n of r.keptPinned) lines.push(`kept     ${n} (gone from the index, but pinned)`);
  for (const f of r.failed) lines.push(`failed   ${f.name}: ${f.error}`);
  const parts = [
    `${r.added.length} added`, `${r.unchanged} unchanged`, `${r.changed.length} changed`,
    `${r.removed.length + r.removeWhenClosed.length} removed`, `${r.failed.length} failed`,
  ];
  if (r.filteredOut > 0) parts.push(`${r.filteredOut} left out by --include/--exclude`);
  if (r.deeperFolders > 0) parts.push(`${r.deeperFolders} subfolder(s) beyond --depth`);
  lines.push(`${r.folder}/: ${parts.join(', ')}`);
  return lines.join('\n') + '\n';
}

export interface ListLine { line: number; url: string; name?: string }

/**
 * A --from-file list: one `URL [NAME]` per line (NAME is the rest of the line, so it may
 * hold spaces); blank lines and lines starting with "#" are skipped.
 */
export function parseList (text: string): { entries: ListLine[]; bad: Array<{ line: number; error: string }> } {
  const entries: ListLine[] = [];
  const bad: Array<{ line: number; error: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)(?:\s+(.+))?$/.exec(line);
    if (m === null || !/^https?:\/\//i.test(m[1])) {
      bad.push({ line: i + 1, error: 'not of the form "URL [NAME]" with an http(s) URL' });
      return;
    }
    entries.push({ line: i + 1, url: m[1], ...(m[2] !== undefined ? { name: m[2].trim() } : {}) });
  });
  return { entries, bad };
}

export interface FromFileResult {
  added: string[];
  already: string[];
  failed: Array<{ line: number; url: string; error: string }>;
}

/** Adds every file of a list over one connection, a few at a time. */
export async function addFromList (
  client: AgentClient, source: string, headers: Record<string, string> | undefined
): Promise<FromFileResult> {
  const text = source === '-' ? await readStdin() : await fs.readFile(source, 'utf8');
  const { entries, bad } = parseList(text);
  const result: FromFileResult = { added: [], already: [], failed: bad.map(b => ({ line: b.line, url: '', error: b.error })) };
  await eachLimited(entries, FROM_FILE_CONCURRENCY, async e => {
    try {
      const params = { url: e.url, ...(e.name !== undefined ? { name: e.name } : {}), ...(headers !== undefined ? { headers } : {}) };
      const res = await client.call<AddFileResult>(Methods.addFile, params);
      (res.added ? result.added : result.already).push(res.file.name);
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      result.failed.push({ line: e.line, url: e.url, error: err.message });
    }
  });
  result.failed.sort((a, b) => a.line - b.line);
  return result;
}

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
