import type { Logger } from 'pino';
import type { EventHub } from '../control/event-hub';
import { OriginChangedError } from '../origin/origin-info';
import type { StoreObserver } from '../store/store-contract';
import type { RemoteFiles } from './remote-files';

export interface StoreEventsDeps {
  events: EventHub;
  log: Logger;
  /** The remote files, once they exist (the pool, which takes this observer, is made first). */
  files: () => RemoteFiles;
  /** Told of every state change: it holds the machine awake while anything transfers. */
  poke: () => void;
}

/** What the agent does when a store changes: events for fsctl, log lines, and the remote file told. */
export function storeEvents ({ events, log, files, poke }: StoreEventsDeps): StoreObserver {
  return {
    onStateChange: (store, state, err) => {
      poke();
      const file = store.source.name;
      events.publish({ type: 'state', file, state, error: err?.message ?? null, at: Date.now() });
      if (err instanceof OriginChangedError) {
        log.warn({ file, err: err.message }, 'the file changed at the origin during its download');
        void files().byId(store.id)?.revalidate();
      } else if (err !== null && state === 'error') {
        log.warn({ file, err: err.message }, 'download failed');
      } else {
        log.info({ file, state }, 'file state');
      }
    },
    onWaitersChanged: store => events.waitersChanged(store.source.name, store),
    onVerified: (store, ok, actual) => {
      const digest = store.source.origin.digest!;
      const file = store.source.name;
      events.publish({ type: 'verified', file, ok, algorithm: digest.algorithm, expected: digest.hex, actual, at: Date.now() });
      files().byId(store.id)?.verified(ok, actual); // a bad copy: its cached pages must not reach a new open
      if (ok) {
        log.info({ file, algorithm: digest.algorithm }, 'verified');
        return;
      }
      const said = { algorithm: digest.algorithm, expected: digest.hex, source: digest.source };
      log.warn({ file, ...said, actual }, 'downloaded bytes do not match the digest');
    },
    onRetry: (store, err, delayMs, attempt, withoutProgress) => {
      const file = store.source.name;
      events.publish({ type: 'retry', file, error: err.message, delayMs, attempt, withoutProgress, at: Date.now() });
      log.warn({ file, err: err.message, delayMs, attempt, withoutProgress }, 'download attempt failed; retrying');
    },
  };
}
