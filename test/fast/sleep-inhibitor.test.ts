import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { inhibitorCommand, SleepInhibitor } from '../../agent/platform/sleep-inhibitor';
import { waitForText } from '../helpers/wait';

interface Line { msg: string; reason?: string }

/** A logger whose lines land in `lines`; `next(match)` resolves with the first line that matches, as it is written. */
function capture (): { log: pino.Logger; lines: Line[]; next: (match: (l: Line) => boolean) => Promise<Line> } {
  const lines: Line[] = [];
  const waiting: Array<{ match: (l: Line) => boolean; resolve: (l: Line) => void }> = [];
  const out = new Writable({
    write (chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString()) as Line;
      lines.push(line);
      for (const w of waiting.filter(w => w.match(line))) { waiting.splice(waiting.indexOf(w), 1); w.resolve(line); }
      done();
    },
  });
  const next = (match: (l: Line) => boolean): Promise<Line> => {
    const seen = lines.find(match);
    return seen !== undefined ? Promise.resolve(seen) : new Promise(resolve => waiting.push({ match, resolve }));
  };
  return { log: pino({ level: 'info' }, out), lines, next };
}
const GAVE_UP = (l: Line): boolean => l.msg.startsWith('cannot keep the machine awake');

describe('the sleep inhibitor of each platform', () => {
  it('Linux: systemd-inhibit holding idle and sleep while cat reads the agent\'s pipe; macOS: caffeinate -i bound to the agent', () => {
    assert.deepEqual(inhibitorCommand('linux', 4242), {
      file: 'systemd-inhibit',
      args: ['--what=idle:sleep', '--who=fusestream', '--why=Streaming files to programs reading the mount', '--mode=block', 'cat'],
    });
    assert.deepEqual(inhibitorCommand('darwin', 4242), { file: 'caffeinate', args: ['-i', '-w', '4242'] });
    assert.equal(inhibitorCommand('win32', 4242), null);
  });
});

describe('holding the inhibitor while transfers are active', () => {
  let dir = '';
  before(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-inhibit-')); });
  after(async () => { await fs.rm(dir, { recursive: true, force: true }); });

  /** A stand-in inhibitor: notes when it starts and when its stdin closes (the agent let go, or died). */
  const standIn = (record: string): { file: string; args: string[] } => ({
    file: process.execPath,
    args: ['-e', `const fs = require('fs'); const r = ${JSON.stringify(record)};
      fs.appendFileSync(r, 'start\\n');
      process.stdin.resume();
      process.stdin.on('end', () => { fs.appendFileSync(r, 'stdin closed\\n'); process.exit(0); });
      process.on('SIGTERM', () => { fs.appendFileSync(r, 'stopped\\n'); process.exit(0); });`],
  });
  const lines = (text: string): string[] => text.split('\n').filter(Boolean);

  it('takes it once for overlapping transfers and lets it go once none was active for a moment', async () => {
    const record = path.join(dir, 'cycle');
    let active = false;
    const { log } = capture();
    const inhibitor = new SleepInhibitor({ command: standIn(record), log, isActive: () => active, releaseAfterMs: 200, takeAfterMs: 0 });
    inhibitor.poke();
    assert.equal(inhibitor.held, false, 'nothing active: nothing taken');
    active = true;
    inhibitor.poke();
    inhibitor.poke();
    assert.equal(inhibitor.held, true);
    await waitForText(record, t => lines(t).includes('start'));
    active = false;
    const ended = lines(await waitForText(record, t => lines(t).length === 2));
    assert.equal(inhibitor.held, false);
    assert.equal(ended[0], 'start', 'one inhibitor for both');
    assert.match(ended[1], /^(stdin closed|stopped)$/);
    active = true;
    inhibitor.poke();
    assert.equal(inhibitor.held, true, 'taken again for the next transfer');
    inhibitor.close();
    assert.equal(inhibitor.held, false);
    inhibitor.poke();
    assert.equal(inhibitor.held, false, 'never again once closed');
  });

  it('is taken only once transfers were active for takeAfterMs: a short one never starts it', async () => {
    const record = path.join(dir, 'delayed');
    let active = true;
    const { log, next } = capture();
    const inhibitor = new SleepInhibitor({ command: standIn(record), log, isActive: () => active, takeAfterMs: 150 });
    inhibitor.poke();
    assert.equal(inhibitor.held, false, 'not at once');
    active = false; // the transfer ended before the delay
    inhibitor.poke();
    await new Promise(resolve => setTimeout(resolve, 300)); // past the delay: nothing may have started
    assert.equal(inhibitor.held, false, 'a transfer shorter than the delay takes no lock');
    await assert.rejects(fs.stat(record), { code: 'ENOENT' });
    active = true;
    inhibitor.poke();
    const keepAlive = setTimeout(() => {}, 10_000); // its timer holds no process open, as in the agent
    await next(l => l.msg.startsWith('keeping the machine awake'));
    clearTimeout(keepAlive);
    assert.equal(inhibitor.held, true, 'a transfer that lasts takes it');
    await waitForText(record, t => lines(t).includes('start'));
    inhibitor.close();
  });

  it('where none can run, says so once and goes on', async () => {
    const { log, lines: said, next } = capture();
    const nowhere = { file: '/nonexistent/systemd-inhibit', args: [] };
    const missing = new SleepInhibitor({ command: nowhere, log, isActive: () => true, takeAfterMs: 0 });
    missing.poke();
    assert.match((await next(GAVE_UP)).reason ?? '', /could not be started \(ENOENT\)/);
    missing.poke();
    missing.poke();
    assert.equal(missing.held, false);
    assert.equal(said.filter(GAVE_UP).length, 1, 'said once');

    const { log: log2, next: next2 } = capture();
    const busError = 'console.error("Failed to connect to bus: No such file or directory"); process.exit(1)';
    const noLogind = { file: process.execPath, args: ['-e', busError] };
    const refused = new SleepInhibitor({
      command: noLogind,
      log: log2,
      isActive: () => true,
      takeAfterMs: 0,
    });
    refused.poke();
    assert.match((await next2(GAVE_UP)).reason ?? '', /ended: Failed to connect to bus/);
    assert.equal(refused.held, false);
    refused.poke();
    assert.equal(refused.held, false, 'not tried again');

    const { log: log3, next: next3 } = capture();
    new SleepInhibitor({ command: null, log: log3, isActive: () => true, takeAfterMs: 0 }).poke();
    assert.match((await next3(GAVE_UP)).reason ?? '', /no sleep inhibitor/);
  });
});
