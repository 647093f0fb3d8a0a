import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaiterSummary } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, run, type RunResult } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';

const MiB = 1024 * 1024;
const READERS = 20;
const ROUNDS = 10;

describe('fsctl waiters names every reader of a stalled file', () => {
  const fx = useOriginAndAgent({ args: ['--read-timeout', '60'] }, async ({ origin, agent }) => {
    for (let round = 0; round < ROUNDS; round++) {
      origin.add(`round-${round}.bin`, 80 * MiB, { stallAt: 1 * MiB });
      await agent.add(origin.url(`round-${round}.bin`));
    }
  });

  it(`lists the pid and command of all ${READERS} processes that open a stalled file at once, in each of ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = `round-${round}.bin`;
      // Each file is opened here for the first time since the mount: the opens that used to
      // drop the page cache and block in the kernel, out of the agent's sight.
      const pids: number[] = [];
      const readers: Array<Promise<RunResult>> = Array.from({ length: READERS }, (_, i) => run(
        'dd',
        [`if=${fx.agent.path(name)}`, 'bs=4096', `skip=${(2 + i * 3) * MiB / 4096}`, 'count=1', 'status=none'],
        { timeoutMs: 60_000, onSpawn: pid => pids.push(pid) }
      ));
      const listed = (ws: WaiterSummary[]): boolean => pids.length === READERS && pids.every(p => ws.some(w => w.pid === p));
      const seen = await waitForWaiters(fx.agent, listed, 15_000).catch(async () => fx.agent.rpc<WaiterSummary[]>('waiters.list'));
      const missing = pids.filter(p => !seen.some(w => w.pid === p));
      const listedPids = seen.map(w => w.pid).join(', ');
      assert.deepEqual(missing, [], `round ${round}: readers missing from the agent's waiters (it lists pids ${listedPids})`);

      const json = JSON.parse((await fsctl(fx.agent, ['--json', 'waiters'])).text) as WaiterSummary[];
      for (const pid of pids) {
        const mine = json.filter(w => w.pid === pid);
        assert.ok(mine.length > 0, `round ${round}: pid ${pid} in fsctl waiters --json`);
        for (const w of mine) {
          assert.equal(w.file, name);
          assert.equal(w.command, 'dd');
        }
      }
      if (round === 0) {
        const human = (await fsctl(fx.agent, ['waiters'])).text;
        for (const pid of pids) assert.match(human, new RegExp(`│\\s*${pid} dd\\s*│`), `fsctl waiters shows "${pid} dd"`);
      }

      assert.equal((await fsctl(fx.agent, ['cancel', name])).code, 0);
      for (const r of await Promise.all(readers)) assert.match(r.stderr, /Input\/output error/);
    }
  });
});
