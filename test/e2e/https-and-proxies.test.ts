import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { AgentProcess, fsctl, hashFile, makeDirs, openOnce, readRange, run } from '../helpers/agent';
import { useCleanups } from '../helpers/fixtures';
import { PROXY_MISSING, STUNNEL_MISSING, TinyProxy, TlsFront } from '../helpers/proxy';
import { waitForFile } from '../helpers/wait';
import { makeTlsMaterial, type TlsMaterial } from '../../tools/tls-material';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;
const READ_TIMEOUT_S = 3;

/** Every way a user sees what the agent says: its output, its log files, fsctl status and config. */
async function everythingShown (agent: AgentProcess): Promise<string> {
  let all = agent.stderr;
  const logs = path.join(agent.dirs.stateDir, 'logs');
  for (const f of await fs.readdir(logs)) all += await fs.readFile(path.join(logs, f), 'utf8').catch(() => '');
  for (const args of [['status'], ['config'], ['--json', 'status'], ['--json', 'config']]) all += (await fsctl(agent, args)).text;
  return all;
}

/** A few ranges, the first and last bytes included, and the whole file: each compared with the origin's bytes. */
async function assertByteExact (file: string, content: Buffer): Promise<void> {
  for (const [at, length] of [[0, 4096], [content.length - 5000, 5000], [Math.floor(content.length / 3) + 7, 300_000]]) {
    const r = await readRange(file, at, length, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(content.subarray(at, at + length)), `bytes ${at}+${length} differ from the origin's`);
  }
  assert.equal(await hashFile(file, { timeoutMs: 120_000 }), sha256(content));
}

/** A CA and certificates of the test's own, and an HTTPS origin serving with the good one. */
async function httpsOrigin (cleanup: (fn: () => Promise<void>) => void): Promise<{ tls: TlsMaterial; origin: TestOrigin }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-tls-'));
  cleanup(() => fs.rm(dir, { recursive: true, force: true }));
  const tls = await makeTlsMaterial(dir);
  const origin = await TestOrigin.start({ tls: tls.server });
  cleanup(() => origin.close());
  return { tls, origin };
}

