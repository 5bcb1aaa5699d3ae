// The write side of a remote store: the queue of series with pending changes, the batches a
// flush sends, and the background flush. Flushes never overlap. A batch carries this process's
// id and a sequence number, and the flush script applies each sequence number at most once, so
// a failed batch is retried as it was (while new changes gather for the next one) and can never
// count twice.

import { unrefTimer } from "../../core/_runtime.ts";
import { appliedKey, instancesKey } from "./layout.ts";
import type { RemoteOptions } from "./options.ts";
import { FLUSH_SCRIPT } from "./scripts.ts";
import type { Transport } from "./transport.ts";
import type { Changes, Pending } from "./values.ts";

/** What the library reports about a store, as its own metrics. */
export interface StoreStats {
  /** Flushes attempted. */
  flushes: number;
  /** Flushes that failed. */
  failures: number;
  /** Changes Redis refused to apply (an increment to infinity, a key of another type). */
  rejected: number;
  /** The duration of the last flush. */
  lastFlushSeconds: number;
  /** Why the last flush failed; undefined when it succeeded. */
  lastError: string | undefined;
}

/** A removal: the fields of one series, deleted exactly ("d") or by prefix ("p"). */
export interface Removal {
  readonly key: string;
  readonly op: "d" | "p";
  readonly field: string;
}

interface Batch {
  readonly seq: number;
  readonly keys: string[];
  readonly args: string[];
  readonly size: number;
}

/** Who this process is in the store: its batches' id and its id in per-instance gauges. */
export interface Identity {
  readonly processId: string;
  readonly instanceId: string;
}

/** The pending changes of one store, and their flushes. */
export class Writer {
  readonly stats: StoreStats = {
    flushes: 0,
    failures: 0,
    rejected: 0,
    lastFlushSeconds: 0,
    lastError: undefined,
  };
  #transport: Transport;
  #options: RemoteOptions;
  #identity: Identity;
  #queue: Pending[] = [];
  #removals: Removal[] = [];
  #outstanding: Batch | undefined;
  #seq = 0;
  #active: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #perInstance = false;
  #lastBeat = 0;
  #closed = false;

  constructor(transport: Transport, options: RemoteOptions, identity: Identity) {
    this.#transport = transport;
    this.#options = options;
    this.#identity = identity;
  }

  /** Series and removals not yet confirmed by Redis. */
  get pending(): number {
    return this.#queue.length + this.#removals.length + (this.#outstanding?.size ?? 0);
  }

  /** Queues a series with changes. */
  enqueue(values: Pending): void {
    if (this.#closed) return;
    values.queued = true;
    this.#queue.push(values);
    if (this.#timer === undefined) this.#startTimer();
  }

  /** Queues removals, applied before the changes of the same batch. */
  remove(removals: readonly Removal[]): void {
    this.#removals.push(...removals);
    if (this.#timer === undefined) this.#startTimer();
  }

  /** Starts the heartbeat that per-instance gauges need. */
  usePerInstance(): void {
    this.#perInstance = true;
    this.#startTimer();
  }

  /** Flushes pending changes. Never rejects: a failure is counted and the batch kept for retry. */
  flush(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    if (this.#active === undefined) {
      this.#active = this.#flushOnce().finally(() => (this.#active = undefined));
      return this.#active;
    }
    this.#next = this.#active.then(() => {
      this.#next = undefined;
      return this.flush();
    });
    return this.#next;
  }

  /** Stops the background flush; later changes are dropped. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #startTimer(): void {
    const interval = this.#options.flushIntervalMs;
    if (this.#timer !== undefined || interval <= 0 || this.#closed) return;
    // A tick that finds a flush running skips: queued behind it, background flushes would follow
    // one another with no gap while Redis is away (each waits out a timeout), and a process that
    // is done would never end, since its exit flush runs only once the event loop is idle.
    this.#timer = setInterval(() => this.#active === undefined && void this.flush(), interval);
    unrefTimer(this.#timer);
  }

  async #flushOnce(): Promise<void> {
    if (this.#closed) return;
    const started = performance.now();
    try {
      if (this.#outstanding !== undefined) {
        await this.#send(this.#outstanding);
        this.#outstanding = undefined;
      }
      const beat = this.#perInstance &&
        Date.now() - this.#lastBeat >= this.#options.instanceTtlSeconds * 250;
      if (this.#queue.length > 0 || this.#removals.length > 0 || beat) {
        this.#outstanding = this.#drain();
        await this.#send(this.#outstanding);
        this.#outstanding = undefined;
      }
      this.stats.lastError = undefined;
    } catch (error) {
      this.stats.failures++;
      this.stats.lastError = error instanceof Error ? error.message : String(error);
    } finally {
      this.stats.flushes++;
      this.stats.lastFlushSeconds = (performance.now() - started) / 1000;
    }
  }

  // The batch format is the flush script's: see scripts.ts.
  #drain(): Batch {
    const queue = this.#queue;
    const removals = this.#removals;
    this.#queue = [];
    this.#removals = [];
    const options = this.#options;
    const keys = [appliedKey(options.keyPrefix, this.#identity.processId), instancesKey(options.keyPrefix)];
    const keyIndex = new Map<string, string>();
    const indexOf = (key: string): string => {
      let index = keyIndex.get(key);
      if (index === undefined) {
        keys.push(key);
        keyIndex.set(key, index = String(keys.length));
      }
      return index;
    };
    const seq = ++this.#seq;
    const args: Changes = [
      String(options.expireSeconds),
      this.#perInstance ? this.#identity.instanceId : "",
      String(options.instanceTtlSeconds * 1000),
      "1",
      String(seq),
      "",
    ];
    // Removals first: a series created again after its removal writes after it.
    for (const { key, op, field } of removals) args.push(indexOf(key), op, field, "");
    for (const values of queue) values.drain(args, indexOf(values.key));
    args[5] = String((args.length - 6) / 4);
    return { seq, keys, args, size: queue.length + removals.length };
  }

  async #send(batch: Batch): Promise<void> {
    const reply = await this.#transport.run(await FLUSH_SCRIPT, batch.keys, batch.args);
    this.stats.rejected += Number((reply as unknown[] | null)?.[1] ?? 0) || 0;
    if (this.#perInstance) this.#lastBeat = Date.now();
  }
}
