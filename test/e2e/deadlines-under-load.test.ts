import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { spawn } from 'node:child_process';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;
const KiB = 1024;
const READ_TIMEOUT_S = 3;
const FILES = 16;
const READS_PER_FILE = 25;

/** Runs a command with `input` on its stdin; resolves with its stdout. */
function runWithInput (cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => { out += s; });
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end(input);
  });
}

// A read's deadline holds from the reader's side whatever the load: 400 programs reading 16
// stalled files at once, on a 2-core machine, while another program reads a healthy file.
describe('deadlines under load', () => {
  // Fewer connections than stalled files: the healthy file must take one from a stalled file.
  const fx = useOriginAndAgent({ args: ['--read-timeout', String(READ_TIMEOUT_S), '--max-connections', '8'] });

  it('400 reads of 16 stalled files fail by read-timeout + 1 s; a healthy file read meanwhile is whole', { timeout: 120_000 }, async t => {
    const names = Array.from({ length: FILES }, (_, i) => `stalled-${i}.bin`);
    for (const name of names) {
      fx.origin.add(name, 128 * KiB, { stallAt: 0 });
      await fx.agent.add(fx.origin.url(name));
    }
    const healthy = fx.origin.add('healthy.bin', 64 * MiB, { throttle: 64 * MiB });
    await fx.agent.add(fx.origin.url('healthy.bin'));

    // xargs starts the 400 readers within a fraction of a second (forking them from this process
    // takes longer than the read timeout); each prints when it started and ended, and how.
    const script = 'echo "S $(date +%s%N)"; dd if="$0" of=/dev/null bs=128K count=1 status=none 2>/dev/null; ' +
      'echo "E $? $(date +%s%N)"';
    const list = Array.from({ length: READS_PER_FILE }, () => names.map(n => fx.agent.path(n))).flat().join('\n') + '\n';
    const readers = runWithInput('xargs', ['-d', '\n', '-P', String(FILES * READS_PER_FILE), '-n', '1', 'sh', '-c', script], list);
    // A program that opens the healthy file with the others and reads it 1.5 s later: its file has
    // had no byte, and no connection, for longer than a stalled file's yield when it asks for one.
    const healthyHash = runWithInput('sh', ['-c', 'exec 3<"$0" && sleep 1.5 && sha256sum <&3', fx.agent.path('healthy.bin')], '')
      .then(out => out.split(' ')[0]);
    const out = await readers;
    const starts = [...out.matchAll(/^S (\d+)$/gm)].map(m => Number(BigInt(m[1]) / 1_000_000n));
    const ends = [...out.matchAll(/^E (\d+) (\d+)$/gm)].map(m => ({ code: Number(m[1]), at: Number(BigInt(m[2]) / 1_000_000n) }));
    assert.equal(ends.length, FILES * READS_PER_FILE, 'every reader ended');
    const spread = (Math.max(...starts) - Math.min(...starts)) / 1000;
    const late = (Math.max(...ends.map(e => e.at)) - Math.max(...starts)) / 1000;
    t.diagnostic(`${ends.length} readers started within ${spread.toFixed(1)} s; the last stalled read ended ${late.toFixed(1)} s ` +
      `after the last reader started (read-timeout ${READ_TIMEOUT_S} s)`);
    assert.ok(ends.every(e => e.code !== 0), 'every read of a stalled file failed');
    assert.equal(await healthyHash, sha256(healthy), 'the healthy file read whole while the stalled files held their reads');
    assert.ok(late <= READ_TIMEOUT_S + 1, `the last stalled read ended ${late.toFixed(1)} s after the last reader started`);
  });
});
