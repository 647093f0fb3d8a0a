import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AgentProcess, makeDirs, run, type AgentDirs } from '../helpers/agent';
import { TestOrigin } from '../../tools/test-origin';

/** Starts an agent expected to refuse; returns its stderr (AgentProcess.start puts it in the error). */
async function refusal (dirs: AgentDirs): Promise<string> {
  const err = await AgentProcess.start({ dirs }).then(() => null, (e: Error) => e);
  assert.ok(err !== null, 'the agent started');
  const stderr = /before ready:\n([\s\S]*)$/.exec(err.message)?.[1] ?? err.message;
  return stderr;
}

/** One line, no JSON log line, no stack: what a user reads. */
function assertOneLine (stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
  assert.match(lines[0], /^fusestream-agent: cannot start: /);
  assert.match(lines[0], pattern);
}

describe('an agent owns its state and cache folders', () => {
  const cleanup = useCleanups();

  it('refuses a second agent on the same state folder, naming the first one\'s pid and socket; the first works on', async () => {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    origin.add('a.bin', 4096);
    const first = await AgentProcess.start();
    cleanup(() => first.cleanup());
    const other = await makeDirs();
    cleanup(() => fs.rm(other.dir, { recursive: true, force: true }));
    const stderr = await refusal({ ...other, stateDir: first.dirs.stateDir });
    assertOneLine(stderr, new RegExp(`pid ${first.proc.pid}, socket ${first.dirs.socket}.* is using ${first.dirs.stateDir}`));
    assert.match(stderr, /--state-dir, --cache-dir, --socket and --mount/);
    assert.equal(await first.add(origin.url('a.bin')), 'a.bin');
  });

  it('refuses a second agent on the same cache folder', async () => {
    const first = await AgentProcess.start();
    cleanup(() => first.cleanup());
    const other = await makeDirs();
    cleanup(() => fs.rm(other.dir, { recursive: true, force: true }));
    assertOneLine(await refusal({ ...other, cacheDir: first.dirs.cacheDir }), new RegExp(`is using ${first.dirs.cacheDir}`));
  });

  it('takes over the lock of an agent that was killed', async () => {
    const dirs = await makeDirs();
    const first = await AgentProcess.start({ dirs });
    cleanup(() => first.cleanup());
    await first.stop('SIGKILL');
    const second = await AgentProcess.start({ dirs });
    cleanup(() => second.cleanup());
    assert.equal((await second.rpc<{ pid: number }>('agent.status')).pid, second.proc.pid);
  });

  it('sweeps only its own orphaned temp files from the cache folder, never the user\'s', async () => {
    const dirs = await makeDirs();
    await fs.mkdir(dirs.cacheDir, { recursive: true });
    const orphan = path.join(dirs.cacheDir, `${'ab'.repeat(12)}.part`);
    const mine = path.join(dirs.cacheDir, 'notes.txt');
    const folder = path.join(dirs.cacheDir, 'photos');
    await fs.writeFile(orphan, 'left by an earlier run');
    await fs.writeFile(mine, 'the user\'s own file');
    await fs.mkdir(folder);
    const agent = await AgentProcess.start({ dirs });
    cleanup(() => agent.cleanup());
    assert.equal((await agent.waitForLog(/deleted temp files/)).removed, 1);
    await assert.rejects(fs.stat(orphan), 'the orphaned temp file is gone');
    assert.equal(await fs.readFile(mine, 'utf8'), 'the user\'s own file');
    assert.ok((await fs.stat(folder)).isDirectory());
  });

  it('says in one line that a mount folder is not empty, or is a file', async () => {
    const full = await makeDirs();
    await fs.mkdir(full.mount, { recursive: true });
    await fs.writeFile(path.join(full.mount, 'keep.txt'), 'x');
    assertOneLine(await refusal(full), /is not empty/);
    const file = await makeDirs();
    // Kept apart from the agent's folders, which a refused start removes.
    const mount = `${file.dir}-mount`;
    cleanup(() => fs.rm(mount, { force: true }));
    await fs.writeFile(mount, 'a file where the mount should go');
    assertOneLine(await refusal({ ...file, mount }), /is a file, not a folder/);
    assert.equal((await run('cat', [mount])).stdout.toString(), 'a file where the mount should go', 'nothing was touched');
  });
});
