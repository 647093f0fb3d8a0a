/**
 * `npm run bench [-- --json] [-- --only seq,ttfb]`: fusestream's speed and memory figures,
 * each measured cold (a fresh agent, mount and cache) against a baseline measured in the
 * same run, so the ratio is what to read. Not a test: nothing here is asserted.
 */
import fs from 'node:fs/promises';
import Table from 'cli-table3';
import type { AgentStatus } from '../agent/control/protocol';
import { RangeSet } from '../agent/store/range-set';
import { WaiterQueue } from '../agent/store/waiter-queue';
import { AgentProcess, run } from '../test/helpers/agent';
import { generateContent, TestOrigin } from '../tools/test-origin';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The throttled origin of the seek and par-same figures, in bytes per second (50 MB/s). */
const THROTTLE = 50_000_000;

interface Figure { name: string; value: string; baseline: string; ratio: number | null; note: string }

const mb = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function withAgent<T> (args: string[], fn: (agent: AgentProcess) => Promise<T>): Promise<T> {
  const agent = await AgentProcess.start({ args });
  try {
    return await fn(agent);
  } finally {
    await agent.cleanup();
  }
}

/**
 * Milliseconds a shell command takes, timed by bash inside the child: starting the child
 * from this (busy) process is not part of the figure.
 */
async function timed (script: string): Promise<number> {
  const r = await run('bash', ['-c', `TIMEFORMAT=%3R; time ( ${script} ) >/dev/null`], { timeoutMs: 300_000 });
  const seconds = Number(r.stderr.trim().split('\n').pop());
  if (r.code !== 0 || !Number.isFinite(seconds)) throw new Error(`${script} failed: ${r.stderr}`);
  return seconds * 1000;
}

const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

