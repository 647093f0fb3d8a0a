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
 * out as they happen; progress is sampled twice a second and coalesced (one line per file
 * that moved), and so is a file's count of waiting reads (a line when it differs from the
 * last one sent); a stall shows as a state change found by the sampler. A client that does not read has events dropped rather than
 * buffered, so it never slows the agent.
 */
export class EventHub {
  readonly #subscribers = new Set<Connection>();
  readonly #sample: () => ProgressSample[];
  readonly #last = new Map<string, { state: FileState; presentBytes: number }>();
  /** Files whose waiting reads changed since the last tick, and what counts them. */
  readonly #waiters = new Map<string, { readonly waiterCount: number }>();
  /** The count last sent per file: a count that came back to it within a tick is not news. */
  readonly #waitersSent = new Map<string, number>();
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

  /**
   * A file's waiting reads changed; free when nobody listens. Sent with the next progress
   * tick, and only if the count differs from the last one sent: a program reading in small
   * blocks makes reads wait and wake many times a second, which is not worth a line each.
   */
  waitersChanged (file: string, counter: { readonly waiterCount: number }): void {
    if (this.#subscribers.size === 0) return;
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
      this.#waiters.clear();
      this.#waitersSent.clear();
    }
  }

  #flushWaiters (at: number): void {
    for (const [file, counter] of this.#waiters) {
      const count = counter.waiterCount;
      if (count === (this.#waitersSent.get(file) ?? 0)) continue;
      this.#waitersSent.set(file, count);
      this.publish({ type: 'waiters', file, count, at });
    }
    this.#waiters.clear();
  }

  #tick (): void {
    const at = Date.now();
    this.#flushWaiters(at);
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
