import { FsError } from '../errors';
import type { ContentHasher, HashJob } from './content-hasher';
import type { ReadCallback } from '../store/store-contract';
import type { Digest } from './digest';

/** What a verifier needs of the file it checks (the store), as the scheduler has ScheduledFile. */
export interface VerifiedFile {
  readonly name: string;
  readonly size: number;
  readonly path: string;
  readonly digest: Digest | null;
  /** Changes in the very turn the bytes on disk start being dropped: a hash begun before judges nothing. */
  readonly generation: number;
  readonly closing: boolean;
  /** Where the bytes present from byte 0 on end. */
  prefixEnd (): number;
  /** Answers a read from disk: a held read, once its file matched. */
  read (buf: Buffer, pos: number, length: number, cb: ReadCallback): void;
  /** The whole file matched its digest: it may be read freely (fast reads, state complete). */
  matched (actual: string): void;
  /**
   * A whole copy did not match: its bytes are to be dropped, then fetched once more, or, when
   * `final` (the second bad copy), the file fails with `err`.
   */
  mismatched (actual: string, reason: string, final: FsError | null): Promise<void>;
  /** The hash itself failed (the file could not be read): the file fails. */
  failed (err: FsError): void;
}

/**
 * Checks one file's bytes against its digest: hashes the present prefix as it grows (in the
 * worker), judges a whole copy, holds reads of a whole file until the verdict, and counts
 * bad copies (a second one fails the file until fsctl resume).
 */
export class FileVerifier {
  readonly #file: VerifiedFile;
  readonly #hasher: ContentHasher;
  readonly #readTimeoutMs: number;
  /** True when the file has no digest, or its bytes on disk hashed to it: only then may a complete file be read freely. */
  #checked: boolean;
  /** The hash of the present prefix, kept up as bytes arrive in order; null without a digest or once checked. */
  #hashJob: HashJob | null = null;
  /** Copies that did not match the digest since the file was added (or resumed): a second one is an error. */
  #badCopies = 0;
  /** Reads of a complete file that wait for its verdict. */
  #heldReads: Array<(ok: boolean) => void> = [];

  /** `verifiedBefore`: the bytes on disk already hashed to the digest (a file checked in an earlier run). */
  constructor (file: VerifiedFile, hasher: ContentHasher, verifiedBefore: boolean, readTimeoutMs: number) {
    this.#file = file;
    this.#hasher = hasher;
    this.#readTimeoutMs = readTimeoutMs;
    this.#checked = file.digest === null || verifiedBefore;
    if (!this.#checked) this.#startHashing();
  }

  get checked (): boolean { return this.#checked; }

  /** Two bad copies: only fsctl resume (forgetBadCopies) tries a third. */
  get gaveUp (): boolean { return this.#badCopies >= 2; }

  forgetBadCopies (): void { this.#badCopies = 0; }

  /** The bytes present from byte 0 now end at `end`: hashed on as they come. */
  prefixGrew (end: number): void {
    this.#hashJob?.advance(end);
  }

  /** The file's bytes are being dropped: what was hashed goes, and reads held for a verdict fail. */
  dropped (): void {
    this.#checked = this.#file.digest === null; // new bytes, checked anew
    this.#hashJob?.cancel();
    this.#hashJob = null;
    this.#releaseHeld(false);
  }

  /** The file is empty again after a drop: hashing starts over with its next bytes. */
  refilling (): void {
    if (!this.#checked) this.#startHashing();
  }

  close (): void {
    this.#releaseHeld(false);
    this.#hashJob?.cancel();
    this.#hashJob = null;
  }

  /** The file just became whole and is not yet checked: hash it to the end and judge it. */
  async verify (): Promise<void> {
    const job = this.#hashJob ?? this.#startHashing();
    this.#hashJob = null;
    const generation = this.#file.generation;
    let actual: string;
    try {
      actual = await job.finish(this.#file.size);
    } catch (err) {
      if (generation !== this.#file.generation || this.#file.closing) return;
      this.#releaseHeld(false);
      return this.#file.failed(new FsError('EIO', `${this.#file.name}: could not be verified: ${(err as Error).message}`));
    }
    if (generation !== this.#file.generation || this.#file.closing) return; // its bytes were dropped meanwhile
    await this.#verdict(actual);
  }

  /**
   * fsctl verify of a whole file (`whole`: every byte present and no verdict pending; `failed`:
   * why the file failed, if it did): hashes it on disk again (a cache damaged after the fact)
   * and deals with the outcome as with a download's. Resolves with what it hashed to.
   */
  async recheck (failed: FsError | null, whole: boolean): Promise<{ ok: boolean; actual: string }> {
    const { digest, name } = this.#file;
    if (digest === null) throw new FsError('EINVAL', `no digest is known for ${name}; give one at add time with --sha256`);
    if (failed !== null) {
      throw new FsError('EIO', `${name} failed (${failed.message}): there is no whole copy to check; fsctl resume tries again`);
    }
    if (!whole) throw new FsError('EBUSY', `${name} is not complete yet; it is verified when its last byte arrives`);
    const generation = this.#file.generation;
    const actual = await this.#hasher.start(this.#file.path, digest.algorithm).finish(this.#file.size);
    if (generation !== this.#file.generation || this.#file.closing) {
      throw new FsError('EBUSY', `${this.#file.name} changed while it was hashed`);
    }
    await this.#verdict(actual);
    return { ok: actual === digest.hex, actual };
  }

  /** A read of a whole file being verified: answered from disk if it matches, EIO if not, ETIMEDOUT after read-timeout. */
  hold (buf: Buffer, pos: number, end: number, cb: ReadCallback): void {
    let answered = false;
    const answer = (ok: boolean | 'timeout'): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (ok === true && !this.#file.closing) return this.#file.read(buf, pos, end - pos, cb);
      const why = ok === 'timeout' ? 'verification took too long' : 'its bytes did not match its digest';
      cb(new FsError(ok === 'timeout' ? 'ETIMEDOUT' : 'EIO', `${this.#file.name}: ${why}`), 0);
    };
    const timer = setTimeout(() => answer('timeout'), this.#readTimeoutMs);
    this.#heldReads.push(answer);
  }

  /** A whole copy hashed to `actual`: checked, or dropped and fetched once more, or failed for good. */
  async #verdict (actual: string): Promise<void> {
    const digest = this.#file.digest!;
    if (actual === digest.hex) {
      this.#checked = true;
      this.#file.matched(actual);
      this.#releaseHeld(true);
      return;
    }
    this.#badCopies++;
    this.#releaseHeld(false);
    const said = `${digest.algorithm} ${digest.hex} (${digest.source})`;
    const final = this.#badCopies >= 2
      ? new FsError('EIO', `two downloads did not match the origin's ${said}; the last hashed to ${actual}. ` +
        'Its bytes were dropped; fsctl resume tries again')
      : null;
    await this.#file.mismatched(actual, `the downloaded bytes of ${this.#file.name} hash to ${actual}, not ${said}: dropped`, final);
  }

  #startHashing (): HashJob {
    this.#hashJob?.cancel();
    const job = this.#hasher.start(this.#file.path, this.#file.digest!.algorithm);
    const prefixEnd = this.#file.prefixEnd();
    if (prefixEnd > 0) job.advance(prefixEnd);
    this.#hashJob = job;
    return job;
  }

  #releaseHeld (ok: boolean): void {
    const held = this.#heldReads;
    this.#heldReads = [];
    for (const answer of held) answer(ok);
  }
}
