import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AgentProcess, run } from '../test/helpers/agent';
import type { NginxOrigin } from './nginx-origin';

/** A mounted system under test: where its files are, and the process that serves them. */
export interface Mounted {
  path (name: string): string;
  readonly mount: string;
  readonly pid: number;
}

export type SystemName = 'fusestream' | 'rclone';

/** How a system reaches the origin (plain HTTP, or HTTPS with the bench's CA trusted), and options of its own. */
export interface OriginAccess { tls?: boolean; args?: Partial<Record<SystemName, string[]>> }

/**
 * Mounts one system cold (a fresh mount and cache) over the origin's files, runs `fn`, and
 * unmounts whatever happened. fusestream gets `files` added (named as their last segment);
 * rclone lists the origin's index, folders and all. `m.path` takes the origin's path.
 */
export async function withSystem<T> (
  system: SystemName, origin: NginxOrigin, files: string[], fn: (m: Mounted) => Promise<T>, access: OriginAccess = {}
): Promise<T> {
  return system === 'fusestream' ? withFusestream(origin, files, fn, access) : withRclone(origin, fn, access);
}

async function withFusestream<T> (origin: NginxOrigin, files: string[], fn: (m: Mounted) => Promise<T>, access: OriginAccess): Promise<T> {
  const trust = access.tls === true ? ['--ca-file', origin.caFile] : [];
  const agent = await AgentProcess.start({ args: [...trust, ...access.args?.fusestream ?? []] });
  try {
    for (const f of files) await agent.add(origin.url(f, access.tls), path.basename(f));
    return await fn({ path: n => agent.path(path.basename(n)), mount: agent.mount, pid: agent.proc.pid! });
  } finally {
    await agent.cleanup();
  }
}

/** Why rclone cannot be measured here, or null when it can. */
export async function rcloneMissing (): Promise<string | null> {
  const r = await run('sh', ['-c', 'command -v rclone']);
  return r.code === 0 ? null : 'rclone is not installed (apt-get install rclone)';
}

/** `rclone mount` of the origin's index as an http remote, `--vfs-cache-mode full`, otherwise its defaults. */
async function withRclone<T> (origin: NginxOrigin, fn: (m: Mounted) => Promise<T>, access: OriginAccess): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-rclone-'));
  const mount = path.join(dir, 'mnt');
  await fs.mkdir(mount);
  const proc: ChildProcess = spawn('rclone', [
    'mount', ':http:', mount, '--http-url', origin.url('', access.tls),
    '--vfs-cache-mode', 'full', '--cache-dir', path.join(dir, 'cache'), '--read-only',
    ...(access.tls === true ? ['--ca-cert', origin.caFile] : []),
    ...access.args?.rclone ?? [],
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  try {
    // rclone says nothing when its mount is up: watch the mount table (a benchmark, not a test).
    const deadline = Date.now() + 20_000;
    while (!(await fs.readFile('/proc/self/mounts', 'utf8')).includes(` ${mount} `)) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`rclone mount did not come up: ${stderr}`);
      await new Promise(resolve => setTimeout(resolve, 50));
    }
    return await fn({ path: n => path.join(mount, n), mount, pid: proc.pid! });
  } finally {
    await run('fusermount', ['-uz', mount]);
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) a process has used so far. */
export async function cpuSeconds (pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/**
 * CPU seconds every process on the machine has used so far (all cores, from /proc/stat:
 * everything but idle and iowait), and the number of cores: what a figure cost the whole
 * machine, the origin, the reader and the kernel included.
 */
export async function machineCpu (): Promise<{ seconds: number; cores: number }> {
  const lines = (await fs.readFile('/proc/stat', 'utf8')).split('\n');
  const ticks = lines[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = ticks.reduce((sum, t, i) => (i === 3 || i === 4 ? sum : sum + t), 0); // idle, iowait
  return { seconds: busy / 100, cores: lines.filter(l => /^cpu\d/.test(l)).length };
}

export async function rssKiB (pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}
