// What the exposition computes once per frozen label set (its rendered text, its encoded
// protobuf fields), kept for as long as the label set lives, up to a bound.

import type { Labels } from "./types.ts";

/** The most label sets a memo holds. */
export const MEMO_LIMIT = 1 << 16;
/** How long a full memo waits, at first, before it may start afresh (ms). */
export const FIRST_WAIT_MS = 60_000;
/** The longest a full memo waits before it may start afresh (ms). */
export const LONGEST_WAIT_MS = 3_600_000;

/**
 * Values kept per label set, in a weak map of at most MEMO_LIMIT entries. A weak map of a million
 * entries costs more than it saves: every garbage collection works through its entries (in
 * JavaScriptCore, each young-generation collection then held the event loop for over 100 ms),
 * and each time it grows past a power of two it rehashes every entry at once (60 ms in V8).
 *
 * Registries within the bound, the common case, keep every label set. Past it, a label set the
 * memo has no room for is computed each time. So that label sets no longer used (which a weak map
 * cannot count out) give up their places, a memo that has been full for a while (FIRST_WAIT_MS,
 * then twice as long after each fresh start, up to LONGEST_WAIT_MS) and has turned away as many
 * label sets as it holds starts afresh. Not sooner: in a registry far larger than the bound, every
 * fresh start fills the memo again with strings that outlive the young generation, and a scrape
 * that did so every MEMO_LIMIT series spent its pauses copying them.
 */
export class LabelMemo<V> {
  #map: WeakMap<Labels, V> = new WeakMap();
  #kept = 0;
  #refused = 0;
  #fullSince = 0;
  #wait = FIRST_WAIT_MS;
  readonly #now: () => number;

  /** @param now The clock, in milliseconds (`performance.now()` by default). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The value kept for this label set, if any. */
  get(labels: Labels): V | undefined {
    return this.#map.get(labels);
  }

  /** Keeps a value for this label set, if there is room. */
  set(labels: Labels, value: V): void {
    if (this.#kept < MEMO_LIMIT) {
      this.#map.set(labels, value);
      if (++this.#kept === MEMO_LIMIT) this.#fullSince = this.#now();
      return;
    }
    // The clock is read once every 1024 label sets turned away.
    if ((++this.#refused & 1023) !== 0 || this.#refused < MEMO_LIMIT) return;
    if (this.#now() - this.#fullSince < this.#wait) return;
    this.#map = new WeakMap();
    this.#kept = 0;
    this.#refused = 0;
    this.#wait = Math.min(2 * this.#wait, LONGEST_WAIT_MS);
  }
}
