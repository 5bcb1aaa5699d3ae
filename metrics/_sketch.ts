// Sparse exponential buckets, as a summary with quantiles and a native histogram keep them: every
// bucket a series of its own, stored as a counter with one label beyond the metric's
// (`__bucket`), so every backend (memory, shared memory, Redis, any backend a user writes) keeps
// them, and processes and threads add their counts up bucket by bucket: a sketch is summed,
// never averaged.
//
// The stored label's values:
//   count, sum                     a summary's count and sum
//   le:<bound>                     a native histogram's classic bucket (its count alone)
//   <group>:p<index>               a positive bucket of a group (`p+00017`, `p-00230`)
//   <group>:n<index>               a negative bucket (by magnitude)
//   <group>:z                      the zero bucket
// A summary's group is the start of a time slice of its window, in Unix milliseconds; a native
// histogram's is its schema. This process's own count in each bucket is kept, so that buckets
// can be merged (schema reduced, lowest collapsed) by moving that count, never deleting what
// other processes wrote.

import type { SeriesValues } from "../core/backend.ts";
import { bucketIndex, coarserIndex, type Ranked } from "../core/_exponential.ts";
import type { Labels, MetricFamily, ValueSeries } from "../core/types.ts";

/** The stored label of a summary with quantiles and of a native histogram. */
export const BUCKET_LABEL = "__bucket";

/** What a group of buckets needs from the child it belongs to. */
export interface BucketOwner {
  /** The labels of the stored series with this value of the stored label, frozen. */
  labels(value: string): Labels;
  /** The values of the stored series with this value of the stored label, and these labels. */
  values(value: string, labels: Labels): SeriesValues;
  /** Deletes the stored series from a shared store. */
  remove(value: string): void;
}

/** One bucket as this process writes it. */
export interface Bucket {
  /** The value of the stored label. */
  readonly label: string;
  /** The labels of the stored series. */
  readonly labels: Labels;
  readonly values: SeriesValues;
  /** This process's count in it. */
  own: number;
}

/** The buckets of one group (a time slice, a schema) that this process writes. */
export class BucketGroup {
  readonly positive: Map<number, Bucket> = new Map();
  readonly negative: Map<number, Bucket> = new Map();
  zero: Bucket | undefined;

  constructor(
    readonly owner: BucketOwner,
    readonly key: string,
    readonly schema: number,
    readonly zeroThreshold: number,
  ) {}

  /** The number of buckets. */
  get size(): number {
    return this.positive.size + this.negative.size + (this.zero === undefined ? 0 : 1);
  }

  /**
   * Counts one value; at most `max` buckets, the lowest collapsed into the next when a new one
   * would pass it.
   */
  add(value: number, max: number): void {
    if (value > this.zeroThreshold) this.#addTo(this.positive, bucketIndex(value, this.schema), "p", max);
    else if (value < -this.zeroThreshold) {
      this.#addTo(this.negative, bucketIndex(-value, this.schema), "n", max);
    } else {
      const zero = this.zero ??= this.#make("z");
      zero.values.inc(0, 1);
      zero.own++;
    }
  }

  /** Adds `count` to bucket `index` of a side, creating it when needed. */
  move(side: "p" | "n", index: number, count: number): void {
    const map = side === "p" ? this.positive : this.negative;
    let bucket = map.get(index);
    if (bucket === undefined) map.set(index, bucket = this.#make(indexText(side, index)));
    bucket.values.inc(0, count);
    bucket.own += count;
  }

  /** Every bucket. */
  *buckets(): Generator<Bucket> {
    if (this.zero !== undefined) yield this.zero;
    yield* this.negative.values();
    yield* this.positive.values();
  }

  /**
   * Moves this process's counts into a group at a coarser schema; the buckets here are dropped
   * (a shared store keeps what other processes wrote into them, which readers merge the same way).
   */
  reduceInto(target: BucketGroup): void {
    for (const [side, map] of [["p", this.positive], ["n", this.negative]] as const) {
      for (const [index, bucket] of map) {
        if (bucket.own === 0) continue;
        target.move(side, coarserIndex(index, this.schema, target.schema), bucket.own);
        bucket.values.inc(0, -bucket.own);
      }
    }
    if (this.zero !== undefined && this.zero.own !== 0) {
      (target.zero ??= target.#make("z")).values.inc(0, this.zero.own);
      target.zero.own += this.zero.own;
      this.zero.values.inc(0, -this.zero.own);
    }
  }

  /** Drops every bucket and deletes it from a shared store: the group has left the window. */
  expire(): void {
    for (const bucket of this.buckets()) {
      bucket.values.dispose?.();
      this.owner.remove(bucket.label);
    }
    this.positive.clear();
    this.negative.clear();
    this.zero = undefined;
  }

  #addTo(map: Map<number, Bucket>, index: number, side: "p" | "n", max: number): void {
    let bucket = map.get(index);
    if (bucket === undefined) {
      if (this.size >= max) {
        // Full: the smallest magnitudes of the larger side give way.
        const larger = this.positive.size >= this.negative.size ? this.positive : this.negative;
        const lowest = lowestKey(larger);
        if (larger === map && index < lowest) {
          bucket = map.get(lowest)!;
          bucket.values.inc(0, 1);
          bucket.own++;
          return;
        }
        this.#collapse(larger, lowest, larger === this.positive ? "p" : "n");
      }
      map.set(index, bucket = this.#make(indexText(side, index)));
    }
    bucket.values.inc(0, 1);
    bucket.own++;
  }

  // Moves this process's count of the lowest bucket into the next one up, and drops it.
  #collapse(map: Map<number, Bucket>, lowest: number, side: "p" | "n"): void {
    const gone = map.get(lowest)!;
    map.delete(lowest);
    const next = lowestKey(map);
    if (next === Infinity || gone.own === 0) return;
    this.move(side, next, gone.own);
    gone.values.inc(0, -gone.own);
  }

  #make(suffix: string): Bucket {
    const label = flat(`${this.key}:${suffix}`);
    const labels = this.owner.labels(label);
    return { label, labels, values: this.owner.values(label, labels), own: 0 };
  }
}

