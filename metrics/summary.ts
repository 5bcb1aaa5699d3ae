/**
 * Summary: the count and sum of observations, and optionally quantiles over a sliding window.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import type { Labels, MetricFamily, SummaryFamily, SummarySeries, ValueSeries } from "../core/types.ts";
import { valueNames } from "../core/_values.ts";
import { quantiles as rank } from "../core/_exponential.ts";
import { sampleNames } from "./_check.ts";
import { labelsFirst, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";
import { Observer } from "./_observer.ts";
import { BUCKET_LABEL, BucketGroup, groupStored, Merged, parseBucket } from "./_sketch.ts";
import { checkNumber } from "./_timer.ts";
import { describe } from "../core/_names.ts";

/** Options of {@linkcode Summary}. */
export interface SummaryOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the summary as `this`, before its values are read. */
  collect?(this: Summary<L>): void | Promise<void>;
  /**
   * The ranks to expose as `{quantile="…"}` series, each between 0 and 1 (`[0.5, 0.9, 0.99]`).
   * Without them the summary keeps only its count and sum.
   */
  quantiles?: readonly number[];
  /** How long an observation counts in the quantiles, in seconds: 600 unless given. */
  maxAgeSeconds?: number;
  /** The slices the window moves by: `maxAgeSeconds / ageBuckets` seconds each; 5 unless given. */
  ageBuckets?: number;
}

/** The schema of a summary's buckets: 64 per power of two, at most 0.54 % relative error. */
export const SUMMARY_SCHEMA = 6;
/** The most buckets a summary series keeps per slice of its window in one process. */
export const SUMMARY_MAX_BUCKETS = 2048;

// The window of a summary with quantiles.
interface Window {
  readonly quantiles: readonly number[];
  readonly maxAgeMs: number;
  readonly ageBuckets: number;
  // The length of a slice, in milliseconds.
  readonly slice: number;
}

const OPTIONS = ["quantiles", "maxAgeSeconds", "ageBuckets"] as const;
const claims = (name: string) => sampleNames("summary", name);

const SPEC: TypeSpec = { type: "summary", reserved: "quantile", claims, options: OPTIONS };

// A summary with quantiles keeps its count, sum and buckets as counters with one more label.
const WINDOW_SPEC: TypeSpec = {
  type: "summary",
  reserved: "quantile",
  claims,
  options: OPTIONS,
  storedLabel: () => BUCKET_LABEL,
  storedType: "counter",
  // A slice's buckets, once removed, are never written again.
  windowed: true,
  present: (family, extra) => present(family, extra as Window),
  expired(value, extra) {
    const parsed = parseBucket(value);
    return parsed !== undefined && (parsed.kind === "p" || parsed.kind === "n" || parsed.kind === "z") &&
      parsed.group < oldestSlice(extra as Window, Date.now());
  },
};

// The start of the oldest slice still in the window at `now`, less half a millisecond (slice
// starts are rounded to whole milliseconds).
function oldestSlice(window: Window, now: number): number {
  const current = Math.round(Math.floor(now / window.slice) * window.slice);
  return current - (window.ageBuckets - 1) * window.slice - 0.5;
}

/**
 * Summary keeps the count and the sum of observations, exposed as `_count` and `_sum`, and,
 * given `quantiles`, the value at each of those ranks among the observations of the last
 * `maxAgeSeconds` (600), exposed as `{quantile="0.99"}` series.
 *
 * The quantiles are kept in a sketch that adds up: exponential buckets (64 per power of two),
 * counted per slice of the window. On a backend shared by threads or processes, each adds its
 * bucket counts to the shared ones, so a quantile is that of every observation of the whole
 * fleet, within 1 % of the exact value (0.54 % at most, from the bucket width). A quantile is the
 * value of rank `q * (n - 1)` among the `n` observations in the window, counted from the
 * smallest; NaN when the window is empty. The window moves by slices of
 * `maxAgeSeconds / ageBuckets`: an observation counts for between `maxAgeSeconds` less one
 * slice and `maxAgeSeconds`.
 *
 * @example
 * ```ts
 * import { Registry, Summary } from "../mod.ts";
 *
 * const sizes = new Summary({ name: "response_bytes", help: "Response sizes", registry: new Registry() });
 * sizes.observe(512);
 *
 * const latency = new Summary({
 *   name: "request_seconds",
 *   help: "Request latency",
 *   quantiles: [0.5, 0.9, 0.99],
 *   maxAgeSeconds: 300,
 *   registry: new Registry(),
 * });
 * latency.observe(0.042);
 * ```
 */
