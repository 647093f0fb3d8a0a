import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { FsError } from '../errors';
import type { DigestAlgorithm } from './digest';

/** What the main thread asks of the hash worker (hash-worker.ts). */
export type HashRequest =
  | { op: 'open'; job: number; path: string; algorithm: DigestAlgorithm }
  | { op: 'advance'; job: number; upTo: number }
  | { op: 'finish'; job: number; size: number }
  | { op: 'close'; job: number };

export interface HashReply { job: number; hex: string | null; error: string | null }

/**
 * The agent's one hash worker thread, started on first use: files are hashed there, from
 * their temp files, while their bytes arrive in order (`advance` as the present prefix
 * grows) and to the end when they complete (`finish`), so a file downloaded front to back
 * is verified moments after its last byte, and one filled out of order in one pass then.
 */
export class ContentHasher {
  #worker: Worker | null = null;
  #nextJob = 1;
  readonly #waiting = new Map<number, { resolve: (hex: string) => void; reject: (err: FsError) => void }>();

  /** Starts hashing the file at `filePath`; feed it with `advance`, end it with `finish` or `cancel`. */
  start (filePath: string, algorithm: DigestAlgorithm): HashJob {
    const job = this.#nextJob;
    this.#nextJob = job + 1;
    this.#send({ op: 'open', job, path: filePath, algorithm });
    return new HashJob(job, this);
  }

  async close (): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    for (const w of this.#waiting.values()) w.reject(new FsError('ECANCELED', 'the agent is stopping'));
    this.#waiting.clear();
    await worker?.terminate();
  }

  /** For HashJob. */
  send (msg: HashRequest): void { this.#send(msg); }

  /** For HashJob. */
  result (job: number): Promise<string> {
    return new Promise((resolve, reject) => this.#waiting.set(job, { resolve, reject }));
  }

  /** For HashJob. */
  forget (job: number): void {
    this.#waiting.get(job)?.reject(new FsError('ECANCELED', 'hashing was stopped'));
    this.#waiting.delete(job);
  }

  #send (msg: HashRequest): void {
    this.#workerNow().postMessage(msg);
  }

  #workerNow (): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(path.join(__dirname, 'hash-worker.js'));
    worker.unref(); // it never keeps the agent alive
    worker.on('message', (r: HashReply) => {
      const w = this.#waiting.get(r.job);
      this.#waiting.delete(r.job);
      if (r.hex !== null) w?.resolve(r.hex);
      else w?.reject(new FsError('EIO', `could not hash the temp file: ${r.error ?? 'unknown error'}`));
    });
    worker.on('error', err => {
      // A crashed worker fails what it was doing; the next job starts a new one.
      if (this.#worker === worker) this.#worker = null;
      for (const w of this.#waiting.values()) w.reject(new FsError('EIO', `the hash worker failed: ${err.message}`));
      this.#waiting.clear();
    });
    this.#worker = worker;
    return worker;
  }
}

/** One file being hashed. */
export class HashJob {
  readonly #id: number;
  readonly #hasher: ContentHasher;
  #done = false;

  constructor (id: number, hasher: ContentHasher) {
    this.#id = id;
    this.#hasher = hasher;
  }

  /** The file's bytes are present from 0 to `upTo`: hash them now, in the background. */
  advance (upTo: number): void {
    if (!this.#done) this.#hasher.send({ op: 'advance', job: this.#id, upTo });
  }

  /** Hashes to `size` and gives the hex digest. */
  finish (size: number): Promise<string> {
    if (this.#done) return Promise.reject(new FsError('ECANCELED', 'hashing was stopped'));
    this.#done = true;
    const result = this.#hasher.result(this.#id);
    this.#hasher.send({ op: 'finish', job: this.#id, size });
    return result;
  }

  cancel (): void {
    if (this.#done) { this.#hasher.forget(this.#id); return; }
    this.#done = true;
    this.#hasher.send({ op: 'close', job: this.#id });
  }
}
