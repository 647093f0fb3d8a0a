import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../agent/config';

describe('configuration paths', () => {
  it('reads a relative --mount from where the command was typed, also under npm start (INIT_CWD)', () => {
    const env = { HOME: '/home/me', INIT_CWD: '/home/me/videos' };
    assert.equal(resolveConfig({ mount: 'Stream' }, env, null, false).config.mount, '/home/me/videos/Stream');
    const here = resolveConfig({ mount: 'Stream' }, { HOME: '/home/me' }, null, false).config.mount;
    assert.equal(here, `${process.cwd()}/Stream`);
  });
});
