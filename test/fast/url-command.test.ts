import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { joinCommandWords, splitCommandWords } from '../../ctl/command-words';
import type { FsError } from '../../agent/errors';
import { CommandSource, parseCommandOutput } from '../../agent/origin/url-command';
import { bearerExpiresAt, credentialsExpireAt } from '../../agent/origin/url-expiry';

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const jwt = (claims: object): string =>
  `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

describe('what a url-command prints', () => {
  it('a URL on the first line; its expiry read from its signature', () => {
    const ep = parseCommandOutput('https://d1.cloudfront.net/v.mp4?Expires=1795788000&Signature=x\n', NOW);
    assert.equal(ep.url, 'https://d1.cloudfront.net/v.mp4?Expires=1795788000&Signature=x');
    assert.deepEqual(ep.headers, {});
    assert.equal(ep.expiresAt, 1795788000 * 1000);
  });

  it('JSON with headers; the expiry is the earliest of expiresIn, expiresAt and a JWT bearer\'s exp', () => {
    const token = jwt({ exp: NOW / 1000 + 300 });
    const out = JSON.stringify({ url: 'https://api.example/v.mp4', headers: { Authorization: `Bearer ${token}` }, expiresIn: 600 });
    const ep = parseCommandOutput(out, NOW);
    assert.deepEqual(ep.headers, { authorization: `Bearer ${token}` }, 'header names are lower-cased');
    assert.equal(ep.expiresAt, NOW + 300_000);
    assert.equal(parseCommandOutput(JSON.stringify({ url: 'https://a/b', expiresIn: 60 }), NOW).expiresAt, NOW + 60_000);
    assert.equal(parseCommandOutput(JSON.stringify({ url: 'https://a/b', expiresAt: '2026-11-27T12:30:00Z' }), NOW).expiresAt, NOW + 1_800_000);
    assert.equal(parseCommandOutput(JSON.stringify({ url: 'https://a/b', expiresAt: NOW / 1000 + 5 }), NOW).expiresAt, NOW + 5000);
    assert.equal(parseCommandOutput('{"url":"https://a/b"}', NOW).expiresAt, null);
  });

  it('refuses what is not a usable endpoint, without quoting the output (it may hold a credential)', () => {
    const secret = 'sk_live_SECRET';
    const cases: Array<[string, RegExp]> = [
      ['', /printed no URL/],
      [`{"token": "${secret}"}`, /printed no URL/],
      [`{"url": "${secret}`, /printed JSON that does not parse/],
      [`${secret}`, /printed something that is not a URL/],
      [`ftp://host/${secret}`, /printed a ftp: URL/],
      [JSON.stringify({ url: 'https://a/b', headers: { 'bad name': secret } }), /header name that is not valid/],
      [JSON.stringify({ url: 'https://a/b', headers: { authorization: `Bearer ${secret}\r\nX-Evil: 1` } }), /header authorization that is not a one-line string/],
      [JSON.stringify({ url: 'https://a/b', headers: [secret] }), /"headers" that is not an object/],
    ];
    for (const [out, expected] of cases) {
      assert.throws(() => parseCommandOutput(out, NOW), (err: Error) => {
        assert.match(err.message, expected);
        assert.ok(!err.message.includes(secret), `the error quotes the output: ${err.message}`);
        return true;
      });
    }
  });

  it('a bearer token that is a JWT says when it expires; other tokens do not', () => {
    assert.equal(bearerExpiresAt({ Authorization: `Bearer ${jwt({ exp: 1795788000 })}` }), 1795788000 * 1000);
    assert.equal(bearerExpiresAt({ authorization: 'Bearer opaque-token' }), null);
    assert.equal(bearerExpiresAt({ authorization: `Bearer ${jwt({ sub: 'x' })}` }), null);
    assert.equal(bearerExpiresAt({}), null);
    assert.equal(credentialsExpireAt('https://a/b?Expires=1795788000&Signature=x', { authorization: `Bearer ${jwt({ exp: 1795787000 })}` }), 1795787000 * 1000);
  });
});

