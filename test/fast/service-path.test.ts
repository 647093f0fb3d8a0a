import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stablePath } from '../../ctl/service';

describe('the PATH a service file gets', () => {
  it('keeps the user\'s folders and drops what npx and npm scripts put in front', () => {
    const underNpx = [
      '/home/me/src/fusestream/node_modules/.bin',
      '/home/me/.npm/_npx/4a1b2c/node_modules/.bin',
      '/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin',
      'relative/bin',
      '/home/me/.local/bin',
      '/usr/local/bin',
      '/usr/bin',
      '/usr/local/bin',
      '/usr/sbin',
    ].join(':');
    assert.equal(stablePath(underNpx), '/home/me/.local/bin:/usr/local/bin:/usr/bin:/usr/sbin');
  });

  it('falls back to the system folders when nothing stable is left', () => {
    assert.equal(stablePath(undefined), '/usr/local/bin:/usr/bin:/bin');
    assert.equal(stablePath('node_modules/.bin'), '/usr/local/bin:/usr/bin:/bin');
  });
});
