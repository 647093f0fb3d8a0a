/**
 * `npm run bench [-- --json] [-- --only=seq,ttfb] [-- --runs=3]`: fusestream's speed and
 * memory figures, each measured cold (a fresh mount and cache) beside curl and, when it is
 * installed, beside `rclone mount --vfs-cache-mode full` over the same origin (nginx:
 * nginx-origin.ts) in the same run, the two systems taking turns going first, each figure
 * the median of `runs` rounds. The ratio to read is fusestream ÷ rclone. Not a test: nothing
 * here is asserted.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import Table from 'cli-table3';
import { Agent, request } from 'undici';
import { RangeSet } from '../agent/store/range-set';
import { WaiterQueue } from '../agent/store/waiter-queue';
import { run } from '../test/helpers/agent';
import { cpuSeconds, machineCpu, rcloneMissing, rssKiB, withSystem, type SystemName } from './mounts';
import { NginxOrigin } from './nginx-origin';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The throttled origin of the seek, par-same and slow-connection figures, in bytes per second per connection (50 MB/s). */
const THROTTLE = 50_000_000;

/** One figure: each system's value as printed, and fusestream ÷ rclone in the figure's own unit. */
interface Figure { name: string; curl: string; rclone: string; fusestream: string; ratio: number | null; note: string }

const mb = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * Milliseconds a shell command takes, timed by bash inside the child: starting the child
 * from this (busy) process is not part of the figure.
 */
async function timed (script: string): Promise<number> {
  const r = await run('bash', ['-c', `TIMEFORMAT=%3R; time ( ${script} ) >/dev/null`], { timeoutMs: 600_000 });
  const seconds = Number(r.stderr.trim().split('\n').pop());
  if (r.code !== 0 || !Number.isFinite(seconds)) throw new Error(`${script} failed: ${r.stderr}`);
  return seconds * 1000;
}

const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/*
 * Latency figures (ttfb, seek, small-files) are timed here, with async fs and an HTTP client
 * in this process (never the agent's or rclone's): starting a dd, cat or curl takes 50-90 ms
 * on a small VM, more than the figures themselves.
 */

/** Milliseconds to open `file`, read `length` bytes at `pos` and close it; throws unless all came. */
async function timedRead (file: string, pos: number, length: number): Promise<number> {
  const began = performance.now();
  const fh = await fs.open(file);
  try {
    const { bytesRead } = await fh.read(Buffer.alloc(length), 0, length, pos);
    if (bytesRead !== length) throw new Error(`${file}: ${bytesRead} of ${length} bytes at ${pos}`);
  } finally {
    await fh.close();
  }
  return performance.now() - began;
}

/**
 * What `ls -l` asks of a folder (its entries, and each one's attributes), timed in a loop
 * every 20 ms by a process of its own, which does nothing else: this one serves the origin,
 * and its own event loop would be part of the figure. Stop it to get the times, in ms.
 */
function listingLoop (dir: string): { stop: () => Promise<number[]> } {
  const script = `const fs = require('fs'); const d = process.env.LIST_DIR; const t = []; let on = true;
    process.stdin.on('end', () => { on = false; }).resume();
    (async () => {
      while (on) {
        const s = performance.now();
        for (const n of fs.readdirSync(d)) fs.lstatSync(d + '/' + n);
        t.push(performance.now() - s);
        await new Promise(r => setTimeout(r, 20));
      }
      process.stdout.write(JSON.stringify(t));
    })();`;
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, LIST_DIR: dir }, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = once(child, 'exit');
  return {
    stop: async () => {
      child.stdin.end();
      await exited;
      return JSON.parse(out) as number[];
    },
  };
}

/** Milliseconds to fetch `url` (a byte range of it if given) over a new connection, body and all. */
async function timedFetch (url: string, range?: [number, number]): Promise<number> {
  const dispatcher = new Agent();
  try {
    const began = performance.now();
    const res = await request(url, { dispatcher, headers: range ? { range: `bytes=${range[0]}-${range[1] - 1}` } : {} });
    for await (const chunk of res.body) void chunk;
    return performance.now() - began;
  } finally {
    await dispatcher.close();
  }
}

