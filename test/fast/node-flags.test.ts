import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags';

const REPO = path.join(__dirname, '..', '..', '..');
const read = (file: string): Promise<string> => fs.readFile(path.join(REPO, file), 'utf8');

describe('every way of starting the agent passes node the same options (agent/node-flags.ts)', () => {
  it('the bin\'s shebang, npm start, the systemd unit and the launchd agent', async () => {
    const flags = AGENT_NODE_FLAGS.join(' ');
    assert.equal((await read('agent/main.ts')).split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
    const start = (JSON.parse(await read('package.json')) as { scripts: { start: string } }).scripts.start;
    assert.equal(start, `node ${flags} dist/agent/main.js`);
    const unit = await read('systemd/fusestream.service');
    assert.match(unit, new RegExp(`^ExecStart=\\{\\{NODE\\}\\} ${flags} \\{\\{AGENT\\}\\}$`, 'm'));
    const args = AGENT_NODE_FLAGS.map(f => `\\s*<string>${f}</string>`).join('');
    const plist = await read('launchd/com.fusestream.agent.plist');
    assert.match(plist, new RegExp(`<string>\\{\\{NODE\\}\\}</string>${args}\\s*<string>\\{\\{AGENT\\}\\}</string>`));
  });
});