async function rssKiB (pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function main (): Promise<void> {
  const json = process.argv.includes('--json');
  const onlyArg = process.argv.find(a => a.startsWith('--only='));
  const only = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;
  const want = (name: string): boolean => only === null || only.has(name);
  const log = (s: string): void => { if (!json) process.stderr.write(s + '\n'); };
  const figures: Figure[] = [];

  log('generating files…');
  const origin = await TestOrigin.start();
  const big = generateContent('bench-1g', GiB);
  origin.add('seq.bin', big);
  origin.add('seek.bin', big, { throttle: THROTTLE });
  origin.add('same.bin', big, { throttle: THROTTLE });
  for (let i = 0; i < 16; i++) origin.add(`par-${i}.bin`, 64 * MiB);
  for (let i = 0; i < 100; i++) origin.add(`small-${i}.bin`, 100 * 1024);

  if (want('seq')) {
    log('seq: cat of a 1 GiB file vs curl of the same URL');
    const curlMs = await timed(`curl -sf -o /dev/null ${origin.url('seq.bin')}`);
    const { catMs, commitsPerSecond } = await withAgent([], async agent => {
      await agent.add(origin.url('seq.bin'));
      const before = await agent.rpc<AgentStatus>('agent.status');
      const ms = await timed(`cat ${q(agent.path('seq.bin'))}`);
      const after = await agent.rpc<AgentStatus>('agent.status');
      return { catMs: ms, commitsPerSecond: (after.databaseCommits - before.databaseCommits) / (ms / 1000) };
    });
    figures.push({
      name: 'seq (1 GiB, MB/s)',
      value: mb(GiB, catMs).toFixed(0),
      baseline: `curl ${mb(GiB, curlMs).toFixed(0)}`,
      ratio: curlMs / catMs,
      note: `state-db commits during it: ${commitsPerSecond.toFixed(1)}/s`,
    });
  }

  if (want('ttfb')) {
    log('ttfb: first 4 KiB of an uncached 1 GiB file');
    const curlMs = median(await Promise.all([0, 1, 2].map(() => timed(`curl -sf -r 0-4095 -o /dev/null ${origin.url('seq.bin')}`))));
    const ms: number[] = [];
    for (let i = 0; i < 3; i++) {
      ms.push(await withAgent([], async agent => {
        await agent.add(origin.url('seq.bin'));
        return timed(`dd if=${q(agent.path('seq.bin'))} bs=4096 count=1 status=none`);
      }));
    }
    figures.push({
      name: 'ttfb (ms)',
      value: median(ms).toFixed(1),
      baseline: `curl ${curlMs.toFixed(1)}`,
      ratio: median(ms) / curlMs,
      note: 'median of 3 cold starts; both include starting a process',
    });
  }

  if (want('seek')) {
    log('seek: 1 MiB at 900 MiB of an uncached 1 GiB file, origin at 50 MB/s');
    const curlMs = await timed(`curl -sf -r ${900 * MiB}-${901 * MiB - 1} -o /dev/null ${origin.url('seek.bin')}`);
    const ms = await withAgent([], async agent => {
      await agent.add(origin.url('seek.bin'));
      return timed(`dd if=${q(agent.path('seek.bin'))} bs=1M skip=900 count=1 status=none`);
    });
    figures.push({
      name: 'seek @900 MiB (ms)',
      value: ms.toFixed(1),
      baseline: `curl ${curlMs.toFixed(1)}`,
      ratio: ms / curlMs,
      note: '1 MiB at 50 MB/s is 21 ms on one connection',
    });
  }

  if (want('par-files')) {
    log('par-files: 16 readers of 16 different 64 MiB files');
    const curlMs = await timed(
      Array.from({ length: 16 }, (_, i) => `curl -sf -o /dev/null ${origin.url(`par-${i}.bin`)} &`).join(' ') + ' wait'
    );
    const { ms, peakMiB } = await withAgent([], async agent => {
      for (let i = 0; i < 16; i++) await agent.add(origin.url(`par-${i}.bin`));
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await rssKiB(agent.proc.pid!));
          await new Promise(resolve => setTimeout(resolve, 20));
        }
      })();
      const t = await timed(Array.from({ length: 16 }, (_, i) => `cat ${q(agent.path(`par-${i}.bin`))} &`).join(' ') + ' wait');
      sampling = false;
      await sampler;
      return { ms: t, peakMiB: peak / 1024 };
    });
    figures.push({
      name: 'par-files (total MB/s)',
      value: mb(GiB, ms).toFixed(0),
      baseline: `curl ${mb(GiB, curlMs).toFixed(0)}`,
      ratio: curlMs / ms,
      note: `peak agent RSS ${peakMiB.toFixed(0)} MiB`,
    });
  }

  if (want('par-same')) {
    log('par-same: 32 readers of one uncached 1 GiB file, origin at 50 MB/s (about 45 s with the curl baseline)');
    const ideal = await timed(`curl -sf -o /dev/null ${origin.url('same.bin')}`); // the origin's real rate, not its nominal one
    const { slowest, ratio, lsIdle, lsLoaded } = await withAgent([], async agent => {
      await agent.add(origin.url('same.bin'));
      const idle: number[] = [];
      for (let i = 0; i < 10; i++) idle.push(await timed(`ls -l ${q(agent.mount)}`));
      const sentBefore = origin.bytesSent('same.bin');
      let reading = true;
      const loaded: number[] = [];
      const lsLoop = (async () => {
        while (reading) {
          loaded.push(await timed(`ls -l ${q(agent.mount)}`));
          await new Promise(resolve => setTimeout(resolve, 20));
        }
      })();
      const times = await Promise.all(Array.from({ length: 32 }, () => timed(`cat ${q(agent.path('same.bin'))}`)));
      reading = false;
      await lsLoop;
      return { slowest: Math.max(...times), ratio: (origin.bytesSent('same.bin') - sentBefore) / GiB, lsIdle: idle, lsLoaded: loaded };
    });
    figures.push({
      name: 'par-same: slowest reader (s)',
      value: (slowest / 1000).toFixed(1),
      baseline: `curl ${(ideal / 1000).toFixed(1)}`,
      ratio: slowest / ideal,
      note: `origin bytes / size ${ratio.toFixed(4)}; nominal size/rate ${(GiB / THROTTLE).toFixed(1)} s`,
    });
    figures.push({
      name: 'ls -l under par-same (ms)',
      value: `median ${median(lsLoaded).toFixed(1)}, max ${Math.max(...lsLoaded).toFixed(1)}`,
      baseline: `idle median ${median(lsIdle).toFixed(1)}`,
      ratio: median(lsLoaded) / median(lsIdle),
      note: `${lsLoaded.length} runs of ls -l, timed by bash in the child`,
    });
  }

  if (want('small-files')) {
    log('small-files: 100 x 100 KiB read in turn');
    const script = (base: (i: number) => string): string => Array.from({ length: 100 }, (_, i) => base(i)).join('; ');
    const curlMs = await timed(script(i => `curl -sf -o /dev/null ${origin.url(`small-${i}.bin`)}`));
    const ms = await withAgent([], async agent => {
      for (let i = 0; i < 100; i++) await agent.add(origin.url(`small-${i}.bin`));
      return timed(script(i => `cat ${q(agent.path(`small-${i}.bin`))}`));
    });
    figures.push({
      name: 'small-files (files/s)',
      value: (100 / (ms / 1000)).toFixed(0),
      baseline: `curl ${(100 / (curlMs / 1000)).toFixed(0)}`,
      ratio: curlMs / ms,
      note: 'a process per file on both sides',
    });
  }

  if (want('waiters')) {
    log('waiters: 10,000 waiting reads released by one download');
    const n = 10_000;
    const setup = (): { queue: WaiterQueue; present: RangeSet; woken: () => number } => {
      const queue = new WaiterQueue({ stallMs: 60_000, maxWaitMs: 60_000, lastProgressAt: () => performance.now() });
      let count = 0;
      for (let i = 0; i < n; i++) queue.add(i * 4096, i * 4096 + 4096, () => { count++; });
      return { queue, present: new RangeSet(), woken: () => count };
    };
    // One write releasing all of them.
    const one = setup();
    let t = performance.now();
    one.queue.wake({ start: 0, end: n * 4096 }, one.present.add(0, n * 4096));
    const oneMs = performance.now() - t;
    // A download arriving in 64 KiB writes (16 waiters each): ours against a rescan of every waiter per write.
    const ours = setup();
    t = performance.now();
    for (let off = 0; off < n * 4096; off += 65536) ours.queue.wake({ start: off, end: off + 65536 }, ours.present.add(off, off + 65536));
    const oursMs = performance.now() - t;
    const naive: Array<{ offset: number; end: number; done: boolean }> = Array.from(
      { length: n },
      (_, i) => ({ offset: i * 4096, end: i * 4096 + 4096, done: false })
    );
    const naivePresent = new RangeSet();
    t = performance.now();
    for (let off = 0; off < n * 4096; off += 65536) {
      naivePresent.add(off, off + 65536);
      for (const w of naive) if (!w.done && naivePresent.contains(w.offset, w.end)) w.done = true;
    }
    const naiveMs = performance.now() - t;
    figures.push(
      {
        name: 'waiters: 10,000 woken by one write (ms)',
        value: oneMs.toFixed(2),
        baseline: '-',
        ratio: null,
        note: `${one.woken()} woken`,
      }
    );
    figures.push({
      name: 'waiters: 10,000 over 625 writes (ms)',
      value: oursMs.toFixed(2),
      baseline: `rescan-all ${naiveMs.toFixed(1)}`,
      ratio: oursMs / naiveMs,
      note: `${ours.woken()} woken`,
    });
  }

  await origin.close();
  if (json) {
    process.stdout.write(JSON.stringify({ node: process.version, figures }, null, 2) + '\n');
    return;
  }
  const table = new Table(
    { head: ['figure', 'fusestream', 'baseline (same run)', 'ratio', 'note'], style: { head: [], border: [], compact: true } }
  );
  for (const f of figures) table.push([f.name, f.value, f.baseline, f.ratio === null ? '-' : f.ratio.toFixed(2), f.note]);
  process.stdout.write(table.toString() + '\n');
  process.stdout.write('ratio: fusestream ÷ baseline in the figure\'s own unit (for rates higher is better, for times lower is better).\n');
}

main().catch(err => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
