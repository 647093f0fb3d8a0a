import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentProcess, hashFile, readRange, run } from './helpers/agent';
import { sha256, TestOrigin } from '../tools/test-origin';

const MiB = 1024 * 1024;

describe('a misbehaving origin', () => {
  let origin: TestOrigin;
  let agent: AgentProcess;

  before(async () => {
    origin = await TestOrigin.start();
    agent = await AgentProcess.start();
  });
  after(async () => {
    await agent?.cleanup();
    await origin?.close();
  });

  it('resumes a connection dropped mid-file with Range and If-Range, byte-exact', async () => {
    const content = origin.add('drops.bin', 16 * MiB, { dropAt: 5 * MiB, dropTimes: 2 });
    await agent.add(origin.url('drops.bin'));
    assert.equal(await hashFile(agent.path('drops.bin'), { timeoutMs: 60_000 }), sha256(content));
    const resumed = origin.requests.filter(r => r.file === 'drops.bin' && r.method === 'GET' && r.range !== null && !r.range.startsWith('bytes=0-'));
    assert.ok(resumed.length >= 1, 'a resume asked for the missing range');
    assert.ok(resumed.every(r => r.ifRange !== null), 'every resume carried If-Range');
    assert.ok(origin.bytesSent('drops.bin') <= content.length + 2 * 1024, 'resumes did not fetch bytes again');
  });

  it('works with an origin that ignores Range', async () => {
    const content = origin.add('norange.bin', 8 * MiB, { noRange: true });
    await agent.add(origin.url('norange.bin'));
    assert.equal(await hashFile(agent.path('norange.bin'), { timeoutMs: 60_000 }), sha256(content));
  });

  it('works with an origin that refuses HEAD', async () => {
    const content = origin.add('nohead.bin', 3 * MiB + 17, { refuseHead: true });
    await agent.add(origin.url('nohead.bin'));
    assert.equal(await hashFile(agent.path('nohead.bin'), { timeoutMs: 60_000 }), sha256(content));
  });

  it('recovers when the origin answers 503 and then 200', async () => {
    const content = origin.add('flaky.bin', 4 * MiB, { failFirst: { status: 503, times: 2, retryAfter: '0' } });
    await agent.add(origin.url('flaky.bin'));
    assert.equal(await hashFile(agent.path('flaky.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(origin.gets('flaky.bin') >= 3);
  });

  it('surfaces a 404 mid-way as EIO while bytes before it stay readable', async () => {
    const content = origin.add('vanishes.bin', 8 * MiB, { dropAt: 2 * MiB, statusAfterFirstGet: 404 });
    await agent.add(origin.url('vanishes.bin'));
    const whole = await run('cat', [agent.path('vanishes.bin')], { timeoutMs: 30_000 });
    assert.notEqual(whole.code, 0);
    assert.match(whole.stderr, /Input\/output error/);
    const head = await readRange(agent.path('vanishes.bin'), 0, 1 * MiB, { timeoutMs: 10_000 });
    assert.equal(head.code, 0);
    assert.ok(head.stdout.equals(content.subarray(0, 1 * MiB)));
    const files = await agent.rpc<Array<{ name: string; state: string; lastError: string | null }>>('files.list');
    const f = files.find(x => x.name === 'vanishes.bin')!;
    assert.equal(f.state, 'error');
    assert.match(String(f.lastError), /404/);
  });
});