/** CPU seconds (user + system) this process's waited-for children have used so far. */
async function childrenCpu (): Promise<number> {
  const stat = await fs.readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100; // cutime, cstime in clock ticks
}

/** 4 KiB random reads of a file with fio, 4 jobs for 5 s: IOPS. */
async function fioIops (file: string, direct: boolean): Promise<number> {
  const r = await run('fio', [
    '--name=random-read', `--filename=${file}`, '--rw=randread', '--bs=4k', '--numjobs=4', `--direct=${direct ? 1 : 0}`,
    '--invalidate=1', '--time_based', '--runtime=5', '--group_reporting', '--output-format=json', '--readonly',
  ], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`fio failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.toString()) as { jobs: Array<{ read: { iops: number } }> }).jobs[0].read.iops;
}

async function main (): Promise<void> {
  const json = process.argv.includes('--json');
  const onlyArg = process.argv.find(a => a.startsWith('--only='));
  const only = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;
  const runsArg = process.argv.find(a => a.startsWith('--runs='));
  const runs = runsArg ? Math.max(1, Number(runsArg.slice(7))) : 3;
  const want = (name: string): boolean => only === null || only.has(name);
  const log = (s: string): void => { if (!json) process.stderr.write(s + '\n'); };
  const figures: Figure[] = [];
  const nginxWhyNot = await NginxOrigin.missing();
  if (nginxWhyNot !== null) throw new Error(nginxWhyNot);
  const rcloneWhyNot = await rcloneMissing();
  const systems: SystemName[] = rcloneWhyNot === null ? ['rclone', 'fusestream'] : ['fusestream'];
  let rcloneFirst = true;
  /**
   * Measures each system `rounds` times, taking turns going first, so drift in the machine's
   * load spreads over both; the values in the order measured.
   */
  const each = async <T>(measure: (s: SystemName) => Promise<T>, rounds = runs): Promise<Partial<Record<SystemName, T[]>>> => {
    const out: Partial<Record<SystemName, T[]>> = {};
    for (let i = 0; i < rounds; i++) {
      const order = rcloneFirst ? systems : [...systems].reverse();
      rcloneFirst = !rcloneFirst;
      for (const s of order) (out[s] ??= []).push(await measure(s));
    }
    return out;
  };
  /** The median of one number of each system's rounds. */
  const med = <T>(r: Partial<Record<SystemName, T[]>>, pick: (x: T) => number): Partial<Record<SystemName, number>> => {
    const out: Partial<Record<SystemName, number>> = {};
    for (const s of systems) if (r[s] !== undefined) out[s] = median(r[s]!.map(pick));
    return out;
  };
  const curlRuns = async (measure: () => Promise<number>): Promise<number> => {
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) ms.push(await measure());
    return median(ms);
  };
  /** A figure whose values are numbers: printed with `digits`, ratio fusestream ÷ rclone. */
  const push = (name: string, curl: number | null, v: Partial<Record<SystemName, number>>, digits: number, note: string): void => {
    const show = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(digits));
    const ratio = v.rclone !== undefined && v.fusestream !== undefined ? v.fusestream / v.rclone : null;
    figures.push({ name, curl: show(curl), rclone: show(v.rclone), fusestream: show(v.fusestream), ratio, note });
  };

  log('generating files…');
  const files: Array<[string, number]> = [['big.bin', GiB], ['random.bin', 64 * MiB]];
  for (let i = 0; i < 16; i++) files.push([`par-${i}.bin`, 64 * MiB]);
  for (let i = 0; i < 100; i++) files.push([`small-${i}.bin`, 100 * 1024]);
  const origin = await NginxOrigin.start(files, THROTTLE);
  try {
    // The first GiB a process writes after a while costs the kernel (and a VM's host) several
    // times the CPU of the next ones (4 s of system time instead of 1, measured here): one
    // round of each system that counts for nothing, so neither pays it in a figure.
    log('warm-up: one cold seq of each system, not counted');
    await each(s => withSystem(s, origin, ['big.bin'], m => timed(`cat ${q(m.path('big.bin'))}`)), 1);

    const curlFileCpu: number[] = [];
    for (const tls of [false, true]) {
      if (!want(tls ? 'seq-https' : 'seq')) continue;
      const over = tls ? ' over HTTPS' : '';
      log(`seq${over}: cat of a 1 GiB file, and the CPU the serving process spent on it (${runs} rounds)`);
      const trust = tls ? `--cacert ${q(origin.caFile)} ` : '';
      const curlMs = await curlRuns(() => timed(`curl -sf ${trust}-o /dev/null ${origin.url('big.bin', tls)}`));
      const r = await each(s => withSystem(s, origin, ['big.bin'], async m => {
        const [cpu, machine] = [await cpuSeconds(m.pid), await machineCpu()];
        const ms = await timed(`cat ${q(m.path('big.bin'))}`);
        const { seconds, cores } = await machineCpu();
        const used = seconds - machine.seconds;
        return { ms, cpu: await cpuSeconds(m.pid) - cpu, machine: used, busy: used / cores / (ms / 1000) };
      }, { tls }));
      // The floor of any client that keeps what it fetches: curl writing the GiB to a file, and its CPU.
      const toFile = path.join(origin.dir, 'curl-out.bin');
      const curlFile = await curlRuns(async () => {
        const before = await childrenCpu();
        const ms = await timed(`curl -sf ${trust}-o ${q(toFile)} ${origin.url('big.bin', tls)}`);
        curlFileCpu.push(await childrenCpu() - before);
        await fs.rm(toFile, { force: true });
        return ms;
      });
      const note = tls ? 'a certificate the bench made, trusted through each system\'s options' : '';
      const curlCpu = `curl's CPU per GiB: ${median(curlFileCpu.splice(0)).toFixed(2)} s`;
      push(`seq${over}: curl writing the GiB to a file (MB/s)`, mb(GiB, curlFile), {}, 0, curlCpu);
      push(`seq${over} (1 GiB, MB/s)`, mb(GiB, curlMs), med(r, x => mb(GiB, x.ms)), 0, note);
      push(`CPU per GiB of cold seq${over} (s)`, null, med(r, x => x.cpu), 2, 'user + system CPU of the serving process');
      const busy = med(r, x => x.busy);
      const pct = (x?: number): string => (x === undefined ? '-' : `${(x * 100).toFixed(0)} %`);
      push(
        `machine CPU per GiB of cold seq${over} (s)`, null, med(r, x => x.machine), 2,
        `every process and the kernel (nginx, cat, the mount); cores busy: rclone ${pct(busy.rclone)}, fusestream ${pct(busy.fusestream)}`
      );
    }

    if (want('ttfb')) {
      log('ttfb: first 4 KiB of an uncached 1 GiB file (3 cold starts)');
      const curlMs: number[] = [];
      for (let i = 0; i < 3; i++) curlMs.push(await timedFetch(origin.url('big.bin'), [0, 4096]));
      const r = await each(s => withSystem(s, origin, ['big.bin'], m => timedRead(m.path('big.bin'), 0, 4096)), 3);
      const note = 'median of 3 cold starts: open, read 4 KiB, close (curl column: an HTTP range request)';
      push('ttfb (ms)', median(curlMs), med(r, x => x), 1, note);
      // The same, of a second file in a mount that has served one: what a running agent answers
      // (a fresh process runs each function for the first time in the first figure).
      const warm = await each(s => withSystem(s, origin, ['big.bin', 'random.bin'], async m => {
        await timedRead(m.path('random.bin'), 0, 4096);
        return timedRead(m.path('big.bin'), 0, 4096);
      }), 3);
      push('ttfb, second file (ms)', median(curlMs), med(warm, x => x), 1, 'as above, after a first file was read from the same mount');
    }

    if (want('seek')) {
      log('seek: 1 MiB at 900 MiB of an uncached 1 GiB file, origin at 50 MB/s');
      const curlMs = await curlRuns(() => timedFetch(origin.url('slow/big.bin'), [900 * MiB, 901 * MiB]));
      const r = await each(s => withSystem(s, origin, ['slow/big.bin'], m => timedRead(m.path('slow/big.bin'), 900 * MiB, MiB)));
      push('seek @900 MiB (ms)', curlMs, med(r, x => x), 1, 'open, read 1 MiB, close; 1 MiB at 50 MB/s is 21 ms on one connection');
    }

    if (want('par-files')) {
      log('par-files: 16 readers of 16 different 64 MiB files');
      const names = Array.from({ length: 16 }, (_, i) => `par-${i}.bin`);
      const curlMs = await curlRuns(() => timed(names.map(n => `curl -sf -o /dev/null ${origin.url(n)} &`).join(' ') + ' wait'));
      const r = await each(s => withSystem(s, origin, names, async m => {
        let peak = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            peak = Math.max(peak, await rssKiB(m.pid));
            await new Promise(resolve => setTimeout(resolve, 20));
          }
        })();
        const ms = await timed(names.map(n => `cat ${q(m.path(n))} &`).join(' ') + ' wait');
        sampling = false;
        await sampler;
        return { ms, peakMiB: peak / 1024 };
      }));
      const rss = med(r, x => x.peakMiB);
      const shown = (x?: number): string => (x === undefined ? '-' : x.toFixed(0));
      push(
        'par-files (total MB/s)', mb(GiB, curlMs), med(r, x => mb(GiB, x.ms)), 0,
        `peak RSS MiB: rclone ${shown(rss.rclone)}, fusestream ${shown(rss.fusestream)}`
      );
    }

    if (want('par-same')) {
      log('par-same: 32 readers of one uncached 1 GiB file, origin at 50 MB/s (about 45 s a system, one round)');
      const ideal = await timed(`curl -sf -o /dev/null ${origin.url('slow/big.bin')}`); // the origin's real rate, not its nominal one
      const r = await each(s => withSystem(s, origin, ['slow/big.bin'], async m => {
        const idleLoop = listingLoop(path.dirname(m.path('slow/big.bin')));
        await new Promise(resolve => setTimeout(resolve, 500));
        const idle = await idleLoop.stop();
        const sentBefore = await origin.bytesSent('slow/big.bin');
        const loadedLoop = listingLoop(path.dirname(m.path('slow/big.bin')));
        const times = await Promise.all(Array.from({ length: 32 }, () => timed(`cat ${q(m.path('slow/big.bin'))}`)));
        const loaded = await loadedLoop.stop();
        return {
          slowest: Math.max(...times),
          bytesRatio: (await origin.bytesSent('slow/big.bin') - sentBefore) / GiB,
          lsMax: Math.max(...loaded),
          lsMedian: median(loaded),
          lsIdle: median(idle),
        };
      }), 1);
      const note = (x?: Array<{ bytesRatio: number }>): string => (x === undefined ? '-' : x[0].bytesRatio.toFixed(3));
      push(
        'par-same: slowest of 32 readers (s)', ideal / 1000, med(r, x => x.slowest / 1000), 1,
        `origin bytes / size: rclone ${note(r.rclone)}, fusestream ${note(r.fusestream)}`
      );
      const idleNote = (x?: Array<{ lsIdle: number; lsMedian: number }>): string =>
        (x === undefined ? '-' : `${x[0].lsMedian.toFixed(1)} (idle ${x[0].lsIdle.toFixed(1)})`);
      push(
        'ls -l under par-same, max (ms)', null, med(r, x => x.lsMax), 1,
        `readdir + lstat of each entry, every 20 ms, from a process of its own; median: rclone ${idleNote(r.rclone)}, ` +
          `fusestream ${idleNote(r.fusestream)}`
      );
    }

    if (want('small-files')) {
      log('small-files: 100 x 100 KiB read in turn');
      const names = Array.from({ length: 100 }, (_, i) => `small-${i}.bin`);
      const readAll = async (read: (name: string) => Promise<unknown>): Promise<number> => {
        const began = performance.now();
        for (const n of names) await read(n);
        return performance.now() - began;
      };
      const curlMs = await curlRuns(() => readAll(n => timedFetch(origin.url(n))));
      const r = await each(s => withSystem(s, origin, names, m => readAll(n => fs.readFile(m.path(n)))));
      const perSecond = (ms: number): number => 100 / (ms / 1000);
      push('small-files (files/s)', perSecond(curlMs), med(r, perSecond), 0, 'curl column: a new connection per file');
    }

    if (want('random-read')) {
      log('random-read: fio, 4 KiB random reads of a downloaded 64 MiB file, 4 jobs, 5 s, O_DIRECT then buffered (one round)');
      const r = await each(s => withSystem(s, origin, ['random.bin'], async m => {
        await timed(`cat ${q(m.path('random.bin'))}`); // downloaded whole first
        return { direct: await fioIops(m.path('random.bin'), true), buffered: await fioIops(m.path('random.bin'), false) };
      }), 1);
      push('random-read O_DIRECT (IOPS)', null, med(r, x => x.direct), 0, 'fio randread 4k, 4 jobs');
      push('random-read buffered (IOPS)', null, med(r, x => x.buffered), 0, 'cache dropped first');
    }

    if (want('slow-connection')) {
      log('slow-connection: cat of a 1 GiB file from an origin that serves each connection at 50 MB/s');
      const r = await each(s => withSystem(s, origin, ['slow/big.bin'], async m => {
        const before = await origin.bytesSent('slow/big.bin');
        const ms = await timed(`cat ${q(m.path('slow/big.bin'))}`);
        return { ms, bytesRatio: (await origin.bytesSent('slow/big.bin') - before) / GiB };
      }));
      const ratio = med(r, x => x.bytesRatio);
      const note = (x?: number): string => (x === undefined ? '-' : x.toFixed(3));
      push(
        'slow-connection (MB/s)', THROTTLE / 1e6, med(r, x => mb(GiB, x.ms)), 0,
        `curl column: one connection's rate; origin bytes / size: rclone ${note(ratio.rclone)}, fusestream ${note(ratio.fusestream)}`
      );
    }

    if (want('bwlimit')) {
      log('bwlimit: cat of 256 MiB of a file under a 32 MiB/s cap (--bwlimit 32M, both systems)');
      const cap = 32 * MiB;
      const cut = `head -c ${256 * MiB}`;
      const r = await each(s => withSystem(s, origin, ['big.bin'], m => timed(`${cut} ${q(m.path('big.bin'))} > /dev/null`), {
        args: { fusestream: ['--bwlimit', '32M'], rclone: ['--bwlimit', '32M'] },
      }));
      const ratio = med(r, ms => (256 * MiB / (ms / 1000)) / cap);
      const shown = (x?: number): string => (x === undefined ? '-' : x.toFixed(3));
      const note = `256 MiB read under the cap: rclone ${shown(ratio.rclone)}, fusestream ${shown(ratio.fusestream)}`;
      push('bwlimit 32M: rate reached ÷ cap', null, ratio, 3, note);
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
      const woken = `${one.woken()} woken`;
      const oneWrite = oneMs.toFixed(2);
      const name = 'waiters: 10,000 woken by one write (ms)';
      figures.push({ name, curl: '-', rclone: '-', fusestream: oneWrite, ratio: null, note: woken });
      figures.push({
        name: 'waiters: 10,000 over 625 writes (ms)',
        curl: '-',
        rclone: '-',
        fusestream: oursMs.toFixed(2),
        ratio: null,
        note: `${ours.woken()} woken; a rescan of every waiter per write: ${naiveMs.toFixed(1)} ms`,
      });
    }
  } finally {
    await origin.close();
  }
  if (json) {
    process.stdout.write(JSON.stringify({ node: process.version, runs, rclone: rcloneWhyNot ?? 'measured', figures }, null, 2) + '\n');
    return;
  }
  const table = new Table({
    head: ['figure', 'curl', 'rclone', 'fusestream', 'fusestream ÷ rclone', 'note'],
    style: { head: [], border: [], compact: true },
  });
  for (const f of figures) table.push([f.name, f.curl, f.rclone, f.fusestream, f.ratio === null ? '-' : f.ratio.toFixed(2), f.note]);
  process.stdout.write(table.toString() + '\n');
  process.stdout.write('fusestream ÷ rclone in the figure\'s own unit: higher is better for rates and IOPS, lower for times and CPU.\n');
  if (rcloneWhyNot !== null) process.stdout.write(`no rclone column: ${rcloneWhyNot}\n`);
}

main().catch(err => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
