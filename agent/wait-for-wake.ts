/** How a wait ended. */
export type WaitEnd = 'woken' | 'timeout' | 'aborted';

/**
 * Waits until the wake function is called, `ms` pass (Infinity: no timer) or `signal`
 * aborts, whichever comes first. `register` receives the wake function, which may be
 * called any number of times, also after the wait ended.
 */
export function waitForWake (ms: number, signal: AbortSignal | null, register: (wake: () => void) => void): Promise<WaitEnd> {
  return new Promise(resolve => {
    let timer: NodeJS.Timeout | null = null;
    let ended = false;
    const end = (how: WaitEnd): void => {
      if (ended) return;
      ended = true;
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(how);
    };
    const onAbort = (): void => end('aborted');
    if (signal?.aborted === true) return end('aborted');
    if (ms !== Infinity) timer = setTimeout(() => end('timeout'), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    register(() => end('woken'));
  });
}
