import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeProxies, parseProxyUrl, proxyHasCredentials, redactProxy, resolveProxies } from '../../agent/origin/proxy-settings';
import { tlsProblem } from '../../agent/origin/tls-trust';

describe('proxy settings, read as curl reads them', () => {
  it('takes lower case before upper case, each scheme its own, ALL_PROXY for the scheme left unset', () => {
    assert.deepEqual(resolveProxies(null, { HTTPS_PROXY: 'http://up:1', https_proxy: 'http://low:1', HTTP_PROXY: 'http://h:2' }), {
      http: 'http://h:2', https: 'http://low:1', noProxy: '', from: 'environment',
    });
    assert.deepEqual(resolveProxies(null, { ALL_PROXY: 'http://all:3', http_proxy: 'http://h:2', NO_PROXY: '.corp' }), {
      http: 'http://h:2', https: 'http://all:3', noProxy: '.corp', from: 'environment',
    });
    assert.deepEqual(resolveProxies(null, { HTTPS_PROXY: '  ' }), { http: null, https: null, noProxy: '', from: 'none' });
    // As curl does, host:port alone is an http:// proxy (undici would take "proxy" for a scheme).
    assert.deepEqual(resolveProxies(null, { https_proxy: 'proxy.corp:3128' }), {
      http: null, https: 'http://proxy.corp:3128', noProxy: '', from: 'environment',
    });
  });

  it('--proxy takes both schemes over the environment, and keeps NO_PROXY', () => {
    assert.deepEqual(resolveProxies('http://p:8080/', { HTTPS_PROXY: 'http://env:1', no_proxy: 'localhost' }), {
      http: 'http://p:8080/', https: 'http://p:8080/', noProxy: 'localhost', from: 'setting',
    });
  });

  it('checks a proxy URL, taking host:port alone as http://, and never echoes its password', () => {
    assert.equal(parseProxyUrl('proxy.example:3128'), 'http://proxy.example:3128/');
    assert.equal(parseProxyUrl('https://u:p@proxy.example'), 'https://u:p@proxy.example/');
    assert.throws(() => parseProxyUrl('socks5://u:secret@h:1'), (e: Error) => /http:\/\/ or https:\/\//.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => parseProxyUrl(''), /must be a proxy URL/);
  });

  it('hides credentials: the password, or a lone token in the user name', () => {
    assert.equal(redactProxy('http://me:s3cret@p:1'), 'http://me:***@p:1/');
    assert.equal(redactProxy('http://tok3n@p:1'), 'http://***@p:1/');
    assert.equal(redactProxy('http://p:1'), 'http://p:1/');
    assert.equal(redactProxy('not a url:x@y z'), '***@y z');
    assert.equal(proxyHasCredentials('http://me:s3cret@p:1'), true);
    assert.equal(proxyHasCredentials('tok3n@p:1'), true);
    assert.equal(proxyHasCredentials('http://p:1'), false, 'a URL only written differently holds no credentials');
    assert.equal(proxyHasCredentials('proxy.corp:3128'), false);
  });

  it('says in one line where connections go', () => {
    assert.equal(describeProxies({ http: null, https: null, noProxy: '', from: 'none' }), null);
    assert.equal(
      describeProxies({ http: 'http://a:s@p:1', https: 'http://a:s@p:1', noProxy: 'localhost', from: 'setting' }),
      'http://a:***@p:1/ (from the proxy setting, not for localhost)'
    );
    assert.equal(
      describeProxies({ http: null, https: 'http://p:1', noProxy: '', from: 'environment' }),
      'http://p:1/ for https://, direct for http:// (from the environment)'
    );
  });
});

describe('TLS failures in words', () => {
  const failure = (code: string, reason?: string): Error => Object.assign(new Error('x'), { code, reason });

  it('names an unknown authority, an expired certificate, a wrong host name, and nothing else', () => {
    assert.match(tlsProblem(failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))!, /^certificate signed by an unknown authority .*--ca-file$/);
    assert.match(tlsProblem(failure('SELF_SIGNED_CERT_IN_CHAIN'))!, /unknown authority/);
    assert.match(tlsProblem(failure('CERT_HAS_EXPIRED'))!, /has expired/);
    assert.match(tlsProblem(failure('ERR_TLS_CERT_ALTNAME_INVALID', 'IP: 127.0.0.1 is not in the cert\'s list: '))!,
      /another host name \(IP: 127\.0\.0\.1 is not in the cert's list/);
    assert.match(tlsProblem(Object.assign(new Error('wrapped'), { cause: failure('CERT_NOT_YET_VALID') }))!, /clock/);
    assert.equal(tlsProblem(failure('ECONNREFUSED')), null);
    assert.equal(tlsProblem(null), null);
  });
});
