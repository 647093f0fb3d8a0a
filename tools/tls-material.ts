import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Certificates for an HTTPS origin on 127.0.0.1, made with Debian's `openssl` in `dir`: a CA
 * of the test's own, and three server certificates it signs (ECDSA P-256, as most HTTPS sites
 * serve): a good one for IP 127.0.0.1, one that expired in 2020, and one for another host
 * name. PEM file paths.
 */
export interface TlsMaterial {
  caFile: string;
  /** Valid now, for 127.0.0.1. */
  server: { key: string; cert: string };
  /** For 127.0.0.1, valid only in January 2020. */
  expired: { key: string; cert: string };
  /** Valid now, for DNS:origin.example only. */
  otherHost: { key: string; cert: string };
}

const CA_CONFIG = `[ ca ]
default_ca = here
[ here ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
`;

export async function makeTlsMaterial (dir: string): Promise<TlsMaterial> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'ca.cnf'), CA_CONFIG);
  await fs.writeFile(path.join(dir, 'index.txt'), '');
  await fs.writeFile(path.join(dir, 'serial'), '01\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = async (...args: string[]): Promise<void> => {
    try {
      await execFileAsync('openssl', args, { cwd: dir });
    } catch (err) {
      const why = (err as { stderr?: string }).stderr ?? (err as Error).message;
      throw new Error(`openssl ${args[0]} failed (is Debian's openssl installed?): ${why}`);
    }
  };
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=fusestream-test-ca');
  const sign = async (name: string, subjectAltName: string, dates: string[]): Promise<{ key: string; cert: string }> => {
    await fs.writeFile(path.join(dir, `${name}.ext`), `subjectAltName=${subjectAltName}\n`);
    await openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    await openssl('ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${name}.csr`,
      '-out', `${name}.pem`, '-extfile', `${name}.ext`, '-notext', ...dates);
    return { key: path.join(dir, `${name}.key`), cert: path.join(dir, `${name}.pem`) };
  };
  return {
    caFile: path.join(dir, 'ca.pem'),
    server: await sign('server', 'IP:127.0.0.1', ['-days', '2']),
    expired: await sign('expired', 'IP:127.0.0.1', ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']),
    otherHost: await sign('other-host', 'DNS:origin.example', ['-days', '2']),
  };
}