// A bucket's side and index, the index signed and of five digits at least, so that the labels of
// one series' buckets are all as long (a store can then reuse one's space for another's).
function indexText(side: "p" | "n", index: number): string {
  return `${side}${index < 0 ? "-" : "+"}${String(Math.abs(index)).padStart(5, "0")}`;
}

// A string made by concatenation is kept as its pieces until read; reading it once flattens it.
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

function lowestKey(map: ReadonlyMap<number, Bucket>): number {
  let lowest = Infinity;
  for (const key of map.keys()) if (key < lowest) lowest = key;
  return lowest;
}

/** A stored label's value, parsed. */
export type Parsed =
  | { readonly kind: "count" }
  | { readonly kind: "sum" }
  | { readonly kind: "le"; readonly bound: string }
  | { readonly kind: "p" | "n"; readonly group: number; readonly index: number }
  | { readonly kind: "z"; readonly group: number };

const parsedCache = new Map<string, Parsed | null>();

/** Parses a stored label's value; undefined for text no theus metric writes. */
export function parseBucket(text: string): Parsed | undefined {
  let parsed = parsedCache.get(text);
  if (parsed !== undefined) return parsed ?? undefined;
  parsed = null;
  if (text === "count") parsed = { kind: "count" };
  else if (text === "sum") parsed = { kind: "sum" };
  else if (text.startsWith("le:")) parsed = { kind: "le", bound: text.slice(3) };
  else {
    const colon = text.indexOf(":");
    const group = Number(text.slice(0, colon));
    const kind = text[colon + 1];
    if (colon > 0 && Number.isInteger(group)) {
      if (kind === "z" && text.length === colon + 2) parsed = { kind: "z", group };
      else if (kind === "p" || kind === "n") {
        const index = Number(text.slice(colon + 2));
        if (Number.isInteger(index) && text.length > colon + 2) parsed = { kind, group, index };
      }
    }
  }
  if (parsedCache.size > 100_000) parsedCache.clear();
  parsedCache.set(text, parsed);
  return parsed ?? undefined;
}

/** The stored series of one series of a summary or native histogram, read and parsed. */
export interface StoredSeries {
  /** The series' labels, without the stored label. */
  readonly labels: Labels;
  /** Its stored series: parsed label value, value, and the series as read (for exemplars). */
  readonly parts: { parsed: Parsed; value: number; series: ValueSeries }[];
}

// The labels of a series without the stored label, kept per stored label set, so every scrape
// returns the same frozen objects (the exposition caches their rendered text).
const stripped = new WeakMap<Labels, Labels>();

/**
 * Groups a family as read (every stored series of every series) by the series' own labels, in
 * the order they are first seen.
 */
export function groupStored(family: MetricFamily): StoredSeries[] {
  const groups = new Map<string, StoredSeries>();
  for (const series of family.series as readonly ValueSeries[]) {
    const text = series.labels[BUCKET_LABEL];
    const parsed = text === undefined ? undefined : parseBucket(text);
    if (parsed === undefined) continue;
    let labels = stripped.get(series.labels);
    if (labels === undefined) {
      const out: Record<string, string> = {};
      for (const name in series.labels) if (name !== BUCKET_LABEL) out[name] = series.labels[name];
      labels = Object.freeze(out);
      if (Object.isFrozen(series.labels)) stripped.set(series.labels, labels);
    }
    let key = "";
    for (const name in labels) key += `${name}\u0000${labels[name]}\u0000`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, group = { labels, parts: [] });
    group.parts.push({ parsed, value: series.value, series });
  }
  return [...groups.values()];
}

/** Counts by bucket, at one schema, built up from stored buckets. */
export class Merged implements Ranked {
  readonly positive: Map<number, number> = new Map();
  readonly negative: Map<number, number> = new Map();
  zero = 0;
  constructor(public schema: number) {}

  add(kind: "p" | "n", index: number, schema: number, count: number): void {
    if (count === 0) return;
    const map = kind === "p" ? this.positive : this.negative;
    const at = coarserIndex(index, schema, this.schema);
    map.set(at, (map.get(at) ?? 0) + count);
  }
}
