import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { AgentProcess, fsctl, hashFile, run } from '../helpers/agent';
import { waitForFile } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

describe('logs', () => {
  const fx = useOriginAndAgent({ args: ['--log-level', 'debug'] });

  it('keep secrets out of logs, errors and fsctl output: signed paths and queries, Authorization and Cookie headers', async () => {
    const content = fx.origin.add('private.bin', 300_000);
    const signed = `${fx.origin.url('private.bin')}?X-Amz-Credential=AKIDSECRETCRED&X-Amz-Signature=SECRETSIGNATURE&token=SECRETTOKEN`;
    const add = await fsctl(fx.agent, ['add', signed, '-H', 'Authorization: Bearer SECRETBEARER', '-H', 'Cookie: session=SECRETCOOKIE']);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await hashFile(fx.agent.path('private.bin')), sha256(content));
    const missing = await fsctl(
      fx.agent,
      ['add', `${fx.origin.url('nothing.bin')}?sig=SECRETMISSING`, '-H', 'Authorization: Bearer SECRETBEARER']
    );
    assert.equal(missing.code, 1);
    // Links signed in the path, as many APIs mint them: one served whole, one that fails half-way.
    const pathSigned = fx.origin.add('dl/Xk9Qm2SECRETpathSIG7d8e/in-path.bin', 200_000);
    const inPath = await fsctl(fx.agent, ['add', fx.origin.url('dl/Xk9Qm2SECRETpathSIG7d8e/in-path.bin')]);
    assert.equal(inPath.code, 0, inPath.stderr);
    assert.equal(await hashFile(fx.agent.path('in-path.bin')), sha256(pathSigned));
    fx.origin.add('dl/Pq7Rk2SECRETfailSIG9z1x/fails.bin', 4 * 1024 * 1024, { dropAt: 1024 * 1024, statusAfterFirstGet: 404 });
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('dl/Pq7Rk2SECRETfailSIG9z1x/fails.bin')])).code, 0);
    assert.notEqual((await run('cat', [fx.agent.path('fails.bin')], { timeoutMs: 30_000 })).code, 0);
    await waitForFile(fx.agent, 'fails.bin', f => f.state === 'error');

    // What fsctl shows: the table, details, JSON, errors.
    const shown = [add, missing, inPath];
    for (const args of [['ls'], ['ls', '--json'], ['info', 'fails.bin'], ['info', 'in-path.bin'], ['info', 'private.bin', '--json']]) {
      const r = await fsctl(fx.agent, args);
      assert.equal(r.code, 0, r.stderr);
      shown.push(r);
    }
    for (const r of shown) assert.doesNotMatch(r.stdout.toString() + r.stderr, /SECRET/);
    assert.match(shown.at(-2)!.text, /url +http:\/\/127\.0\.0\.1:\d+\/dl\/\[redacted\]\/in-path\.bin/);
    assert.equal(await fx.agent.stop(), 0); // flushes the logs

    const logDir = path.join(fx.agent.dirs.stateDir, 'logs');
    const files = (await fs.readdir(logDir)).filter(f => f.endsWith('.log') && f !== 'current.log');
    assert.ok(files.length >= 1);
    let all = fx.agent.stderr;
    for (const f of files) {
      const p = path.join(logDir, f);
      assert.equal((await fs.stat(p)).mode & 0o777, 0o600);
      all += await fs.readFile(p, 'utf8');
    }
    assert.match(all, /"msg":"file added"/);
    assert.match(all, /"msg":"download failed"/);
    assert.match(all, /private\.bin\?\[redacted\]/);
    assert.match(all, /dl\/\[redacted\]\/fails\.bin/);
    assert.doesNotMatch(all, /SECRET/);
  });

  it('fsctl logs prints the log file, raw when not on a terminal', async () => {
    const restarted = await AgentProcess.start({ dirs: fx.agent.dirs });
    fx.agent = restarted;
    const r = await fsctl(fx.agent, ['logs', '-n', '5']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.text.trim().split('\n');
    assert.ok(lines.length >= 1 && lines.length <= 5);
    assert.ok(lines.every(l => JSON.parse(l).level !== undefined));
    assert.match(r.text, /"msg":"ready"/);
  });
});
