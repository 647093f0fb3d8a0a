/**
 * The scenario fusestream exists for: a browser uploads a large file from the mount while
 * the agent is still downloading it. Chromium (Debian's `chromium`, driven by puppeteer-core)
 * picks the file in an `<input type=file>` of a page from the test's own upload server and
 * sends it with `fetch`. Run alone: `npm run build && node --test dist/test/e2e/browser-upload.test.js`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import type { FileDetails } from '../../agent/control/protocol';
import { AgentProcess, fsctl, hashFile } from '../helpers/agent';
import { CHROMIUM_MISSING, launchChromium } from '../helpers/chromium';
import { waitForFile } from '../helpers/wait';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;
/** Seconds a read may wait without progress before the agent fails it. */
const READ_TIMEOUT_S = 3;

interface Received { bytes: number; sha256: string; complete: boolean; firstByteAt: number | null }
interface PageResult { ok: boolean; status?: number; error?: string; endedAt: number; body?: { bytes: number; sha256: string } }

const PAGE = `<!doctype html>
<title>upload</title>
<input type="file" id="pick">
<script>
  window.upload = async () => {
    const file = document.getElementById('pick').files[0];
    try {
      const res = await fetch('/upload', { method: 'POST', body: file });
      return { ok: res.ok, status: res.status, body: await res.json(), endedAt: Date.now() };
    } catch (err) {
      return { ok: false, error: String(err), endedAt: Date.now() };
    }
  };
</script>`;

/** A page to upload from, and a server that hashes what it receives and says whether the body was whole. */
class UploadServer {
  readonly received: Received[] = [];
  readonly #server = http.createServer((req, res) => this.#handle(req, res));
  port = 0;

  async start (): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'GET') { res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE); return; }
    const got: Received = { bytes: 0, sha256: '', complete: false, firstByteAt: null };
    this.received.push(got);
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => {
      got.firstByteAt ??= Date.now();
      got.bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      got.complete = true;
      got.sha256 = hash.digest('hex');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: got.bytes, sha256: got.sha256 }));
    });
    req.on('error', () => { /* aborted by the browser: `complete` stays false */ });
  }

  close (): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise(resolve => this.#server.close(() => resolve()));
  }
}

