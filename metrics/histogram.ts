/**
 * Histogram: observations counted in buckets.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import type {
  Exemplar,
  HistogramFamily,
  HistogramSeries,
  Labels,
  MetricFamily,
  NativeBucket,
  ValueSeries,
} from "../core/types.ts";
import { formatBound } from "../core/_format.ts";
import { SCHEMA_MIN, schemaFor } from "../core/_exponential.ts";
import { valueNames } from "../core/_values.ts";
import { sampleNames } from "./_check.ts";
import { labelsFirst, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";
import { BUCKET_LABEL, BucketGroup, groupStored, Merged } from "./_sketch.ts";
import { Observer } from "./_observer.ts";
import { checkNumber } from "./_timer.ts";
import { checkExemplar, type ExemplarLabels } from "./_exemplar.ts";

/** The default buckets, as in pytheus and client_python. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  Infinity,
]);

/** Options of {@linkcode Histogram}. */
export interface HistogramOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the histogram as `this`, before its values are read. */
  collect?(this: Histogram<L>): void | Promise<void>;
  /**
   * Sorted, finite upper bounds; `+Inf` is added when missing. {@linkcode DEFAULT_BUCKETS}
   * otherwise, but for a native histogram, which then has only the `+Inf` bucket.
   */
  buckets?: readonly number[];
  /**
   * Makes it a native histogram too: sparse exponential buckets, exposed in the protobuf format
   * (`true` for the defaults). Classic buckets are kept when `buckets` is given.
   */
  native?: boolean | NativeHistogramOptions;
}

/** The options of a native histogram, after client_golang's `NativeHistogram…` options. */
export interface NativeHistogramOptions {
  /**
   * The most a bucket's upper bound may grow over the one before: 1.1 unless given. The schema
   * is the coarsest whose growth is no more: 1.1 gives schema 3, 8 buckets per power of two.
   */
  bucketFactor?: number;
  /**
   * The most buckets a series keeps (in this process): 160 unless given. Past it, the schema
   * goes down by one, merging buckets two by two, until they fit (not below schema -4).
   */
  maxBuckets?: number;
  /** Observations no farther from zero are counted in the zero bucket: 2 ** -128 unless given. */
  zeroThreshold?: number;
}

// What a native histogram is made with.
interface Native {
  readonly bounds: readonly number[];
  readonly schema: number;
  readonly maxBuckets: number;
  readonly zeroThreshold: number;
}

const claims = (name: string) => sampleNames("histogram", name);
const OPTIONS = ["buckets", "native"] as const;

const SPEC: TypeSpec = { type: "histogram", reserved: "le", claims, options: OPTIONS };

// A native histogram keeps its buckets, classic and native, and its sum as counters with one
// more label.
const NATIVE_SPEC: TypeSpec = {
  type: "histogram",
  reserved: "le",
  claims,
  options: OPTIONS,
  storedLabel: () => BUCKET_LABEL,
  storedType: "counter",
  present: (family, extra) => present(family, extra as Native),
};

/**
 * Histogram counts observations (latencies, sizes) in buckets, and keeps their sum and count.
 *
 * @example
 * ```ts
 * import { Histogram, Registry } from "../mod.ts";
 *
 * const latency = new Histogram({
 *   name: "request_seconds",
 *   help: "Request latency",
 *   buckets: [0.1, 1, 5],
 *   registry: new Registry(),
 * });
 * latency.observe(0.42);
 * {
 *   using _ = latency.startTimer(); // observes the elapsed seconds at the end of the block
 * }
 * ```
 */
export class Histogram<const L extends string = string> extends Observer<L> {
  #bounds: readonly number[];
  // A classic histogram's values: the count of each bucket on its own, then the sum.
  #values: SeriesValues | undefined;
  // A native histogram's: the classic buckets' counts, the sum, and the native buckets at the
  // current schema.
  #native: Native | undefined;
  #classic: SeriesValues[] = [];
  #sum: SeriesValues | undefined;
  // The labels of the classic buckets' and the sum's stored series, made once.
  #classicLabels: Labels[] = [];
  #sumLabels: Labels | undefined;
  #group: BucketGroup | undefined;

