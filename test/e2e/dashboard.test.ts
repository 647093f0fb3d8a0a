/// <reference lib="dom" />
/**
 * The dashboard (`fsctl ui`), seen as a user sees it: Chromium (puppeteer-core) opens the
 * link fsctl prints, watches a file's range map fill, finds a stalled reader by its pid and
 * cancels it; the page keeps up with a thousand files. Then what no other page may do:
 * requests without the secret, with another Host, or a POST from another origin.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { AgentProcess, fsctl, hashFile, run } from '../helpers/agent';
import { CHROMIUM_MISSING, launchChromium } from '../helpers/chromium';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

interface Answer { status: number; body: string; headers: http.IncomingHttpHeaders }

/** A raw request to the dashboard, with exactly the headers given (Node adds no Origin). */
function request (port: number, method: string, pathname: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, headers, setHost: false }, res => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => { text += s; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the dashboard: fsctl ui', { skip: CHROMIUM_MISSING }, () => {
  let origin: TestOrigin;
  let agent: AgentProcess;
  let browser: Browser;
  let page: Page;
  let link: URL;
  let profile = '';

  before(async () => {
    origin = await TestOrigin.start();
    // A long read timeout: the stalled reader must still be waiting when the test clicks cancel.
    agent = await AgentProcess.start({ args: ['--read-timeout', '60'] });
    const ui = await fsctl(agent, ['ui', '--no-open']);
    assert.equal(ui.code, 0, ui.stderr);
    const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64})$/m.exec(ui.text);
    assert.ok(m !== null, ui.text);
    link = new URL(m[1]);
    profile = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-chromium-'));
    browser = await launchChromium(profile);
    page = await browser.newPage();
    await page.goto(link.href);
  });

  after(async () => {
    await browser?.close().catch(() => browser.process()?.kill('SIGKILL'));
    await agent?.cleanup();
    await origin?.close();
    if (profile !== '') await fs.rm(profile, { recursive: true, force: true });
  });

  /** The page's number for a file's row (its data attribute), or -1 while the row is not drawn. */
  const rowValue = (name: string, key: string): Promise<number> => page.evaluate((n, k) => {
    const row = document.querySelector(`.row[data-name="${CSS.escape(n)}"]`) as HTMLElement | null;
    return row === null ? -1 : Number(row.dataset[k]);
  }, name, key);

  it('logs in from the link (the secret leaves the address bar), and draws a file\'s range map as it fills', async () => {
    assert.equal(page.url(), `${link.origin}/`, 'the token is not left in the address bar');
    const content = origin.add('fills.bin', 24 * MiB, { throttle: 4 * MiB });
    await agent.add(origin.url('fills.bin'));
    await page.waitForSelector('.row[data-name="fills.bin"]');
    const reading = hashFile(agent.path('fills.bin'), { timeoutMs: 60_000 });
    // Seen part-way, then further on: the page moves while bytes land, without being reloaded.
    await page.waitForFunction(() => {
      const row = document.querySelector('.row[data-name="fills.bin"]') as HTMLElement | null;
      return row !== null && Number(row.dataset.present) > 0 && row.dataset.state === 'downloading';
    }, { timeout: 20_000 });
    const early = await rowValue('fills.bin', 'present');
    assert.ok(early < 24 * MiB, 'seen while downloading');
    await page.waitForFunction(
      (atLeast: number) => Number((document.querySelector('.row[data-name="fills.bin"]') as HTMLElement).dataset.present) >= atLeast,
      { timeout: 20_000 }, early + 8 * MiB
    );
    const strip = await page.$$eval('.row[data-name="fills.bin"] .strip .present', segs => segs.map(s => (s as HTMLElement).style.width));
    assert.ok(strip.length >= 1 && strip.some(w => parseFloat(w) > 30), `the strip shows the bytes on disk: ${strip.join(', ')}`);
    assert.equal(await reading, sha256(content));
    await page.waitForFunction(() => {
      const row = document.querySelector('.row[data-name="fills.bin"]') as HTMLElement | null;
      return row?.dataset.state === 'complete';
    }, { timeout: 20_000 });
  });

  it('shows a stalled reader with its pid; its cancel button fails the read with EIO at once', async () => {
    origin.add('stalls.bin', 16 * MiB, { stallAt: 2 * MiB });
    await agent.add(origin.url('stalls.bin'));
    let pid = 0;
    // 64 KiB at 8 MiB, past the stall at 2 MiB.
    const reader = run('dd', [`if=${agent.path('stalls.bin')}`, 'bs=65536', 'skip=128', 'count=1', 'status=none'], {
      timeoutMs: 90_000, onSpawn: p => { pid = p; },
    });
    await page.waitForSelector(`.row[data-name="stalls.bin"] .waiter[data-pid="${pid}"]`, { timeout: 20_000 });
    const markers = `.row[data-name="stalls.bin"] .waiter[data-pid="${pid}"]`;
    const titles = await page.$$eval(markers, ms => ms.map(m => (m as HTMLElement).title));
    assert.ok(titles.some(t => new RegExp(`^pid ${pid} \\(dd\\) waits for [\\d.]+ KiB at 8\\.0 MiB, for `).test(t)), titles.join('\n'));
    const clicked = Date.now();
    await page.click('.row[data-name="stalls.bin"] button[data-action="cancel"]');
    const r = await reader;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Input\/output error/);
    assert.ok(Date.now() - clicked < 5000, `EIO ${Date.now() - clicked} ms after the click, not at the read timeout`);
    await page.waitForFunction(() => {
      const row = document.querySelector('.row[data-name="stalls.bin"]') as HTMLElement | null;
      return row?.dataset.state === 'cancelled' && row.dataset.waiters === '0';
    }, { timeout: 10_000 });
  });

  it('keeps up with a thousand files: all counted, few drawn, the last reached by scrolling', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const name = `many/f${String(i).padStart(4, '0')}.bin`;
      origin.add(name, 1000 + i);
      lines.push(`${origin.url(name)} ${name}`);
    }
    const list = path.join(agent.dirs.dir, 'many.txt');
    await fs.writeFile(list, lines.join('\n') + '\n');
    const add = await fsctl(agent, ['add', '--from-file', list]);
    assert.equal(add.code, 0, add.stderr);
    await page.waitForFunction(() => /^10\d\d files/.test(document.getElementById('summary')?.textContent ?? ''), { timeout: 20_000 });
    const drawn = await page.$$eval('.row', rows => rows.length);
    assert.ok(drawn < 100, `${drawn} rows in the page: only those in view are drawn`);
    // Keyboard: the list takes focus and End goes to the last row.
    await page.focus('#list');
    await page.keyboard.press('End');
    await page.waitForSelector('.row[data-name="many/f0999.bin"]', { timeout: 10_000 });
  });

  it('answers only with the secret, only to the loopback Host, and takes changes only from its own page', async () => {
    const port = Number(link.port);
    const host = `127.0.0.1:${port}`;
    const cookies = await page.cookies();
    const cookie = cookies.find(c => c.name === `fusestream_${port}`);
    assert.ok(cookie !== undefined && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookies));
    const withSecret = { host, cookie: `fusestream_${port}=${cookie.value}` };

    assert.equal((await request(port, 'GET', '/', { host })).status, 403, 'no secret');
    assert.equal((await request(port, 'GET', '/?token=' + '0'.repeat(64), { host })).status, 403, 'a wrong secret');
    assert.equal((await request(port, 'GET', '/api/feed', { host })).status, 403, 'the feed without a secret');
    assert.equal((await request(port, 'GET', '/', { ...withSecret, host: `evil.example:${port}` })).status, 403, 'DNS rebinding');
    const pageAnswer = await request(port, 'GET', '/', withSecret);
    assert.equal(pageAnswer.status, 200);
    assert.match(String(pageAnswer.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);

    const pin = JSON.stringify({ method: 'files.pin', params: { file: 'fills.bin' } });
    const json = { 'content-type': 'application/json' };
    const post = (headers: Record<string, string>, body = pin): Promise<Answer> =>
      request(port, 'POST', '/api/call', { ...json, ...headers }, body);
    assert.equal((await post({ ...withSecret, origin: 'http://evil.example' })).status, 403, 'a POST from another origin');
    assert.equal((await post(withSecret)).status, 403, 'a POST with no Origin');
    assert.equal((await post({ host, origin: `http://${host}` })).status, 403, 'a POST without the secret');
    const command = JSON.stringify({ method: 'files.add', params: { url: origin.url('fills.bin'), urlCommand: ['touch', '/tmp/pwned'] } });
    assert.equal((await post({ ...withSecret, origin: `http://${host}` }, command)).status, 403, 'a url-command');
    const stop = JSON.stringify({ method: 'agent.shutdown' });
    assert.equal((await post({ ...withSecret, origin: `http://${host}` }, stop)).status, 403, 'shutdown');
    const ok = await post({ ...withSecret, origin: `http://${host}` });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((JSON.parse(ok.body) as { result: { pinned: boolean } }).result.pinned, true);

    // Listening on the loopback address alone: the kernel's socket table (no other address is contacted).
    const tcp = await fs.readFile('/proc/net/tcp', 'utf8') + await fs.readFile('/proc/net/tcp6', 'utf8').catch(() => '');
    const listening = tcp.split('\n').filter(l => l.trim().split(/\s+/)[3] === '0A' && l.includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} `));
    assert.deepEqual(listening.map(l => l.trim().split(/\s+/)[1]), [`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`]);
    const secretFile = await fs.stat(path.join(agent.dirs.stateDir, 'ui-secret'));
    assert.equal(secretFile.mode & 0o777, 0o600);
  });
});

describe('the dashboard turned off', () => {
  it('--no-ui: nothing listens, and fsctl ui says so in one line', async () => {
    const agent = await AgentProcess.start({ args: ['--no-ui'] });
    try {
      const r = await fsctl(agent, ['ui', '--no-open']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /the dashboard is off \(--no-ui\)/);
      const status = JSON.parse((await fsctl(agent, ['--json', 'status'])).text) as { agent: { dashboard: unknown } };
      assert.equal(status.agent.dashboard, null);
    } finally {
      await agent.cleanup();
    }
  });
});
