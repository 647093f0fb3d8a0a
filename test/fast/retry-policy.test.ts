import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors } from 'undici';
import { backoffMs, isRetryableError, isRetryableStatus, parseRetryAfter } from '../../agent/origin/retry-policy';

describe('the retry policy', () => {
  it('retries 5xx, 408 and 429, and takes every other status as final', () => {
    for (const s of [500, 502, 503, 504, 408, 429]) assert.equal(isRetryableStatus(s), true, String(s));
    for (const s of [400, 401, 403, 404, 410, 416]) assert.equal(isRetryableStatus(s), false, String(s));
  });

  it('retries network failures but not a request we aborted ourselves', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(isRetryableError(refused), true);
    assert.equal(isRetryableError(new errors.SocketError('other side closed')), true);
    assert.equal(isRetryableError(new errors.BodyTimeoutError()), true);
    assert.equal(isRetryableError(new errors.RequestAbortedError()), false);
    assert.equal(isRetryableError(new Error('a bug')), false);
    assert.equal(isRetryableError(Object.assign(new Error('denied'), { code: 'EACCES' })), false);
  });

  it('backs off exponentially from 250 ms, with jitter, up to 10 s', () => {
    for (let i = 0; i < 50; i++) {
      const first = backoffMs(1);
      assert.ok(first >= 187 && first <= 313, `first pause ${first}`);
      const third = backoffMs(3);
      assert.ok(third >= 750 && third <= 1250, `third pause ${third}`);
      assert.ok(backoffMs(20) <= 12_500, 'capped');
    }
  });

  it('honours Retry-After in seconds or as a date, cut to 60 s', () => {
    assert.equal(backoffMs(1, '3'), 3000);
    assert.equal(backoffMs(1, '3600'), 60_000);
    const at = new Date(Date.now() + 5000).toUTCString();
    const ms = parseRetryAfter(at)!;
    assert.ok(ms > 3000 && ms <= 5000, `date form ${ms}`);
    assert.equal(parseRetryAfter('soon'), null);
    assert.equal(parseRetryAfter(''), null);
  });
});
