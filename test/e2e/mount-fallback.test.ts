import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { FuseMount } from '../../agent/fs/mount';
import { mountPlan, type MountPlan } from '../../agent/platform/mount-options';
import { useCleanups } from '../helpers/fixtures';
import { isMounted } from '../helpers/mounts';
import { run } from '../helpers/agent';

/**
 * The mount's second chance, as macOS uses it (FSKit failed: the kernel extension, where it
 * can work), exercised on Linux with a plan libfuse refuses (an option it does not know)
 * and a good one. The Mac's own decision and messages are tested in test/fast/mac-backend.
 */
describe('a mount that fails says what the platform knows, and tries the other plan only when there is one', () => {
  const cleanup = useCleanups();
  const log = pino({ level: 'silent' });

  async function mountPoint (): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-fallback-'));
    const mnt = path.join(dir, 'mnt');
    cleanup(async () => {
      await run('fusermount', ['-uz', mnt]);
      await fs.rm(dir, { recursive: true, force: true });
    });
    return mnt;
  }

  const good = (mnt: string): MountPlan => mountPlan('linux', { mountPoint: mnt, readMaxWaitMs: 30_000, macBackend: 'kext' });
  const refused = (mnt: string): MountPlan => ({ ...good(mnt), options: [...good(mnt).options, 'backend=nonesuch'] });

  it('mounts with the second plan after the first fails, saying why', async () => {
    const mnt = await mountPoint();
    const said: string[] = [];
    const mount = new FuseMount(mnt, {}, {
      plan: refused(mnt),
      platform: 'linux',
      log,
      afterFailure: error => {
        said.push(error);
        return { message: `first plan failed (${error}); trying the second`, retry: good(mnt) };
      },
    });
    await mount.mount();
    cleanup(() => mount.unmount());
    assert.equal(said.length, 1);
    assert.equal(await isMounted(mnt), true);
    await mount.unmount();
    assert.equal(await isMounted(mnt), false);
  });

  it('fails with the platform\'s own line when there is no second plan', async () => {
    const mnt = await mountPoint();
    const mount = new FuseMount(mnt, {}, {
      plan: refused(mnt),
      platform: 'linux',
      log,
      afterFailure: error => ({ message: `the first plan failed (${error}): do this`, retry: null }),
    });
    await assert.rejects(mount.mount(), (err: Error) => /^the first plan failed \(.+\): do this$/.test(err.message));
    assert.equal(await isMounted(mnt), false);
  });
});
