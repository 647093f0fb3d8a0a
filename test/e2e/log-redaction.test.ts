import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { AgentProcess, fsctl, hashFile } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

describe('logs', () => {
  const fx = useOriginAndAgent({ args: ['--log-level', 'debug'] });

  it('keep secrets out: no Authorization or Cookie header, no signed query string', async () => {
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
    assert.doesNotMatch(missing.stderr, /SECRET/);
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
    assert.match(all, /private\.bin\?\[redacted\]/);
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
