/**
 * The worker thread that hashes temp files, so no hash ever runs on the event loop that
 * serves FUSE. It reads the file itself (from the page cache, where fresh bytes still are),
 * so no data crosses threads. Jobs run one message at a time, in order; its sync reads are
 * this thread's own and block nothing else.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import crc32c from 'crc-32/crc32c';
import type { DigestAlgorithm } from './digest';
import type { HashReply, HashRequest } from './content-hasher';

const CHUNK_BYTES = 1024 * 1024;

/** A running hash: node's for sha and md5, a running crc for crc32c. */
interface Running {
  update (buf: Buffer): void;
  hex (): string;
}

function running (algorithm: DigestAlgorithm): Running {
  if (algorithm === 'crc32c') {
    let crc = 0;
    return {
      update: buf => { crc = crc32c.buf(buf, crc); },
      hex: () => ((crc >>> 0).toString(16)).padStart(8, '0'),
    };
  }
  const hash: Hash = createHash(algorithm === 'sha-512' ? 'sha512' : algorithm === 'sha-256' ? 'sha256' : 'md5');
  return { update: buf => { hash.update(buf); }, hex: () => hash.digest('hex') };
}

interface Job { fd: number; hash: Running; pos: number; error: string | null }

const jobs = new Map<number, Job>();
const buffer = Buffer.alloc(CHUNK_BYTES);

/** Hashes the job's file on to `upTo`; a failure is kept in `job.error`, for its `finish` to report. */
function advance (job: Job, upTo: number): void {
  try {
    while (job.error === null && job.pos < upTo) {
      const n = fs.readSync(job.fd, buffer, 0, Math.min(CHUNK_BYTES, upTo - job.pos), job.pos);
      if (n === 0) { job.error = `the temp file ended at ${job.pos} bytes`; break; }
      job.hash.update(buffer.subarray(0, n));
      job.pos += n;
    }
  } catch (err) {
    job.error = (err as Error).message;
  }
}

function close (id: number): void {
  const job = jobs.get(id);
  if (job === undefined) return;
  jobs.delete(id);
  try { fs.closeSync(job.fd); } catch { /* already gone */ }
}

parentPort?.on('message', (msg: HashRequest) => {
  const reply = (r: HashReply): void => parentPort?.postMessage(r);
  try {
    if (msg.op === 'open') {
      jobs.set(msg.job, { fd: fs.openSync(msg.path, 'r'), hash: running(msg.algorithm), pos: 0, error: null });
    } else if (msg.op === 'advance') {
      const job = jobs.get(msg.job);
      if (job !== undefined) advance(job, msg.upTo);
    } else if (msg.op === 'finish') {
      const job = jobs.get(msg.job);
      if (job === undefined) return reply({ job: msg.job, hex: null, error: 'no such hash job' });
      advance(job, msg.size);
      reply(job.error === null ? { job: msg.job, hex: job.hash.hex(), error: null } : { job: msg.job, hex: null, error: job.error });
      close(msg.job);
    } else {
      close(msg.job);
    }
  } catch (err) {
    reply({ job: msg.job, hex: null, error: (err as Error).message });
  }
});
