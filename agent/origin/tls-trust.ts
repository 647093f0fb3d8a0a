import fs from 'node:fs/promises';
import tls from 'node:tls';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/**
 * The certificate authorities the agent trusts: Node's bundled list, the PEM file in
 * NODE_EXTRA_CA_CERTS if set, and the user's --ca-file. Null when there is no --ca-file, so
 * Node's own default (bundled + NODE_EXTRA_CA_CERTS) applies untouched. Giving TLS a `ca`
 * replaces Node's default set, extra certificates included, hence both are read here.
 * Throws a one-line message when a file cannot be read or holds no certificate.
 */
export async function trustedAuthorities (caFile: string | null, env: NodeJS.ProcessEnv): Promise<string[] | null> {
  if (caFile === null) return null;
  const extra = env.NODE_EXTRA_CA_CERTS;
  const fromEnv = extra !== undefined && extra !== '' ? await readCertificates(extra, 'NODE_EXTRA_CA_CERTS').catch(() => []) : [];
  return [...tls.rootCertificates, ...fromEnv, ...await readCertificates(caFile, 'ca-file')];
}

async function readCertificates (file: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const certs = text.match(PEM_CERTIFICATE) ?? [];
  if (certs.length === 0) throw new Error(`${what} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return certs;
}

/** Node's TLS verification codes that mean "no trusted authority signed this chain". */
const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

/**
 * A failed TLS handshake in words a user can act on, or null when `err` is not one:
 * "certificate signed by an unknown authority (CODE); give its CA with --ca-file".
 */
export function tlsProblem (err: unknown): string | null {
  const e = err as (NodeJS.ErrnoException & { reason?: string; cause?: unknown }) | null;
  const code = e?.code ?? (e?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return null;
  if (UNKNOWN_AUTHORITY.has(code)) return `certificate signed by an unknown authority (${code}); give its CA with --ca-file`;
  if (code === 'CERT_HAS_EXPIRED') return `the server's certificate has expired (${code})`;
  if (code === 'CERT_NOT_YET_VALID') return `the server's certificate is not valid yet (${code}): is this machine's clock right?`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const reason = e?.reason ?? (e?.cause as { reason?: string } | undefined)?.reason;
    return `the server's certificate is for another host name (${reason ?? code})`;
  }
  if (/^(CERT_|ERR_SSL_|ERR_TLS_)/.test(code)) return `TLS handshake failed (${code})`;
  return null;
}
