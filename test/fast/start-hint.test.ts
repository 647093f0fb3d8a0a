import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentStartHint } from '../../ctl/start-hint';

describe('how fsctl says to start an agent', () => {
  it('names fusestream-agent where the package was installed', () => {
    const root = '/usr/lib/node_modules/fusestream';
    assert.equal(agentStartHint(root, '/run/user/1000/fusestream/agent.sock', true), 'fusestream-agent');
    assert.equal(agentStartHint(root, '/tmp/a.sock', false), 'fusestream-agent --socket /tmp/a.sock');
  });

  it('names npm start, in the clone, where it runs from a clone', () => {
    assert.equal(agentStartHint('/home/me/src/fusestream', '/tmp/a.sock', true), 'cd /home/me/src/fusestream && npm start');
    assert.equal(agentStartHint(process.cwd(), '/tmp/a.sock', false), 'npm start -- --socket /tmp/a.sock');
  });
});
