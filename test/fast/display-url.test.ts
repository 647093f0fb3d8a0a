import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { displayUrl } from '../../agent/origin/origin-info';

describe('how a URL is shown in logs, errors and fsctl', () => {
  it('keeps scheme, host and plain names', () => {
    assert.equal(displayUrl('https://example.com/videos/talk.mp4'), 'https://example.com/videos/talk.mp4');
    assert.equal(displayUrl('http://127.0.0.1:8080/season%201/ep-01.mkv'), 'http://127.0.0.1:8080/season%201/ep-01.mkv');
    assert.equal(displayUrl('https://example.com/a/b/'), 'https://example.com/a/b/');
  });

  it('leaves out user info, the query and the fragment', () => {
    assert.equal(
      displayUrl('https://user:hunter2@b.s3.amazonaws.com/k/talk.mp4?X-Amz-Signature=abc&X-Amz-Credential=AKID#t=3'),
      'https://b.s3.amazonaws.com/k/talk.mp4?[redacted]'
    );
  });

  it('redacts path segments that look like tokens: signed paths, share links, keys', () => {
    assert.equal(displayUrl('https://cdn.example.com/dl/Xk9Qm2abcPathSIG7d8e/in-path.bin'), 'https://cdn.example.com/dl/[redacted]/in-path.bin');
    assert.equal(displayUrl('https://www.dropbox.com/s/k3jd8Ha0sPq2Lm/video.mp4'), 'https://www.dropbox.com/s/[redacted]/video.mp4');
    assert.equal(
      displayUrl('https://api.example.com/files/0f1e2d3c4b5a69788796a5b4c3d2e1f0/raw'),
      'https://api.example.com/files/[redacted]/raw'
    );
    assert.equal(displayUrl('https://x.example/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2ln/f'), 'https://x.example/t/[redacted]/f');
    assert.equal(displayUrl('https://x.example/a%3Db64%3D/f.bin'), 'https://x.example/[redacted]/f.bin');
  });

  it('says so when the URL cannot be read, rather than echo it', () => {
    assert.equal(displayUrl('not a url SECRET'), '[invalid URL]');
  });
});