export class Summary<const L extends string = string> extends Observer<L> {
  // Without quantiles: the count, then the sum.
  #values: SeriesValues | undefined;
  // With quantiles: the window, count and sum, and the slices of the window this process wrote.
  #window: Window | undefined;
  #count: SeriesValues | undefined;
  #sum: SeriesValues | undefined;
  // The labels of the count's and the sum's stored series, made once.
  #countLabels: Labels | undefined;
  #sumLabels: Labels | undefined;
  #slices: BucketGroup[] = [];
  #current: BucketGroup | undefined;
  #ends = -Infinity;

  /**
   * Creates a summary and registers it.
   *
   * @param options Name, help, labels, quantiles and their window, and registry.
   * @throws {TypeError} For an invalid name or label name (`quantile` is reserved), or invalid
   * quantiles, `maxAgeSeconds` or `ageBuckets`.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: SummaryOptions<L>) {
    super(options, withQuantiles(options) ? WINDOW_SPEC : SPEC, () => checkWindow(options as SummaryOptions));
    this.#window = this._extra as Window | undefined;
    this._renew();
  }

  /**
   * Records one observation.
   *
   * @param value The observed value.
   * @throws {RangeError} For NaN.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  observe(value: number): void {
    if (typeof value === "object" && value !== null) {
      throw labelsFirst(this.name, "observe", value, arguments[1]);
    }
    if (typeof value !== "number") checkNumber(value, "observe()", this.name);
    if (value !== value) throw new RangeError(`Invalid value for observe() on metric "${this.name}": NaN`);
    const values = this.#values;
    if (values !== undefined) {
      values.inc(0, 1);
      values.inc(1, value);
      return;
    }
    this.#count!.inc(0, 1);
    this.#sum!.inc(0, value);
    const now = Date.now();
    if (now >= this.#ends) this.#rotate(now);
    this.#current!.add(value, SUMMARY_MAX_BUCKETS);
  }

  // Starts the slice that holds `now`, and drops those that left the window.
  #rotate(now: number): void {
    const { slice, ageBuckets } = this.#window!;
    const index = Math.floor(now / slice);
    const start = Math.round(index * slice);
    this.#ends = Math.round((index + 1) * slice);
    const oldest = start - (ageBuckets - 1) * slice;
    const kept: BucketGroup[] = [];
    for (const group of this.#slices) {
      if (Number(group.key) > oldest - 0.5) kept.push(group);
      else group.expire();
    }
    let current = kept.find((group) => group.key === String(start));
    if (current === undefined) {
      current = new BucketGroup(this._bucketOwner(), String(start), SUMMARY_SCHEMA, 0);
      kept.push(current);
    }
    this.#slices = kept;
    this.#current = current;
  }

  /** The label sets of this child's stored series. */
  protected override _stored(): readonly Labels[] {
    if (this.#window === undefined) return super._stored();
    const out = [this.#countLabels!, this.#sumLabels!];
    for (const group of this.#slices) for (const bucket of group.buckets()) out.push(bucket.labels);
    return out;
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values?.dispose?.();
    this.#count?.dispose?.();
    this.#sum?.dispose?.();
    for (const group of this.#slices) for (const bucket of group.buckets()) bucket.values.dispose?.();
  }

  /** Creates the values of this series afresh, at construction and after `reset()`. */
  protected _renew(): void {
    if (this.#window === undefined) {
      this.#values = this._values(valueNames("summary"));
      return;
    }
    this.#countLabels ??= this._storedLabels("count");
    this.#sumLabels ??= this._storedLabels("sum");
    this.#count = this._storedValues("count", this.#countLabels);
    this.#sum = this._storedValues("sum", this.#sumLabels);
    this.#slices = [];
    this.#current = undefined;
    this.#ends = -Infinity;
  }

  /** Reads the series of this child: with quantiles, its stored series, as `present` takes them. */
  protected _read(): SummarySeries | Promise<SummarySeries> | ValueSeries[] | Promise<ValueSeries[]> {
    const values = this.#values;
    if (values !== undefined) {
      const labels = this.labelValues;
      const all = values.getAll();
      const done = ([count, sum]: number[]): SummarySeries => ({ labels, count, sum });
      return Array.isArray(all) ? done(all) : all.then<SummarySeries>(done);
    }
    // Slices that left the window since the last observation are read too: present() drops them.
    const read = [
      readValue(this.#countLabels!, this.#count!),
      readValue(this.#sumLabels!, this.#sum!),
    ];
    for (const group of this.#slices) {
      for (const bucket of group.buckets()) read.push(readValue(bucket.labels, bucket.values));
    }
    return read.some((r) => r instanceof Promise) ? Promise.all(read) : read as ValueSeries[];
  }
}

function withQuantiles(options: unknown): boolean {
  return typeof options === "object" && options !== null &&
    (options as SummaryOptions).quantiles !== undefined;
}

// The window of a summary with quantiles; undefined without them.
function checkWindow(options: SummaryOptions): Window | undefined {
  const { quantiles, maxAgeSeconds, ageBuckets, name } = options;
  if (quantiles === undefined) {
    for (const key of ["maxAgeSeconds", "ageBuckets"] as const) {
      if (options[key] !== undefined) {
        throw new TypeError(
          `Invalid ${key} for summary "${name}": a window is for quantiles, and "quantiles" is not given`,
        );
      }
    }
    return undefined;
  }
  if (!Array.isArray(quantiles)) {
    throw new TypeError(
      `Invalid quantiles for summary "${name}": expected an array of numbers between 0 and 1`,
    );
  }
  const ranks: number[] = [];
  for (const q of quantiles) {
    if (typeof q !== "number" || !(q >= 0 && q <= 1)) {
      throw new RangeError(
        `Invalid quantiles for summary "${name}": ${
          typeof q === "number" ? q : JSON.stringify(q) ?? String(q)
        } is not a number between 0 and 1`,
      );
    }
    ranks.push(q);
  }
  ranks.sort((a, b) => a - b);
  for (let i = 1; i < ranks.length; i++) {
    if (ranks[i] === ranks[i - 1]) {
      throw new RangeError(`Invalid quantiles for summary "${name}": ${ranks[i]} is given twice`);
    }
  }
  const maxAge = maxAgeSeconds ?? 600;
  const slices = ageBuckets ?? 5;
  for (const [key, value] of [["maxAgeSeconds", maxAge], ["ageBuckets", slices]] as const) {
    if (typeof value !== "number") {
      throw new TypeError(`Invalid ${key} for summary "${name}": expected a number, got ${describe(value)}`);
    }
  }
  if (!(maxAge > 0 && maxAge < Infinity)) {
    throw new RangeError(
      `Invalid maxAgeSeconds for summary "${name}": expected a positive number of seconds, got ${
        String(maxAge)
      }`,
    );
  }
  if (!Number.isInteger(slices) || slices < 1 || slices > 1000) {
    throw new RangeError(
      `Invalid ageBuckets for summary "${name}": expected a whole number from 1 to 1000, got ${
        String(slices)
      }`,
    );
  }
  const maxAgeMs = maxAge * 1000;
  return Object.freeze({
    quantiles: Object.freeze(ranks),
    maxAgeMs,
    ageBuckets: slices,
    slice: maxAgeMs / slices,
  });
}

// The summary family from the family as stored: count, sum, and the quantiles of the buckets
// of the slices still in the window, whoever wrote them.
function present(family: MetricFamily, window: Window): SummaryFamily {
  // A slice counts while it is one of the last ageBuckets, the current one included.
  const oldest = oldestSlice(window, Date.now());
  const series: SummarySeries[] = [];
  for (const { labels, parts } of groupStored(family)) {
    let count = 0;
    let sum = 0;
    const merged = new Merged(SUMMARY_SCHEMA);
    for (const { parsed, value } of parts) {
      if (parsed.kind === "count") count = value;
      else if (parsed.kind === "sum") sum = value;
      else if (parsed.kind === "le" || parsed.group < oldest) continue;
      else if (parsed.kind === "z") merged.zero += value;
      else merged.add(parsed.kind, parsed.index, SUMMARY_SCHEMA, value);
    }
    const values = rank(merged, window.quantiles);
    series.push({
      labels,
      count,
      sum,
      quantiles: window.quantiles.map((quantile, i) => ({ quantile, value: values[i] })),
    });
  }
  const { name, help } = family;
  return { name, help, type: "summary", series };
}