describe('HTTPS origins, trusted through --ca-file', () => {
  const cleanup = useCleanups();
  let tls: TlsMaterial;
  let origin: TestOrigin;
  before(async () => {
    ({ tls, origin } = await httpsOrigin(cleanup));
  });

  async function agentTrusting (args: string[] = [], dirs?: Awaited<ReturnType<typeof makeDirs>>): Promise<AgentProcess> {
    const agent = await AgentProcess.start({ dirs, args: ['--ca-file', tls.caFile, '--read-timeout', String(READ_TIMEOUT_S), ...args] });
    cleanup(() => agent.cleanup());
    return agent;
  }

  it('serves ranges and whole files byte-exact, through a connection dropped mid-body', async () => {
    const agent = await agentTrusting();
    const content = origin.add('tls.bin', 24 * MiB, { dropAt: 9 * MiB });
    assert.match(origin.url('tls.bin'), /^https:/);
    await agent.add(origin.url('tls.bin'));
    await assertByteExact(agent.path('tls.bin'), content);
  });

  it('fails a read past a stall with EIO within the read timeout, keeping the bytes below it', async () => {
    const agent = await agentTrusting();
    const content = origin.add('tls-stall.bin', 16 * MiB, { stallAt: 4 * MiB });
    await agent.add(origin.url('tls-stall.bin'));
    const below = await readRange(agent.path('tls-stall.bin'), MiB, MiB, { timeoutMs: 20_000 });
    assert.ok(below.stdout.equals(content.subarray(MiB, 2 * MiB)), below.stderr);
    const began = performance.now();
    const past = await readRange(agent.path('tls-stall.bin'), 8 * MiB, 4096, { timeoutMs: 60_000 });
    assert.match(past.stderr, /Input\/output error/);
    assert.ok(performance.now() - began < (READ_TIMEOUT_S + 3) * 1000, 'EIO within the read timeout');
  });

  it('resumes after kill -9, fetching only what was missing', async () => {
    const dirs = await makeDirs();
    const content = origin.add('tls-resume.bin', 64 * MiB, { throttle: 8 * MiB });
    const first = await agentTrusting([], dirs);
    await first.add(origin.url('tls-resume.bin'));
    await openOnce(first.path('tls-resume.bin'));
    await waitForFile(first, 'tls-resume.bin', f => f.presentBytes >= 16 * MiB);
    await first.stop('SIGKILL');
    origin.setFaults('tls-resume.bin', {});
    const second = await agentTrusting([], dirs);
    assert.equal(await hashFile(second.path('tls-resume.bin'), { timeoutMs: 60_000 }), sha256(content));
    const ratio = origin.bytesSent('tls-resume.bin') / content.length;
    assert.ok(ratio <= 1.05, `the origin sent ${ratio.toFixed(3)} x the file`);
  });

  it('takes links from a url-command over HTTPS, and checks a stated digest', async () => {
    const agent = await agentTrusting();
    const content = origin.add('tls-signed.bin', 8 * MiB, { access: 'signed', statesDigest: 'repr-digest' });
    const mint = `curl -sf --cacert '${tls.caFile}' 'https://127.0.0.1:${origin.port}/_mint/url?file=tls-signed.bin&validMs=60000'`;
    const add = await fsctl(agent, ['add', origin.url('tls-signed.bin'), '--url-command', mint]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await hashFile(agent.path('tls-signed.bin')), sha256(content));
    await waitForFile(agent, 'tls-signed.bin', f => f.verification?.state === 'verified', 30_000);
  });

  it('adds a folder from an HTTPS index page', async () => {
    const agent = await agentTrusting();
    const a = origin.add('tls-folder/a.bin', 100_000);
    origin.add('tls-folder/sub/b.bin', 2000);
    const add = await fsctl(agent, ['add', origin.url('tls-folder') + '/', '--recursive']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.text, /^tls-folder\/: 2 added, 0 unchanged/m);
    assert.equal(await hashFile(agent.path('tls-folder/a.bin')), sha256(a));
  });

  it('without the CA, an expired certificate or one for another name: one line naming the URL and the reason', async () => {
    const untrusting = await AgentProcess.start({});
    cleanup(() => untrusting.cleanup());
    origin.add('tls-refused.bin', 1000);
    const unknown = await fsctl(untrusting, ['add', origin.url('tls-refused.bin')]);
    assert.notEqual(unknown.code, 0);
    assert.equal(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
    assert.match(unknown.stderr, new RegExp(`https://127\\.0\\.0\\.1:${origin.port}/tls-refused\\.bin: certificate signed by an unknown ` +
      'authority \\([A-Z_]+\\); give its CA with --ca-file'));

    for (const [identity, reason] of [[tls.expired, /certificate has expired \(CERT_HAS_EXPIRED\)/], [tls.otherHost, /certificate is for another host name/]] as const) {
      const odd = await TestOrigin.start({ tls: identity });
      cleanup(() => odd.close());
      odd.add('odd.bin', 1000);
      const agent = await agentTrusting();
      const r = await fsctl(agent, ['add', odd.url('odd.bin')]);
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot connect securely to https://127\\.0\\.0\\.1:${odd.port}/odd\\.bin: `));
      assert.match(r.stderr, reason);
    }
  });

  it('refuses to start on a --ca-file that holds no certificate, in one line', async () => {
    const notPem = path.join(os.tmpdir(), `fst-not-a-ca-${process.pid}.pem`);
    await fs.writeFile(notPem, 'hello\n');
    cleanup(() => fs.rm(notPem, { force: true }));
    const dirs = await makeDirs();
    cleanup(() => fs.rm(dirs.dir, { recursive: true, force: true }));
    const r = await run(process.execPath, [
      path.join(__dirname, '..', '..', 'agent', 'main.js'), '--mount', dirs.mount, '--cache-dir', dirs.cacheDir,
      '--state-dir', dirs.stateDir, '--socket', dirs.socket, '--ca-file', notPem,
    ], { timeoutMs: 20_000 });
    assert.equal(r.code, 78, r.stderr);
    const line = `fusestream-agent: invalid configuration: ca-file ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n`;
    assert.equal(r.stderr, line);
  });
});

// CI installs tinyproxy and stunnel (.ci/run): there, a missing one is a failure, never a silent skip.
if (PROXY_MISSING !== null && process.env.CI !== undefined) throw new Error(PROXY_MISSING);
if (STUNNEL_MISSING !== null && process.env.CI !== undefined) throw new Error(STUNNEL_MISSING);

describe('proxies, from the environment or --proxy, tested through tinyproxy', { skip: PROXY_MISSING ?? false }, () => {
  const cleanup = useCleanups();
  const password = `pw-${process.pid}-secret`;
  let tls: TlsMaterial;
  let origin: TestOrigin;
  let proxy: TinyProxy;
  before(async () => {
    ({ tls, origin } = await httpsOrigin(cleanup));
    proxy = await TinyProxy.start({ auth: { user: 'fst', password } });
    cleanup(() => proxy.close());
  });

  type Dirs = Awaited<ReturnType<typeof makeDirs>>;
  async function agentWith (env: NodeJS.ProcessEnv, args: string[] = [], dirs?: Dirs): Promise<AgentProcess> {
    const trust = ['--ca-file', tls.caFile, '--read-timeout', String(READ_TIMEOUT_S)];
    const agent = await AgentProcess.start({ dirs, env, args: [...trust, ...args] });
    cleanup(() => agent.cleanup());
    return agent;
  }

  it('HTTPS_PROXY with credentials: ranged reads through its tunnel, a stall fails with EIO, and the password is never shown', async () => {
    const agent = await agentWith({ HTTPS_PROXY: proxy.url() });
    const content = origin.add('via-proxy.bin', 16 * MiB, { dropAt: 5 * MiB });
    await agent.add(origin.url('via-proxy.bin'));
    await assertByteExact(agent.path('via-proxy.bin'), content);
    assert.ok(proxy.tunnels().includes(`127.0.0.1:${origin.port}`), 'the connections went through the proxy');

    origin.add('via-proxy-stall.bin', 8 * MiB, { stallAt: 2 * MiB });
    await agent.add(origin.url('via-proxy-stall.bin'));
    const past = await readRange(agent.path('via-proxy-stall.bin'), 6 * MiB, 4096, { timeoutMs: 60_000 });
    assert.match(past.stderr, /Input\/output error/);

    const shown = await everythingShown(agent);
    assert.match(shown, new RegExp(`proxy http://fst:\\*\\*\\*@127\\.0\\.0\\.1:${proxy.port}/ for https://, direct for http:// \\(from the environment\\)`));
    assert.ok(!shown.includes(password), 'the proxy password appears in what the agent shows');
  });

  it('resumes through the proxy after kill -9, fetching only what was missing', async () => {
    const dirs = await makeDirs();
    const content = origin.add('via-proxy-resume.bin', 48 * MiB, { throttle: 8 * MiB });
    const first = await agentWith({ https_proxy: proxy.url() }, [], dirs);
    await first.add(origin.url('via-proxy-resume.bin'));
    await openOnce(first.path('via-proxy-resume.bin'));
    await waitForFile(first, 'via-proxy-resume.bin', f => f.presentBytes >= 12 * MiB);
    await first.stop('SIGKILL');
    origin.setFaults('via-proxy-resume.bin', {});
    const tunnelsBefore = proxy.tunnels().length;
    const second = await agentWith({ https_proxy: proxy.url() }, [], dirs);
    assert.equal(await hashFile(second.path('via-proxy-resume.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(proxy.tunnels().length > tunnelsBefore, 'the resumed download went through the proxy');
    assert.ok(origin.bytesSent('via-proxy-resume.bin') / content.length <= 1.05);
  });

  it('--proxy overrides the environment; NO_PROXY sends a host direct; a plain-HTTP origin goes through HTTP_PROXY', async () => {
    const dead = 'http://127.0.0.1:9'; // nothing listens on port 9 (discard)
    const content = origin.add('override.bin', 2 * MiB);
    const overriding = await agentWith({ HTTPS_PROXY: dead }, ['--proxy', proxy.url()]);
    await overriding.add(origin.url('override.bin'));
    assert.equal(await hashFile(overriding.path('override.bin')), sha256(content));

    const direct = await agentWith({ HTTPS_PROXY: dead, NO_PROXY: 'localhost,127.0.0.1' });
    await direct.add(origin.url('override.bin'));
    assert.equal(await hashFile(direct.path('override.bin')), sha256(content));

    const plain = await TestOrigin.start();
    cleanup(() => plain.close());
    const plainContent = plain.add('plain.bin', 3 * MiB);
    const viaHttpProxy = await agentWith({ HTTP_PROXY: proxy.url(), HTTPS_PROXY: dead });
    await viaHttpProxy.add(plain.url('plain.bin'));
    assert.equal(await hashFile(viaHttpProxy.path('plain.bin')), sha256(plainContent));
    assert.ok(proxy.tunnels().includes(`127.0.0.1:${plain.port}`), 'the plain origin was reached through the proxy');
  });

  it('an https:// proxy (tinyproxy behind stunnel), trusted through the same --ca-file: reads through its tunnel', { skip: STUNNEL_MISSING ?? false }, async () => {
    const front = await TlsFront.start(proxy.port, tls.server);
    cleanup(() => front.close());
    const content = origin.add('via-tls-proxy.bin', 8 * MiB);
    const agent = await agentWith({ HTTPS_PROXY: `https://fst:${encodeURIComponent(password)}@127.0.0.1:${front.port}` });
    const tunnelsBefore = proxy.tunnels().length;
    await agent.add(origin.url('via-tls-proxy.bin'));
    await assertByteExact(agent.path('via-tls-proxy.bin'), content);
    assert.ok(proxy.tunnels().length > tunnelsBefore, 'the connections went through the proxy behind TLS');
  });

  it('a proxy that refuses (no credentials, or not this client): one clear line', async () => {
    origin.add('refused.bin', 1000);
    const noCredentials = await agentWith({ HTTPS_PROXY: proxy.url(true) });
    const r = await fsctl(noCredentials, ['add', origin.url('refused.bin')]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /the proxy refused the connection with HTTP 407: it wants credentials/);

    const closed = await TinyProxy.start({ refuse: true });
    cleanup(() => closed.close());
    const refused = await agentWith({ HTTPS_PROXY: closed.url() });
    const r2 = await fsctl(refused, ['add', origin.url('refused.bin')]);
    assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
    assert.match(r2.stderr, /the proxy refused the connection with HTTP 403/);
  });
});
