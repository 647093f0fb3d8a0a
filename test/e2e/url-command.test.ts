import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { FileDetails } from '../../agent/control/protocol';
import { AgentProcess, fsctl, hashFile, makeDirs, openOnce, readRange } from '../helpers/agent';
import { useCleanups } from '../helpers/fixtures';
import { waitForEvent, waitForFile } from '../helpers/wait';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/** The command line fsctl is given: curl asks the origin's API for a link or token valid `validMs`. */
const mintCommand = (origin: TestOrigin, kind: 'url' | 'bearer' | 'opaque', file: string, validMs: number): string =>
  `curl -sf 'http://127.0.0.1:${origin.port}/_mint/${kind}?file=${encodeURIComponent(file)}&validMs=${validMs}'`;

describe('files whose links and tokens expire, refreshed by a url-command', () => {
  const cleanup = useCleanups();

  async function setup (args: string[] = []): Promise<{ origin: TestOrigin; agent: AgentProcess }> {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const agent = await AgentProcess.start({ args });
    cleanup(() => agent.cleanup());
    return { origin, agent };
  }

  async function logText (agent: AgentProcess): Promise<string> {
    const dir = path.join(agent.dirs.stateDir, 'logs');
    let all = agent.stderr;
    for (const f of await fs.readdir(dir)) {
      if (f.endsWith('.log') && f !== 'current.log') all += await fs.readFile(path.join(dir, f), 'utf8');
    }
    return all;
  }

  it('1 GiB through links valid 1.5 s, with dropped connections: byte-exact, each byte fetched once, no read fails', async () => {
    const { origin, agent } = await setup();
    const size = 1024 * MiB;
    // 32 MB/s per connection (4 per file): the download takes several link lifetimes.
    const content = origin.add('big.bin', size, { access: 'signed', throttle: 32_000_000, dropAt: 300 * MiB, dropTimes: 2 });
    const add = await fsctl(agent, ['add', origin.url('big.bin'), '--url-command', mintCommand(origin, 'url', 'big.bin', 1500)]);
    assert.equal(add.code, 0, add.stderr);
    const unsigned = await fsctl(agent, ['add', origin.url('big.bin'), '--name', 'plain.bin']);
    assert.match(unsigned.stderr, /HTTP 403/, 'the origin refuses a link without a signature');

    const started = Date.now();
    assert.equal(await hashFile(agent.path('big.bin'), { timeoutMs: 240_000 }), sha256(content));
    const seconds = (Date.now() - started) / 1000;
    const ratio = origin.bytesSent('big.bin') / size;
    const info = await agent.rpc<FileDetails>('files.get', { file: 'big.bin' });
    process.stdout.write(`# url-command, 1 GiB, links valid 1.5 s: ${seconds.toFixed(1)} s, ${info.urlCommand?.refreshes} refreshes, ` +
      `${origin.mints} links minted, ${origin.refusals} requests refused, origin bytes / size ${ratio.toFixed(4)}\n`);
    assert.ok(ratio <= 1.01, `origin sent ${ratio.toFixed(4)} x the file size`);
    assert.ok(info.urlCommand !== null && info.urlCommand.refreshes >= 3, `the command ran ${info.urlCommand?.refreshes} times`);
    assert.equal(info.source, 'command');
    assert.equal(info.urlCommand.error, null);
    const shown = await fsctl(agent, ['info', 'big.bin']);
    assert.match(shown.text, /^url command\s+curl -sf 'http:\/\/127\.0\.0\.1:\d+\/_mint\/url\?file=big\.bin&validMs=1500'$/m);
    assert.match(shown.text, /^url refreshes\s+\d+$/m);
    assert.equal(await agent.stop(), 0);
    assert.doesNotMatch(await logText(agent), /Signature=/, 'no minted link reaches the logs');
  });

  it('links that do not say when they expire, each valid 1 s: a long read mints again at each refusal and never fails', async () => {
    const { origin, agent } = await setup();
    const size = 192 * MiB;
    const content = origin.add('opaque.bin', size, { access: 'signed', throttle: 24_000_000, dropAt: 64 * MiB, dropTimes: 2 });
    const add = await fsctl(agent, ['add', origin.url('opaque.bin'), '--url-command', mintCommand(origin, 'opaque', 'opaque.bin', 1000)]);
    assert.equal(add.code, 0, add.stderr);
    const started = Date.now();
    assert.equal(await hashFile(agent.path('opaque.bin'), { timeoutMs: 120_000 }), sha256(content));
    const info = await agent.rpc<FileDetails>('files.get', { file: 'opaque.bin' });
    // Each link lapsed while in use and was refused; none was refused before a byte came through it.
    assert.ok(Date.now() - started > 2000, 'the read outlived several links');
    assert.ok(origin.refusals >= 2, `${origin.refusals} refusals`);
    assert.ok(info.urlCommand !== null && info.urlCommand.refreshes >= 3, `the command ran ${info.urlCommand?.refreshes} times`);
    // The link in use (shown without its grant), and what its expiry is known to be.
    const shown = await fsctl(agent, ['info', 'opaque.bin']);
    assert.match(shown.text, /^url\s+http:\/\/127\.0\.0\.1:\d+\/opaque\.bin\?\[redacted\]$/m);
    assert.match(shown.text, /^url expires\s+- \(the link it gave does not say; a new one is minted when it is refused\)$/m);
  });

  it('a command that prints a URL and an expiring bearer token: refreshed before it expires, byte-exact', async () => {
    const { origin, agent } = await setup();
    const size = 192 * MiB;
    const content = origin.add('token.bin', size, { access: 'bearer', throttle: 12_000_000, dropAt: 64 * MiB });
    const add = await fsctl(agent, ['add', '--name', 'token.bin', '--url-command', mintCommand(origin, 'bearer', 'token.bin', 1500)]);
    assert.equal(add.code, 0, add.stderr);
    const listed = (await fsctl(agent, ['--json', 'info', 'token.bin'])).text;
    assert.equal((JSON.parse(listed) as FileDetails).url, origin.url('token.bin'), 'the minted URL is kept, without credentials');

    assert.equal(await hashFile(agent.path('token.bin'), { timeoutMs: 120_000 }), sha256(content));
    const ratio = origin.bytesSent('token.bin') / size;
    const info = await agent.rpc<FileDetails>('files.get', { file: 'token.bin' });
    process.stdout.write(`# url-command, bearer tokens valid 1.5 s: ${info.urlCommand?.refreshes} refreshes, ` +
      `${origin.refusals} requests refused, origin bytes / size ${ratio.toFixed(4)}\n`);
    assert.ok(ratio <= 1.01, `origin sent ${ratio.toFixed(4)} x the file size`);
    assert.ok((info.urlCommand?.refreshes ?? 0) >= 3);
    // The token's exp says when: a new one is minted before, so almost no request is refused.
    assert.ok(origin.refusals <= 1, `${origin.refusals} requests were refused`);
    assert.equal(await agent.stop(), 0);
    assert.doesNotMatch(await logText(agent), /Bearer|eyJ/, 'no token reaches the logs');
  });

  it('kill -9 halfway, every link expires, a new agent mints a fresh one and resumes byte-exact', async () => {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const dirs = await makeDirs();
    const size = 64 * MiB;
    const content = origin.add('resume.bin', size, { access: 'signed', throttle: 8 * MiB });
    const first = await AgentProcess.start({ dirs });
    cleanup(() => first.cleanup());
    const add = await fsctl(first, ['add', origin.url('resume.bin'), '--url-command', mintCommand(origin, 'url', 'resume.bin', 1000)]);
    assert.equal(add.code, 0, add.stderr);
    await openOnce(first.path('resume.bin'));
    await waitForFile(first, 'resume.bin', f => f.presentBytes >= size / 2, 60_000);
    await first.stop('SIGKILL');
    const mintsBefore = origin.mints;
    const sentBefore = origin.bytesSent('resume.bin');
    // Time itself is what is waited for here: every link the first agent held lapses.
    await new Promise(resolve => setTimeout(resolve, 2100));

    origin.setFaults('resume.bin', { access: 'signed' });
    const second = await AgentProcess.start({ dirs });
    cleanup(() => second.cleanup());
    assert.equal(await hashFile(second.path('resume.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(origin.mints > mintsBefore, 'the new agent ran the command');
    // What the first agent received but had not yet committed when killed is fetched again: a few MiB.
    const sent = origin.bytesSent('resume.bin');
    const mib = (n: number): string => (n / MiB).toFixed(1);
    assert.ok(sent <= size + 8 * MiB, `origin sent ${mib(sent)} MiB in all, ${mib(sentBefore)} MiB before the kill`);
  });

  it('a failing command: readers get EIO within read-timeout, fsctl info shows why, the agent stays healthy and recovers', async () => {
    // No background fill: only reads start connections, so the far read below needs a new one.
    const { origin, agent } = await setup(['--read-timeout', '2', '--fill-files-up-to', '0']);
    const size = 256 * MiB;
    const content = origin.add('flaky.bin', size, { access: 'signed', throttle: 4 * MiB });
    const other = origin.add('other.bin', 2 * MiB);
    const broken = path.join(agent.dirs.dir, 'token-service-down');
    const mint = mintCommand(origin, 'url', 'flaky.bin', 1000);
    const script = `if [ -e '${broken}' ]; then echo "token service down" >&2; exit 3; fi; exec ${mint}`;
    const add = await fsctl(agent, ['add', origin.url('flaky.bin'), '--url-command', `sh -c "${script.replace(/"/g, '\\"')}"`]);
    assert.equal(add.code, 0, add.stderr);
    const head = await readRange(agent.path('flaky.bin'), 0, 64 * 1024, { timeoutMs: 20_000 });
    assert.equal(head.code, 0, head.stderr);

    await fs.writeFile(broken, '');
    const failureEvent = waitForEvent(agent, e => e.type === 'url-command' && !e.ok, 30_000);
    // Until the link in hand lapses, no new one is needed: wait for its expiry, a time the agent tells.
    const expiresAt = (await agent.rpc<FileDetails>('files.get', { file: 'flaky.bin' })).urlExpiresAt;
    assert.ok(expiresAt !== null);
    await new Promise(resolve => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 50)));
    // Far ahead: a new connection, which needs a new link.
    const started = Date.now();
    const far = await readRange(agent.path('flaky.bin'), 200 * MiB, 64 * 1024, { timeoutMs: 30_000 });
    const failedAfter = Date.now() - started;
    process.stdout.write(`# url-command failing: the read failed after ${failedAfter} ms (read-timeout 2 s)\n`);
    assert.notEqual(far.code, 0, 'the read fails');
    assert.match(far.stderr, /Input\/output error|timed out/i);
    assert.ok(failedAfter <= 2000 + 4000, `the read failed after ${failedAfter} ms`);
    const info = await fsctl(agent, ['info', 'flaky.bin']);
    assert.match(info.text, /^command error\s+url-command sh failed: exit status 3: token service down$/m);
    const event = await failureEvent;
    assert.ok(event.type === 'url-command' && event.file === 'flaky.bin');
    assert.equal(event.error, 'url-command sh failed: exit status 3: token service down');

    // Healthy: other files read and the socket answers.
    assert.equal((await fsctl(agent, ['add', origin.url('other.bin')])).code, 0);
    assert.equal(await hashFile(agent.path('other.bin')), sha256(other));
    assert.equal((await fsctl(agent, ['status'])).code, 0);

    // The service is back: fsctl resume tries again now, rather than after the pause between runs.
    await fs.rm(broken);
    origin.setFaults('flaky.bin', { access: 'signed' });
    assert.equal((await fsctl(agent, ['resume', 'flaky.bin'])).code, 0);
    assert.equal(await hashFile(agent.path('flaky.bin'), { timeoutMs: 60_000 }), sha256(content));
    const after = await agent.rpc<FileDetails>('files.get', { file: 'flaky.bin' });
    assert.equal(after.urlCommand?.error, null);
  });

  it('fsctl resume of a file whose command gave only dead links runs the command again, and goes on once it gives good ones', async () => {
    const { origin, agent } = await setup(['--fill-files-up-to', '0']);
    const content = origin.add('dead.bin', 16 * MiB, { access: 'signed', throttle: 4 * MiB });
    const validMs = path.join(agent.dirs.dir, 'valid-ms');
    await fs.writeFile(validMs, '1000');
    const mint = `curl -sf "http://127.0.0.1:${origin.port}/_mint/opaque?file=dead.bin&validMs=$(cat '${validMs}')"`;
    const add = await fsctl(agent, ['add', origin.url('dead.bin'), '--url-command', `sh -c '${mint}'`]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await readRange(agent.path('dead.bin'), 0, 64 * 1024, { timeoutMs: 20_000 })).code, 0);
    assert.equal((await fsctl(agent, ['cancel', 'dead.bin'])).code, 0);
    await fs.writeFile(validMs, '1'); // the API now hands out links dead on arrival
    await new Promise(resolve => setTimeout(resolve, 1100)); // and the link in hand lapses

    assert.equal((await fsctl(agent, ['resume', 'dead.bin'])).code, 0);
    assert.notEqual((await readRange(agent.path('dead.bin'), 8 * MiB, 64 * 1024, { timeoutMs: 30_000 })).code, 0);
    const failed = await waitForFile(agent, 'dead.bin', f => f.state === 'error', 30_000);
    assert.match(String(failed.lastError), /HTTP 403/);
    const mintsBefore = origin.mints;
    await fs.writeFile(validMs, '60000');
    assert.equal((await fsctl(agent, ['resume', 'dead.bin'])).code, 0);
    assert.equal(await hashFile(agent.path('dead.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(origin.mints > mintsBefore, 'resume ran the command again');
  });

  it('a pasted link that expired is replaced by a url-command with fsctl set-url, keeping the bytes on disk', async () => {
    const { origin, agent } = await setup();
    const size = 16 * MiB;
    const content = origin.add('pasted.bin', size, { access: 'signed', throttle: 4_000_000, dropAt: 4 * MiB });
    await agent.add(origin.signedUrl('pasted.bin', 200));
    const reader = hashFile(agent.path('pasted.bin'), { timeoutMs: 60_000 }).catch((err: Error) => err);
    const failed = await waitForFile(agent, 'pasted.bin', f => f.state === 'error');
    assert.match(failed.lastError ?? '', /the URL expired at/);
    assert.ok(await reader instanceof Error);

    const sentBefore = origin.bytesSent('pasted.bin');
    const set = await fsctl(agent, ['set-url', 'pasted.bin', '--url-command', mintCommand(origin, 'url', 'pasted.bin', 60_000)]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.text, /^pasted\.bin: new url-command; the same version, so its [\d.]+ MiB on disk were kept$/m);
    assert.equal(await hashFile(agent.path('pasted.bin'), { timeoutMs: 60_000 }), sha256(content));
    const fetchedAgain = origin.bytesSent('pasted.bin') - sentBefore;
    assert.ok(fetchedAgain <= (size - failed.presentBytes) * 1.01 + MiB, `set-url fetched ${fetchedAgain} bytes again`);
  });
});