describe('a url-command as a file\'s source', () => {
  let dir = '';
  before(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-urlcmd-')); });
  after(async () => { await fs.rm(dir, { recursive: true, force: true }); });

  /** A command that logs each run (and its environment) to `runs`, then prints `out` (a JS expression). */
  const command = (runs: string, out: string, extra = ''): string[] => [process.execPath, '-e', `
    const seen = { file: process.env.FUSESTREAM_FILE, url: process.env.FUSESTREAM_URL };
    require('fs').appendFileSync(${JSON.stringify(runs)}, JSON.stringify(seen) + '\\n');
    ${extra}
    process.stdout.write(${out});`];
  const runsOf = async (runs: string): Promise<Array<{ file: string; url: string }>> =>
    (await fs.readFile(runs, 'utf8').catch(() => '')).split('\n').filter(l => l !== '')
      .map(l => JSON.parse(l) as { file: string; url: string });

  it('runs once for many connections at once, with the file in its environment, and adds the file\'s own headers', async () => {
    const runs = path.join(dir, 'once');
    const src = new CommandSource(command(runs, '"https://a.example/v.mp4?n=1"'), { name: 'v.mp4', url: 'https://added/v.mp4', headers: { 'x-api-key': 'k' } });
    const eps = await Promise.all(Array.from({ length: 10 }, () => src.endpoint()));
    assert.ok(eps.every(e => e === eps[0]));
    assert.deepEqual(eps[0].headers, { 'x-api-key': 'k' });
    assert.deepEqual(await runsOf(runs), [{ file: 'v.mp4', url: 'https://added/v.mp4' }]);
    assert.equal(src.describe().refreshes, 1);
  });

  it('mints a fresh endpoint shortly before the one in hand expires, and keeps one with no known expiry', async () => {
    let now = NOW;
    const runs = path.join(dir, 'refresh');
    // Valid 100 s from the command's own clock: what matters is the source's clock below.
    const src = new CommandSource(command(runs, 'JSON.stringify({ url: \'https://a/b?run=\' + Date.now(), expiresIn: 100 })'), { name: 'f', url: '', headers: {} }, { now: () => now });
    const first = await src.endpoint();
    assert.equal(first.expiresAt, NOW + 100_000);
    now = NOW + 50_000;
    assert.equal(await src.endpoint(), first, 'half way: the same one');
    now = NOW + 81_000; // inside the last fifth of its life
    const second = await src.endpoint();
    assert.notEqual(second, first);
    assert.equal((await runsOf(runs)).length, 2);

    const noExpiry = new CommandSource(command(path.join(dir, 'forever'), '"https://a/b"'), { name: 'f', url: '', headers: {} }, { now: () => now });
    const kept = await noExpiry.endpoint();
    now += 10 * 86_400_000;
    assert.equal(await noExpiry.endpoint(), kept);
  });

  it('a refusal makes the next request mint again; a fresh endpoint refused at once is a final refusal', async () => {
    const runs = path.join(dir, 'refused');
    const src = new CommandSource(command(runs, '"https://a/b"'), { name: 'f', url: '', headers: {} });
    const first = await src.endpoint();
    assert.equal(src.refused(first), true);
    const second = await src.endpoint();
    assert.notEqual(second, first);
    assert.equal(src.refused(first), true, 'an endpoint already replaced: retry with the new one');
    assert.equal(src.refused(second), false, 'minted after a refusal and refused too: the origin means it');
    assert.equal((await runsOf(runs)).length, 2);
    // fsctl resume: the link refused for good is not used again; the command runs once more.
    assert.equal(await src.endpoint(), second, 'until resume, the same (refused) link');
    src.retryNow();
    const third = await src.endpoint();
    assert.notEqual(third, second);
    assert.equal((await runsOf(runs)).length, 3);
  });

  it('a short-lived opaque link that worked is minted again on each refusal; for good means refused on its first request', async () => {
    const runs = path.join(dir, 'short-lived');
    const src = new CommandSource(command(runs, '"https://a/b"'), { name: 'f', url: '', headers: {} });
    let link = await src.endpoint();
    for (let i = 0; i < 5; i++) {
      src.accepted(link); // bytes came through it
      assert.equal(src.refused(link), true, `refusal ${i + 1} of a link that had worked: mint again`);
      link = await src.endpoint();
    }
    assert.equal((await runsOf(runs)).length, 6);
    assert.equal(src.refused(link), false, 'refused before any byte came through it: for good');
  });

  it('a failing command: its exit status and first line of stderr, a pause before it runs again, then success', async () => {
    const runs = path.join(dir, 'fails');
    const broken = path.join(dir, 'broken');
    await fs.writeFile(broken, '');
    let now = NOW;
    const src = new CommandSource(
      command(runs, '"https://a/b"', `if (require('fs').existsSync(${JSON.stringify(broken)})) { process.stdout.write('sk_live_SECRET'); process.stderr.write('\\n  token service down\\nmore\\n'); process.exit(3); }`),
      { name: 'f', url: '', headers: {} },
      { now: () => now }
    );
    const failure = await src.endpoint().catch((err: FsError) => err);
    assert.equal((failure as FsError).errno, 'EIO');
    assert.match((failure as FsError).message, /^url-command node failed: exit status 3: token service down$/);
    assert.equal(src.describe().error, (failure as FsError).message);
    await assert.rejects(src.endpoint(), /token service down/);
    assert.equal((await runsOf(runs)).length, 1, 'within the pause the command is not run again');
    await fs.rm(broken);
    now += 1000;
    assert.equal((await src.endpoint()).url, 'https://a/b');
    assert.equal(src.describe().error, null);
  });

  it('a command that hangs is killed at its timeout; one that is not there says so', async () => {
    const sleeper = [process.execPath, '-e', 'setTimeout(() => {}, 60000)'];
    const hangs = new CommandSource(sleeper, { name: 'f', url: '', headers: {} }, { timeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(hangs.endpoint(), /url-command node failed: timed out after 300 ms/);
    assert.ok(Date.now() - started < 5000);
    const missing = new CommandSource(['/nonexistent/mint-url'], { name: 'f', url: '', headers: {} });
    await assert.rejects(missing.endpoint(), /url-command mint-url failed: the program was not found/);
  });
});

describe('fsctl --url-command: a command line split into words as a shell would, and nothing more', () => {
  it('splits on blanks, keeps quoted words whole, and joins back to a line that splits the same', () => {
    const cases: Array<[string, string[]]> = [
      ['mint-url --file a.mp4', ['mint-url', '--file', 'a.mp4']],
      ['curl -s \'https://api/x?a=1&b=2\' -H "Authorization: Bearer \\"t\\""', ['curl', '-s', 'https://api/x?a=1&b=2', '-H', 'Authorization: Bearer "t"']],
      ['a\\ b "" c$HOME', ['a b', '', 'c$HOME']],
      ['  spaced   out  ', ['spaced', 'out']],
    ];
    for (const [line, words] of cases) {
      assert.deepEqual(splitCommandWords(line), words, line);
      assert.deepEqual(splitCommandWords(joinCommandWords(words)), words, `round trip of ${line}`);
    }
    assert.throws(() => splitCommandWords('echo \'open'), /unclosed ' quote/);
    assert.throws(() => splitCommandWords('echo "open'), /unclosed " quote/);
  });
});
