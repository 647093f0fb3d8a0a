import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linksOfIndex } from '../../agent/folders/index-page';
import { parseDuration, parseList } from '../../ctl/folders';

const PAGE = 'http://127.0.0.1:8080/media/shows/';

describe('the links of an index page', () => {
  it('nginx autoindex: files and subfolders, not the parent', () => {
    const html = `<html><head><title>Index of /media/shows/</title></head>
<body><h1>Index of /media/shows/</h1><hr><pre><a href="../">../</a>
<a href="season%201/">season 1/</a>                                         01-Jan-2026 00:00                   -
<a href="trailer.mp4">trailer.mp4</a>                                      01-Jan-2026 00:00             1048576
<a href="Tom%20%26%20Jerry.mkv">Tom &amp; Jerry.mkv</a>                   01-Jan-2026 00:00                  42
</pre><hr></body></html>`;
    assert.deepEqual(linksOfIndex(html, PAGE), [
      { url: `${PAGE}season%201/`, name: 'season 1', isFolder: true },
      { url: `${PAGE}trailer.mp4`, name: 'trailer.mp4', isFolder: false },
      { url: `${PAGE}Tom%20%26%20Jerry.mkv`, name: 'Tom & Jerry.mkv', isFolder: false },
    ]);
  });

  it('Apache mod_autoindex: no sort links, no parent, no icons', () => {
    const html = `<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/media/">Parent Directory</a></td></tr>
<tr><td><img src="/icons/movie.gif" alt="[VID]"></td><td><a href="ep1.mp4">ep1.mp4</a></td><td align="right">1.0M</td></tr>
<tr><td><a href='extras/'>extras/</a></td></tr></table>`;
    assert.deepEqual(linksOfIndex(html, PAGE).map(l => [l.name, l.isFolder]), [['ep1.mp4', false], ['extras', true]]);
  });

  it('python -m http.server, absolute links to the same folder, and links that leave it or repeat', () => {
    const html = `<ul>
<li><a href="a.mp4">a.mp4</a></li>
<li><a href="/media/shows/b.mp4">b.mp4</a></li>
<li><a href="http://127.0.0.1:8080/media/shows/c.mp4">c.mp4</a></li>
<li><a href="http://elsewhere.example/media/shows/d.mp4">d.mp4</a></li>
<li><a href="../other/e.mp4">e</a></li>
<li><a href="deep/er/f.mp4">f</a></li>
<li><a href="a.mp4#frag">again</a></li>
<li><a href="#top">top</a></li>
<li><a href="g.mp4?download=1">g</a></li>
<li><a href="mailto:x@example.com">mail</a></li>
<li><a href="./">self</a></li>
</ul>`;
    assert.deepEqual(linksOfIndex(html, PAGE).map(l => l.name), ['a.mp4', 'b.mp4', 'c.mp4']);
  });

  it('a name that decodes to a "/" is kept as it is, for the scan to refuse by name', () => {
    assert.deepEqual(linksOfIndex('<a href="a%2Fb.mp4">x</a>', PAGE).map(l => l.name), ['a/b.mp4']);
    assert.deepEqual(linksOfIndex('<a href="bad%E0%A4%A.mp4">x</a>', PAGE), [], 'an undecodable name is skipped');
  });
});

describe('fsctl add --from-file and --refresh-every', () => {
  it('a list: URL [NAME] per line, names with spaces, comments and blank lines skipped, bad lines named', () => {
    const { entries, bad } = parseList('# my videos\n\nhttp://h/a.mp4\nhttps://h/b.mp4   talks/B side.mp4\r\nnot a url\nftp://h/c\n');
    assert.deepEqual(entries, [
      { line: 3, url: 'http://h/a.mp4' },
      { line: 4, url: 'https://h/b.mp4', name: 'talks/B side.mp4' },
    ]);
    assert.deepEqual(bad.map(b => b.line), [5, 6]);
  });

  it('durations', () => {
    assert.equal(parseDuration('90'), 90_000);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('soon'), null);
    assert.equal(parseDuration('-5m'), null);
  });
});
