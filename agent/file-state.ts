/**
 * What a remote file is doing, as the store, the database and the control API all say it.
 * A leaf: it imports nothing, so every part can share it without a cycle.
 *
 * `verifying`: every byte is on disk and is being hashed against the file's digest; reads wait for the verdict.
 * `stalled`: downloading, but nothing has arrived for a few seconds.
 */
export type FileState = 'idle' | 'downloading' | 'stalled' | 'verifying' | 'complete' | 'cancelled' | 'error';
