import type { Connection } from './server';
import type { AgentEvent, FileState } from './protocol';
import { Notifications } from './protocol';

/** How often progress is sampled and sent: often enough for a live view, rare enough to cost nothing. */
const PROGRESS_INTERVAL_MS = 500;

/** What the hub samples for progress: one line per file with a store. */
export interface ProgressSample {
  file: string;
  state: FileState;
  presentBytes: number;
  size: number;
  bytesPerSecond: number;
}

/**
 * Streams events to subscribed control connections. State changes, retries and errors go
 * out as they happen; a file's count of waiting reads goes out once per event-loop turn in
 * which it changed (a wake may settle thousands at once); progress is sampled twice a
 * second and coalesced (one line per file that moved), and a stall shows as a state change
 * found by the sampler. A client that does not read has events dropped rather than
 * buffered, so it never slows the agent.
 */
export class EventHub {
  readonly #subscribers = new Set<Connection>();
  readonly #sample: () => ProgressSample[];
  readonly #last = new Map<string, { state: FileState; presentBytes: number }>();
  /** Files whose waiting reads changed this turn, and what counts them when the turn ends. */
  readonly #waiters = new Map<string, { readonly waiterCount: number }>();
  #timer: NodeJS.Timeout | null = null;

  constructor (sample: () => ProgressSample[]) {
    this.#sample = sample;
  }

  subscribe (conn: Connection): void {
    this.#subscribers.add(conn);
    conn.onClose(() => this.#unsubscribe(conn));
    if (this.#timer === null) {
      for (const s of this.#sample()) this.#last.set(s.file, { state: s.state, presentBytes: s.presentBytes });
      this.#timer = setInterval(() => this.#tick(), PROGRESS_INTERVAL_MS);
    }
  }

  publish (event: AgentEvent): void {
    if (this.#subscribers.size === 0) return;
    if (event.type === 'state') {
      const last = this.#last.get(event.file);
      if (last !== undefined) last.state = event.state;
    }
    const message = { jsonrpc: '2.0', method: Notifications.event, params: event };
    for (const conn of this.#subscribers) conn.sendDroppable(message);
  }

  /** A file's waiting reads changed; free when nobody listens, coalesced when somebody does. */
  waitersChanged (file: string, counter: { readonly waiterCount: number }): void {
    if (this.#subscribers.size === 0) return;
    if (this.#waiters.size === 0) setImmediate(() => this.#flushWaiters());
    this.#waiters.set(file, counter);
  }

  close (): void {
    this.#subscribers.clear();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #unsubscribe (conn: Connection): void {
    this.#subscribers.delete(conn);
    if (this.#subscribers.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#last.clear();
    }
  }

  #flushWaiters (): void {
    const at = Date.now();
    for (const [file, counter] of this.#waiters) this.publish({ type: 'waiters', file, count: counter.waiterCount, at });
    this.#waiters.clear();
  }

  #tick (): void {
    const at = Date.now();
    for (const s of this.#sample()) {
      const last = this.#last.get(s.file);
      if (last !== undefined && last.state !== s.state) {
        this.publish({ type: 'state', file: s.file, state: s.state, error: null, at });
      }
      if (last === undefined || last.presentBytes !== s.presentBytes) {
        this.publish(
          { type: 'progress', file: s.file, presentBytes: s.presentBytes, size: s.size, bytesPerSecond: Math.round(s.bytesPerSecond), at }
        );
      }
      this.#last.set(s.file, { state: s.state, presentBytes: s.presentBytes });
    }
  }
}
