import { FsError } from '../errors';

export type DigestAlgorithm = 'sha-512' | 'sha-256' | 'md5' | 'crc32c';

/** What the whole file must hash to, and who said so. */
export interface Digest {
  algorithm: DigestAlgorithm;
  /** Lower-case hex; crc32c as its 4 bytes big-endian, as the stores send it. */
  hex: string;
  /** The header it came from ("Repr-Digest", …), or "user" for fsctl add --sha256. */
  source: string;
}

const BYTES: Record<DigestAlgorithm, number> = { 'sha-512': 64, 'sha-256': 32, md5: 16, crc32c: 4 };
/** The strongest digest an origin states is the one checked. */
const STRENGTH: Record<DigestAlgorithm, number> = { 'sha-512': 4, 'sha-256': 3, md5: 2, crc32c: 1 };

type Headers = Record<string, string | string[] | undefined>;

function values (headers: Headers, name: string): string[] {
  const v = headers[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function fromBase64 (algorithm: DigestAlgorithm, b64: string, source: string): Digest | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const bytes = Buffer.from(b64, 'base64');
  return bytes.length === BYTES[algorithm] ? { algorithm, hex: bytes.toString('hex'), source } : null;
}

function algorithmOf (name: string): DigestAlgorithm | null {
  const n = name.trim().toLowerCase();
  return n === 'sha-512' || n === 'sha-256' || n === 'md5' || n === 'crc32c' ? n : null;
}

/** RFC 9530 dictionaries (`sha-256=:BASE64:`) and RFC 3230 lists (`SHA-256=BASE64`), the same but for the colons. */
function fromDigestList (header: string, source: string): Digest[] {
  const out: Digest[] = [];
  for (const item of header.split(',')) {
    const m = /^\s*([A-Za-z0-9-]+)\s*=\s*:?([A-Za-z0-9+/=]+):?\s*$/.exec(item);
    const algorithm = m === null ? null : algorithmOf(m[1]);
    const d = algorithm === null || m === null ? null : fromBase64(algorithm, m[2], source);
    if (d !== null) out.push(d);
  }
  return out;
}

/**
 * The digest of the whole file an origin states, the strongest of: `Repr-Digest` (RFC 9530)
 * and `Digest` (RFC 3230) with sha-512, sha-256 or md5; S3's `x-amz-checksum-sha256` and
 * `-crc32c` (not a multipart object's checksum of checksums, "…-N"); GCS's `x-goog-hash`
 * (md5, crc32c). `Content-Digest` and `Content-MD5` describe the body sent, so they count
 * only for an answer that carried the whole file (`wholeBody`: a 200 or a HEAD).
 */
export function digestFromHeaders (headers: Headers, wholeBody: boolean): Digest | null {
  const found: Digest[] = [];
  for (const v of values(headers, 'repr-digest')) found.push(...fromDigestList(v, 'Repr-Digest'));
  for (const v of values(headers, 'digest')) found.push(...fromDigestList(v, 'Digest'));
  if (wholeBody) {
    for (const v of values(headers, 'content-digest')) found.push(...fromDigestList(v, 'Content-Digest'));
    for (const v of values(headers, 'content-md5')) {
      const d = fromBase64('md5', v.trim(), 'Content-MD5');
      if (d !== null) found.push(d);
    }
  }
  const composite = values(headers, 'x-amz-checksum-type').some(v => /composite/i.test(v));
  for (const [name, algorithm] of [['x-amz-checksum-sha256', 'sha-256'], ['x-amz-checksum-crc32c', 'crc32c']] as const) {
    for (const v of values(headers, name)) {
      const d = composite || v.includes('-') ? null : fromBase64(algorithm, v.trim(), name);
      if (d !== null) found.push(d);
    }
  }
  for (const v of values(headers, 'x-goog-hash')) {
    for (const part of v.split(',')) {
      const eq = part.indexOf('=');
      const algorithm = eq < 0 ? null : algorithmOf(part.slice(0, eq));
      const d = algorithm === null ? null : fromBase64(algorithm, part.slice(eq + 1).trim(), 'x-goog-hash');
      if (d !== null) found.push(d);
    }
  }
  found.sort((a, b) => STRENGTH[b.algorithm] - STRENGTH[a.algorithm]);
  return found[0] ?? null;
}

/** `fsctl add --sha256 HEX`: the user's own digest. */
export function userSha256 (hex: string): Digest {
  const h = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(h)) throw new FsError('EINVAL', 'a sha-256 digest is 64 hexadecimal digits');
  return { algorithm: 'sha-256', hex: h, source: 'user' };
}
