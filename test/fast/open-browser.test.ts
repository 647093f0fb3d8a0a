import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { browserOpener } from '../../ctl/open-browser';

describe('fsctl ui opens the browser with the platform\'s own opener', () => {
  it('open on macOS, xdg-open on Linux and the other Unixes', () => {
    assert.equal(browserOpener('darwin'), 'open');
    assert.equal(browserOpener('linux'), 'xdg-open');
    assert.equal(browserOpener('freebsd'), 'xdg-open');
  });
});
