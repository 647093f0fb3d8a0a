import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import Database from 'better-sqlite3';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import type { AgentStatus } from '../../agent/control/protocol';
import { StateDb } from '../../agent/state/state-db';
import { AgentProcess, fsctl, hashFile, makeDirs, timeLs } from '../helpers/agent';
import { sha256, TestOrigin } from '../../tools/test-origin';
import { dbPath } from '../helpers/state';

describe('the state database', () => {
  const cleanup = useCleanups();

  it('is owner-only and in WAL mode', async () => {
    const agent = await AgentProcess.start();
    cleanup(() => agent.cleanup());
    const st = await fs.stat(dbPath(agent.dirs));
    assert.equal(st.mode & 0o777, 0o600);
    assert.ok(await fs.stat(`${dbPath(agent.dirs)}-wal`));
  });

  it('moves a corrupt database aside, says so, and works with an empty catalogue', async () => {
    const dirs = await makeDirs();
    await fs.mkdir(dirs.stateDir, { recursive: true });
    await fs.writeFile(dbPath(dirs), 'this is not a database, just bytes a crash left behind'.repeat(200));
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const agent = await AgentProcess.start({ dirs });
    cleanup(() => agent.cleanup());

    const errors = agent.logLines.filter(l => (l.level as number) >= 50);
    assert.equal(errors.length, 1, 'one clear log line');
    assert.match(String(errors[0].msg), /could not be used.*moved to/);
    const status = await agent.rpc<AgentStatus>('agent.status');
    assert.equal(status.problems.length, 1);
    const ls = await fsctl(agent, ['ls']);
    assert.match(ls.stderr, /warning: the state database .* could not be used/);
    assert.ok((await fs.readdir(dirs.stateDir)).some(n => n.startsWith('fusestream.db.corrupt-')), 'the bad file was kept aside');

    const content = origin.add('after.bin', 100_000);
    await agent.add(origin.url('after.bin'));
    assert.equal(await hashFile(agent.path('after.bin')), sha256(content));
  });

  it('starts with 10,000 catalogued files well under a second and lists them', async () => {
    const dirs = await makeDirs();
    await fs.mkdir(dirs.stateDir, { recursive: true });
    StateDb.open(dbPath(dirs)).db.close(); // the real schema
    const db = new Database(dbPath(dirs));
    const insertFile = db.prepare(`INSERT INTO files (id, name, url, headers, size, etag, last_modified, accept_ranges,
        added_at, last_access_at, mtime_ms, state, pinned)
      VALUES (?, ?, ?, '{}', ?, '"e"', NULL, 1, 0, 0, 0, 'complete', 0)`);
    const insertRange = db.prepare('INSERT INTO ranges (file_id, start, end) VALUES (?, 0, ?)');
    db.transaction(() => {
      for (let i = 0; i < 10_000; i++) {
        const id = `id${i.toString().padStart(6, '0')}`;
        insertFile.run(id, i < 5000 ? `file-${i}.bin` : `folder-${i % 50}/file-${i}.bin`, `http://127.0.0.1:1/${i}`, 1_000_000 + i);
        insertRange.run(id, 1_000_000 + i);
      }
    })();
    db.close();

    const began = performance.now();
    const agent = await AgentProcess.start({ dirs });
    const readyMs = performance.now() - began;
    cleanup(() => agent.cleanup());
    const ls = await timeLs(agent.mount);
    const entries = ls.text.split('\n').filter(l => / file-\d+\.bin$| folder-\d+$/.test(l));
    process.stdout.write(
      `# start-up with 10,000 files: process start to mount ready ${readyMs.toFixed(0)} ms; ls -l of the root ${ls.ms.toFixed(0)} ms\n`
    );
    assert.equal(entries.length, 5050);
    assert.ok(readyMs < 5000, `ready after ${readyMs.toFixed(0)} ms`);
    const st = await fs.stat(`${agent.mount}/folder-7/file-5007.bin`);
    assert.equal(st.size, 1_005_007);
  });
});
