import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refusalError, urlExpiresAt } from '../../agent/origin/url-expiry';

describe('when a signed URL expires, read from the URL', () => {
  it('S3 and GCS V4: signing time plus the seconds it is valid', () => {
    const s3 = 'https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261127T140000Z&X-Amz-Expires=3600&X-Amz-Signature=ab';
    assert.equal(urlExpiresAt(s3), Date.UTC(2026, 10, 27, 15, 0, 0));
    const gcs = 'https://storage.googleapis.com/b/v.mp4?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261127T140000Z&X-Goog-Expires=900&X-Goog-Signature=cd';
    assert.equal(urlExpiresAt(gcs), Date.UTC(2026, 10, 27, 14, 15, 0));
  });

  it('CloudFront, S3 V2 and GCS V2: Expires in epoch seconds', () => {
    assert.equal(urlExpiresAt('https://d1.cloudfront.net/v.mp4?Expires=1795788000&Signature=x&Key-Pair-Id=K'), 1795788000 * 1000);
  });

  it('Azure SAS: se with a signature', () => {
    assert.equal(urlExpiresAt('https://a.blob.core.windows.net/c/v.mp4?sv=2022-11-02&se=2026-11-27T15%3A30%3A00Z&sr=b&sp=r&sig=x'),
      Date.UTC(2026, 10, 27, 15, 30, 0));
    assert.equal(urlExpiresAt('https://example.com/v.mp4?se=2026-11-27T15:30:00Z'), null, 'se alone is not a SAS');
  });

  it('nothing when the URL says nothing, or nothing that parses', () => {
    for (const url of ['https://example.com/v.mp4', 'https://example.com/v.mp4?Expires=soon', 'https://x/y?X-Amz-Date=yesterday&X-Amz-Expires=60', 'not a url']) {
      assert.equal(urlExpiresAt(url), null, url);
    }
  });

  it('an origin refusing an expired URL says when it expired and how to go on; otherwise the status, with no query string', () => {
    const url = 'https://d1.cloudfront.net/v.mp4?Expires=1795788000&Signature=secret';
    const expired = refusalError(403, url, {}, 1795788000 * 1000 + 1);
    assert.equal(expired.errno, 'EACCES');
    assert.equal(expired.message, 'the URL expired at 2026-11-27T14:00:00.000Z; give a new one with fsctl set-url');
    const early = refusalError(403, url, {}, 1795788000 * 1000 - 1);
    assert.equal(early.message, 'origin answered HTTP 403 for https://d1.cloudfront.net/v.mp4?[redacted]');
    assert.doesNotMatch(refusalError(404, url, {}, Date.now()).message, /secret/);
  });

  it('an origin refusing an expired JWT bearer token says when it expired, and never quotes the token', () => {
    const claims = Buffer.from(JSON.stringify({ exp: 1795788000 })).toString('base64url');
    const headers = { authorization: `Bearer eyJhbGciOiJIUzI1NiJ9.${claims}.secretsig` };
    const expired = refusalError(401, 'https://api.example/v.mp4', headers, 1795788000 * 1000 + 1);
    assert.equal(expired.errno, 'EACCES');
    assert.match(expired.message, /^the bearer token expired at 2026-11-27T14:00:00\.000Z; give a fresh one with fsctl set-url -H, or a --url-command/);
    assert.doesNotMatch(expired.message, /secretsig|eyJ/);
    assert.equal(refusalError(401, 'https://api.example/v.mp4', headers, 1795788000 * 1000 - 1).errno, 'EIO');
  });
});