describe('a browser uploads a file from the mount while it downloads', { skip: CHROMIUM_MISSING }, () => {
  let origin: TestOrigin;
  let agent: AgentProcess;
  let server: UploadServer;
  let browser: Browser;
  let profile = '';

  before(async () => {
    origin = await TestOrigin.start();
    agent = await AgentProcess.start({ args: ['--read-timeout', String(READ_TIMEOUT_S)] });
    server = new UploadServer();
    await server.start();
    profile = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-chromium-'));
    browser = await launchChromium(profile);
  });

  after(async () => {
    // Each step on its own: one that fails must not leave the others running.
    await browser?.close().catch(() => browser.process()?.kill('SIGKILL'));
    await agent?.cleanup();
    await server?.close();
    await origin?.close();
    if (profile !== '') await fs.rm(profile, { recursive: true, force: true });
  });

  /** Opens the page, picks `file` from the mount, and starts the upload; resolves when the page has its answer. */
  async function startUpload (file: string): Promise<{ page: Page; result: Promise<PageResult>; startedAt: number }> {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    const input = await page.$('input#pick');
    assert.ok(input !== null);
    await input.uploadFile(agent.path(file));
    const startedAt = Date.now();
    const result = page.evaluate('window.upload()') as Promise<PageResult>;
    return { page, result, startedAt };
  }

  it('the server receives exactly the origin\'s bytes, sent as they arrive: the upload takes as long as the download', async () => {
    const size = 96 * MiB;
    // 4 MiB/s per connection: some seconds to download, a fraction of a second to upload.
    const baseline = origin.add('baseline.bin', size, { throttle: 4 * MiB });
    const content = origin.add('video.bin', size, { throttle: 4 * MiB });
    await agent.add(origin.url('baseline.bin'));
    await agent.add(origin.url('video.bin'));

    const downloadStarted = Date.now();
    assert.equal(await hashFile(agent.path('baseline.bin'), { timeoutMs: 120_000 }), sha256(baseline));
    const downloadMs = Date.now() - downloadStarted;

    const received = server.received.length;
    const { page, result, startedAt } = await startUpload('video.bin');
    const completeAt = waitForFile(agent, 'video.bin', f => f.state === 'complete', 120_000).then(() => Date.now());
    const answer = await result;
    const uploadMs = answer.endedAt - startedAt;
    await page.close();
    const got = server.received[received];
    process.stdout.write(`# browser upload of ${size / MiB} MiB from the mount: ${uploadMs} ms; ` +
      `the same download alone (cat through the mount): ${downloadMs} ms; the server's first byte after ${(got.firstByteAt ?? 0) - startedAt} ms\n`);
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.deepEqual(answer.body, { bytes: size, sha256: sha256(content) });
    assert.equal(got.complete, true);
    // Overlap: the server had bytes long before the agent had the whole file.
    assert.ok(got.firstByteAt !== null && got.firstByteAt < await completeAt - 1000, 'the upload began while the file downloaded');
    assert.ok(uploadMs <= downloadMs * 1.3 + 2000, `the upload took ${uploadMs} ms; the download alone ${downloadMs} ms`);
  });

  it('a stalled origin fails the upload within read-timeout + a few s: the page sees an error, the server no whole body', async () => {
    const size = 64 * MiB;
    origin.add('stalls.bin', size, { stallAt: 24 * MiB });
    await agent.add(origin.url('stalls.bin'));
    const received = server.received.length;
    const { page, result, startedAt } = await startUpload('stalls.bin');
    const answer = await result;
    await page.close();
    const failedAfter = answer.endedAt - startedAt;
    process.stdout.write(`# browser upload, origin stalled at 24 MiB: the page saw "${answer.error}" after ${failedAfter} ms ` +
      `(read-timeout ${READ_TIMEOUT_S} s)\n`);
    assert.equal(answer.ok, false);
    assert.match(answer.error ?? '', /TypeError/);
    assert.ok(failedAfter <= (READ_TIMEOUT_S + 5) * 1000, `the upload failed after ${failedAfter} ms`);
    const got = server.received.slice(received);
    assert.ok(got.every(r => !r.complete), 'the server never received a whole body');
  });

  it('fsctl cancel fails the upload within a second', async () => {
    const size = 64 * MiB;
    origin.add('cancelled.bin', size, { throttle: 1 * MiB });
    await agent.add(origin.url('cancelled.bin'));
    const received = server.received.length;
    const { page, result } = await startUpload('cancelled.bin');
    await waitForFile(agent, 'cancelled.bin', f => f.presentBytes >= 2 * MiB, 60_000);
    const cancelled = await fsctl(agent, ['cancel', 'cancelled.bin']);
    const cancelledAt = Date.now();
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const answer = await result;
    await page.close();
    const failedAfter = answer.endedAt - cancelledAt;
    process.stdout.write(`# browser upload, fsctl cancel: the page saw "${answer.error}" ${failedAfter} ms after the cancel\n`);
    assert.equal(answer.ok, false);
    assert.ok(failedAfter <= 1000, `the upload failed ${failedAfter} ms after the cancel`);
    assert.ok(server.received.slice(received).every(r => !r.complete));
  });

  it('a file whose links expire every 1.5 s, refreshed by a url-command: the upload completes, byte-exact', async () => {
    const size = 64 * MiB;
    const content = origin.add('private.bin', size, { access: 'signed', throttle: 4 * MiB, dropAt: 20 * MiB });
    const mint = `curl -sf 'http://127.0.0.1:${origin.port}/_mint/url?file=private.bin&validMs=1500'`;
    const add = await fsctl(agent, ['add', origin.url('private.bin'), '--url-command', mint]);
    assert.equal(add.code, 0, add.stderr);
    const { page, result, startedAt } = await startUpload('private.bin');
    const answer = await result;
    await page.close();
    const info = await agent.rpc<FileDetails>('files.get', { file: 'private.bin' });
    const ratio = origin.bytesSent('private.bin') / size;
    process.stdout.write(`# browser upload through links valid 1.5 s: ${answer.endedAt - startedAt} ms, ` +
      `${info.urlCommand?.refreshes} refreshes, origin bytes / size ${ratio.toFixed(4)}\n`);
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.deepEqual(answer.body, { bytes: size, sha256: sha256(content) });
    assert.ok((info.urlCommand?.refreshes ?? 0) >= 2);
    assert.ok(ratio <= 1.01);
  });
});
