/**
 * Histogram: observations counted in buckets.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import type { Exemplar, HistogramSeries } from "../core/types.ts";
import { valueNames } from "../core/_values.ts";
import { sampleNames } from "./_check.ts";
import { labelsFirst, type MetricOptions, type TypeSpec } from "./_metric.ts";
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
  /** Sorted, finite upper bounds; `+Inf` is added when missing. {@linkcode DEFAULT_BUCKETS} otherwise. */
  buckets?: readonly number[];
}

const SPEC: TypeSpec = {
  type: "histogram",
  reserved: "le",
  claims: (name) => sampleNames("histogram", name),
  options: ["buckets"],
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
  // The count of each bucket on its own, then the sum.
  #values: SeriesValues;

  /**
   * Creates a histogram and registers it.
   *
   * @param options Name, help, labels, buckets and registry.
   * @throws {TypeError} For an invalid name, label name (`le` is reserved) or buckets.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: HistogramOptions<L>) {
    super(options, SPEC, () => checkBuckets(options.buckets, options.name));
    const bounds = this.#bounds = this._extra as readonly number[];
    this.#values = this._values(valueNames("histogram", bounds));
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
    values.inc(i, 1);
    values.inc(bounds.length, value);
    if (exemplar !== undefined) values.exemplar?.(i, checkExemplar(exemplar, value, timestamp, this.name));
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values.dispose?.();
  }

  /** Creates the values of this series afresh, after `reset()`. */
  protected _renew(): void {
    this.#values = this._values(valueNames("histogram", this.#bounds));
  }

  /** Reads the series of this child. */
  protected _read(): HistogramSeries | Promise<HistogramSeries> {
    const labels = this.labelValues;
    const all = this.#values.getAll();
    const exemplars = this.#values.exemplars?.();
    if (Array.isArray(all) && !(exemplars instanceof Promise)) return series(labels, all, exemplars);
    return Promise.all([all, exemplars]).then(([all, exemplars]) => series(labels, all, exemplars));
  }
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
