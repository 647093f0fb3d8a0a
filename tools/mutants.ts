import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

/*
 * `npm run mutants`: breaks one promise at a time in the built code (dist/), runs the tests
 * that should notice, and reports each mutant caught (a test failed) or survived (every test
 * passed: a hole in the suite). Not part of `npm test`: it takes several minutes.
 *
 * Each mutant is one textual change of one line of built JavaScript; a change whose text is
 * not found exactly once is reported as stale, so the list cannot rot silently.
 * `npm run mutants -- NAME…` runs only those.
 */

const DIST = path.resolve(__dirname, '..');
const MODEL = 'test/fast/store-integrity-model.test.js';

interface Mutant {
  name: string;
  /** The promise the change breaks. */
  promise: string;
  file: string;
  find: string;
  replace: string;
  /** Test files (under dist/) and an optional name pattern. */
  tests: string[];
  pattern?: string;
  env?: Record<string, string>;
}

/** The model test as the suite runs it (its default number of runs), reporting a failure unshrunk. */
const modelEnv = { MODEL_NO_SHRINK: '1' };

const MUTANTS: Mutant[] = [
  {
    name: 'write-generation',
    promise: 'a write that lands after a drop began claims nothing',
    file: 'agent/store/temp-file-store.js',
    find: 'if (generation !== this.#generation) { // bytes dropped',
    replace: 'if (false) { // bytes dropped',
    tests: [MODEL, 'test/e2e/integrity-under-races.test.js'],
    env: modelEnv,
  },
  {
    name: 'short-write',
    promise: 'a write that lands fewer bytes than asked continues or fails',
    file: 'agent/store/temp-file.js',
    find: 'if (n >= want)\n',
    replace: 'if (true)\n',
    tests: [MODEL, 'test/e2e/integrity-under-races.test.js'],
    env: modelEnv,
  },
  {
    name: 'gate-before-drop',
    promise: 'the fast-read gate shuts before a byte is dropped',
    file: 'agent/store/temp-file-store.js',
    find: 'const gateShut = this.fastReads.close();',
    replace: 'const gateShut = Promise.resolve();',
    tests: ['test/e2e/fast-reads.test.js'],
  },
  {
    name: 'drop-unclaims-database',
    promise: 'a drop un-claims the ranges in the database before the file is cut',
    file: 'agent/cache/store-pool.js',
    find: 'db.saveRanges(store.id, []);',
    replace: '/* mutant */',
    tests: [MODEL],
    env: modelEnv,
  },
  {
    name: 'over-claim-64k',
    promise: 'the database claims only bytes that were written',
    file: 'agent/state/range-committer.js',
    find: 'this.#db.saveUnsyncedRanges(source.id, ranges, this.#bootId);',
    replace: 'this.#db.saveUnsyncedRanges(source.id, ranges.map(([s, e]) => [s, e + 65536]), this.#bootId);',
    tests: [MODEL, 'test/e2e/integrity-under-races.test.js', 'test/e2e/resume-after-restart.test.js'],
    env: modelEnv,
  },
  {
    name: 'sync-generation',
    promise: 'a sync that began before a drop commits nothing',
    file: 'agent/store/temp-file-store.js',
    find: 'if (generation === this.#generation)\n            save(snapshot);',
    replace: 'save(snapshot);',
    tests: [MODEL],
    env: modelEnv,
  },
  {
    name: 'wake-incomplete',
    promise: 'only readers whose whole range is on disk are woken',
    file: 'agent/store/waiter-queue.js',
    find: 'if (w.offset >= merged.start) {',
    replace: 'if (true) {',
    tests: [MODEL, 'test/fast/waiter-queue.test.js'],
    env: modelEnv,
  },
  {
    name: 'open-waits-for-drop',
    promise: 'no store of a file is created while its old one is being dropped',
    file: 'agent/cache/store-pool.js',
    find: 'if (dropping !== undefined)\n            return dropping.then(() => this.ensure(entry));',
    replace: '',
    tests: [MODEL],
    env: modelEnv,
  },
  {
    name: 'refused-for-good',
    promise: 'a link is refused for good only when refused before any byte came through it',
    file: 'agent/origin/url-command.js',
    find: 'current.afterRefusal && !current.accepted',
    replace: 'current.afterRefusal',
    tests: ['test/e2e/url-command.test.js', 'test/fast/url-command.test.js'],
  },
];

function runTests (m: Mutant): Promise<{ failed: boolean; seconds: number }> {
  const began = performance.now();
  const args = ['--test', '--test-concurrency=1', ...(m.pattern === undefined ? [] : ['--test-name-pattern', m.pattern]), ...m.tests];
  return new Promise(resolve => {
    const child = spawn(process.execPath, args, { cwd: DIST, stdio: 'ignore', env: { ...process.env, ...m.env } });
    child.on('close', code => resolve({ failed: code !== 0, seconds: (performance.now() - began) / 1000 }));
  });
}

async function main (): Promise<void> {
  const only = process.argv.slice(2);
  const rows: string[][] = [];
  let survived = 0;
  for (const m of MUTANTS.filter(x => only.length === 0 || only.includes(x.name))) {
    const file = path.join(DIST, m.file);
    const original = await fs.readFile(file, 'utf8');
    const count = original.split(m.find).length - 1;
    if (count !== 1) {
      rows.push([m.name, m.promise, `stale (found ${count} times)`, '']);
      survived++;
      continue;
    }
    await fs.writeFile(file, original.replace(m.find, m.replace));
    try {
      const { failed, seconds } = await runTests(m);
      if (!failed) survived++;
      rows.push([m.name, m.promise, failed ? 'caught' : 'SURVIVED', `${seconds.toFixed(0)} s`]);
    } finally {
      await fs.writeFile(file, original);
    }
    process.stderr.write(`${rows[rows.length - 1].join(' | ')}\n`);
  }
  console.log('| mutant | promise broken | outcome | time |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  process.exitCode = survived > 0 ? 1 : 0;
}

main().catch(err => {
  console.error(err);
  process.exitCode = 2;
});
