// What the exposition computes once per frozen label set (its rendered text, its encoded
// protobuf fields), kept for as long as the label set lives, up to a bound.

import type { Labels } from "./types.ts";

/** The most label sets a memo holds. */
export const MEMO_LIMIT = 1 << 16;

/**
 * Values kept per label set, in a weak map of at most MEMO_LIMIT entries. A weak map of a million
 * entries costs more than it saves: every garbage collection works through its entries (in
 * JavaScriptCore, each young-generation collection then held the event loop for over 100 ms),
 * and each time it grows past a power of two it rehashes every entry at once (60 ms in V8).
 *
 * Registries within the bound, the common case, keep every label set. Past it, a label set the
 * memo has no room for is computed each time; once as many have been turned away as the memo
 * holds, it starts afresh, so that label sets no longer used (which a weak map cannot count out)
 * give up their places.
 */
export class LabelMemo<V> {
  #map: WeakMap<Labels, V> = new WeakMap();
  #kept = 0;
  #refused = 0;

  /** The value kept for this label set, if any. */
  get(labels: Labels): V | undefined {
    return this.#map.get(labels);
  }

  /** Keeps a value for this label set, if there is room. */
  set(labels: Labels, value: V): void {
    if (this.#kept < MEMO_LIMIT) {
      this.#kept++;
      this.#map.set(labels, value);
    } else if (++this.#refused >= MEMO_LIMIT) {
      this.#map = new WeakMap();
      this.#kept = 0;
      this.#refused = 0;
    }
  }
}