  /**
   * Creates a histogram and registers it.
   *
   * @param options Name, help, labels, buckets and registry.
   * @throws {TypeError} For an invalid name, label name (`le` is reserved) or buckets.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: HistogramOptions<L>) {
    super(options, isNative(options) ? NATIVE_SPEC : SPEC, () => checkOptions(options as HistogramOptions));
    const extra = this._extra as readonly number[] | Native;
    if (Array.isArray(extra)) {
      this.#bounds = extra as readonly number[];
    } else {
      this.#native = extra as Native;
      this.#bounds = this.#native.bounds;
    }
    this._renew();
  }

  /**
   * Records one observation.
   *
   * @param value The observed value.
   * @throws {RangeError} For NaN.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  observe(value: number, exemplar?: ExemplarLabels, timestamp?: number): void {
    if (typeof value !== "number" || value !== value) throw invalid(value, this.name, exemplar);
    const bounds = this.#bounds;
    let i = 0;
    while (value > bounds[i]) i++;
    const values = this.#values;
    if (values !== undefined) {
      values.inc(i, 1);
      values.inc(bounds.length, value);
      if (exemplar !== undefined) values.exemplar?.(i, checkExemplar(exemplar, value, timestamp, this.name));
      return;
    }
    const bucket = this.#classic[i];
    bucket.inc(0, 1);
    this.#sum!.inc(0, value);
    const group = this.#group!;
    group.add(value, Infinity);
    if (group.size > this.#native!.maxBuckets) this.#reduce();
    if (exemplar !== undefined) bucket.exemplar?.(0, checkExemplar(exemplar, value, timestamp, this.name));
  }

  // Halves the resolution until the buckets fit, moving this process's counts.
  #reduce(): void {
    let group = this.#group!;
    while (group.size > this.#native!.maxBuckets && group.schema > SCHEMA_MIN) {
      const coarser = new BucketGroup(
        group.owner,
        String(group.schema - 1),
        group.schema - 1,
        group.zeroThreshold,
      );
      group.reduceInto(coarser);
      group = coarser;
    }
    this.#group = group;
  }

  /** The label sets of this child's stored series. */
  protected override _stored(): readonly Labels[] {
    if (this.#native === undefined) return super._stored();
    const out = [...this.#classicLabels, this.#sumLabels!];
    for (const bucket of this.#group!.buckets()) out.push(bucket.labels);
    return out;
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values?.dispose?.();
    for (const bucket of this.#classic) bucket.dispose?.();
    this.#sum?.dispose?.();
    if (this.#group !== undefined) { for (const bucket of this.#group.buckets()) bucket.values.dispose?.(); }
  }

  /** Creates the values of this series afresh, at construction and after `reset()`. */
  protected _renew(): void {
    const native = this.#native;
    if (native === undefined) {
      this.#values = this._values(valueNames("histogram", this.#bounds));
      return;
    }
    if (this.#sumLabels === undefined) {
      this.#classicLabels = this.#bounds.map((bound) => this._storedLabels(`le:${formatBound(bound)}`));
      this.#sumLabels = this._storedLabels("sum");
    }
    const labels = this.#classicLabels;
    this.#classic = this.#bounds.map((bound, i) => this._storedValues(`le:${formatBound(bound)}`, labels[i]));
    this.#sum = this._storedValues("sum", this.#sumLabels);
    this.#group = new BucketGroup(
      this._bucketOwner(),
      String(native.schema),
      native.schema,
      native.zeroThreshold,
    );
  }

  /** Reads the series of this child: a native histogram's stored series, as `present` takes them. */
  protected _read(): HistogramSeries | Promise<HistogramSeries> | ValueSeries[] | Promise<ValueSeries[]> {
    const values = this.#values;
    if (values !== undefined) {
      const labels = this.labelValues;
      const all = values.getAll();
      const exemplars = values.exemplars?.();
      if (Array.isArray(all) && !(exemplars instanceof Promise)) return series(labels, all, exemplars);
      return Promise.all([all, exemplars]).then<HistogramSeries>(([all, exemplars]) =>
        series(labels, all, exemplars)
      );
    }
    const read = this.#classicLabels.map((labels, i) => readValue(labels, this.#classic[i]));
    read.push(readValue(this.#sumLabels!, this.#sum!));
    for (const bucket of this.#group!.buckets()) read.push(readValue(bucket.labels, bucket.values));
    return read.some((r) => r instanceof Promise) ? Promise.all(read) : read as ValueSeries[];
  }
}

function isNative(options: unknown): boolean {
  if (typeof options !== "object" || options === null) return false;
  const native = (options as HistogramOptions).native;
  return native !== undefined && native !== false;
}

// The bounds of a classic histogram, or what a native one is made with.
function checkOptions(options: HistogramOptions): readonly number[] | Native {
  const { native, name } = options;
  if (native === undefined || native === false) return checkBuckets(options.buckets, name);
  if (native !== true && (typeof native !== "object" || native === null || Array.isArray(native))) {
    throw new TypeError(
      `Invalid native for histogram "${name}": expected true or an object of bucketFactor, maxBuckets and zeroThreshold`,
    );
  }
  const given: NativeHistogramOptions = native === true ? {} : native;
  for (const key of Object.keys(given)) {
    if (key !== "bucketFactor" && key !== "maxBuckets" && key !== "zeroThreshold") {
      throw new TypeError(
        `Unknown option "native.${key}" of histogram "${name}": expected one of "bucketFactor", "maxBuckets", "zeroThreshold"`,
      );
    }
  }
  const { bucketFactor = 1.1, maxBuckets = 160, zeroThreshold = 2 ** -128 } = given;
  if (typeof bucketFactor !== "number" || !(bucketFactor > 1 && bucketFactor < Infinity)) {
    throw new RangeError(
      `Invalid native.bucketFactor for histogram "${name}": expected a number greater than 1, got ${
        String(bucketFactor)
      }`,
    );
  }
  if (
    typeof maxBuckets !== "number" ||
    !(Number.isInteger(maxBuckets) && maxBuckets >= 1 || maxBuckets === Infinity)
  ) {
    throw new RangeError(
      `Invalid native.maxBuckets for histogram "${name}": expected a whole number of at least 1, or Infinity, got ${
        String(maxBuckets)
      }`,
    );
  }
  if (typeof zeroThreshold !== "number" || !(zeroThreshold >= 0 && zeroThreshold < Infinity)) {
    throw new RangeError(
      `Invalid native.zeroThreshold for histogram "${name}": expected a finite number of at least 0, got ${
        String(zeroThreshold)
      }`,
    );
  }
  return Object.freeze({
    bounds: options.buckets === undefined ? Object.freeze([Infinity]) : checkBuckets(options.buckets, name),
    schema: schemaFor(bucketFactor),
    maxBuckets,
    zeroThreshold,
  });
}

// The histogram family from the family as stored: classic buckets and sum, and the native
// buckets of every process, merged at the coarsest schema any of them wrote.
function present(family: MetricFamily, native: Native): HistogramFamily {
  const bounds = native.bounds;
  const position = new Map(bounds.map((bound, i) => [formatBound(bound), i]));
  const out: HistogramSeries[] = [];
  for (const { labels, parts } of groupStored(family)) {
    const counts = new Array<number>(bounds.length).fill(0);
    let exemplars: Exemplar[] | undefined;
    let sum = 0;
    let zeroCount = 0;
    let schema = native.schema;
    for (const { parsed, value } of parts) {
      if ((parsed.kind === "p" || parsed.kind === "n") && value !== 0 && parsed.group < schema) {
        schema = parsed.group;
      }
    }
    const merged = new Merged(schema);
    for (const { parsed, value, series } of parts) {
      switch (parsed.kind) {
        case "le": {
          const i = position.get(parsed.bound);
          if (i === undefined) break;
          counts[i] += value;
          if (series.exemplar !== undefined) (exemplars ??= [])[i] = series.exemplar;
          break;
        }
        case "sum":
          sum += value;
          break;
        case "z":
          zeroCount += value;
          break;
        case "p":
        case "n":
          merged.add(parsed.kind, parsed.index, parsed.group, value);
          break;
      }
    }
    let count = 0;
    for (let i = 0; i < counts.length; i++) counts[i] = count += counts[i];
    const sparse = {
      schema,
      zeroThreshold: native.zeroThreshold,
      zeroCount,
      positive: sorted(merged.positive),
      negative: sorted(merged.negative),
    };
    out.push(
      exemplars === undefined
        ? { labels, buckets: counts, sum, count, native: sparse }
        : { labels, buckets: counts, sum, count, exemplars, native: sparse },
    );
  }
  const { name, help } = family;
  return { name, help, type: "histogram", buckets: bounds, series: out };
}

function sorted(map: ReadonlyMap<number, number>): NativeBucket[] {
  const out: NativeBucket[] = [];
  for (const [index, count] of map) if (count !== 0) out.push({ index, count });
  return out.sort((a, b) => a.index - b.index);
}

function series(
  labels: HistogramSeries["labels"],
  values: number[],
  exemplars: readonly (Exemplar | undefined)[] | undefined,
): HistogramSeries {
  const sum = values.pop()!;
  let count = 0;
  for (let i = 0; i < values.length; i++) values[i] = count += values[i];
  return exemplars === undefined
    ? { labels, buckets: values, sum, count }
    : { labels, buckets: values, sum, count, exemplars };
}

function invalid(value: unknown, metric: string, second: unknown): Error {
  if (typeof value === "object" && value !== null) return labelsFirst(metric, "observe", value, second);
  if (typeof value !== "number") return checkNumber(value, "observe()", metric) as never;
  return new RangeError(`Invalid value for observe() on metric "${metric}": NaN`);
}

/** Validates histogram buckets and adds the trailing `+Inf`. */
export function checkBuckets(buckets: unknown, metric: string): readonly number[] {
  if (buckets === undefined) return DEFAULT_BUCKETS;
  if (!Array.isArray(buckets)) {
    throw new TypeError(`Invalid buckets for histogram "${metric}": expected an array of numbers`);
  }
  const out: number[] = [];
  for (const [i, bound] of buckets.entries()) {
    if (typeof bound !== "number" || Number.isNaN(bound)) {
      throw new TypeError(`Invalid buckets for histogram "${metric}": ${String(bound)} is not a number`);
    }
    if (bound === Infinity && i !== buckets.length - 1) {
      throw new RangeError(`Invalid buckets for histogram "${metric}": +Inf must be the last bucket`);
    }
    if (bound === -Infinity) {
      throw new RangeError(`Invalid buckets for histogram "${metric}": -Inf is not a bucket bound`);
    }
    if (i > 0 && !(bound > out[i - 1])) {
      throw new RangeError(`Invalid buckets for histogram "${metric}": bounds must be strictly increasing`);
    }
    out.push(bound);
  }
  if (out[out.length - 1] !== Infinity) out.push(Infinity);
  return Object.freeze(out);
}
