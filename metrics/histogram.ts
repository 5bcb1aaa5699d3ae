/**
 * Histogram: observations counted in buckets.
 *
 * @module
 */

import type { Backend } from "../backends/types.ts";
import { formatBound } from "../exposition/_number.ts";
import { sampleNames } from "./_check.ts";
import { Metric, type MetricOptions, type TypeSpec } from "./_metric.ts";
import { checkNumber, timed, type Timer, TimerImpl } from "./_timer.ts";
import type { HistogramSeries } from "./types.ts";

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
export interface HistogramOptions extends MetricOptions {
  /** Sorted, finite upper bounds; `+Inf` is added when missing. {@linkcode DEFAULT_BUCKETS} otherwise. */
  buckets?: readonly number[];
}

const SPEC: TypeSpec = {
  type: "histogram",
  reserved: "le",
  claims: (name) => sampleNames("histogram", name),
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
export class Histogram extends Metric {
  #bounds: readonly number[] = DEFAULT_BUCKETS;
  // Per-bucket counts and, last, the sum: numbers in #counts on the memory backend, backend
  // instances in #backends otherwise. Both undefined while labels are missing.
  #counts: number[] | undefined;
  #backends: Backend[] | undefined;

  /**
   * Creates a histogram and registers it.
   *
   * @param options Name, help, labels, buckets and registry.
   * @throws {TypeError} For an invalid name, label name (`le` is reserved) or buckets.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: HistogramOptions) {
    super(options, SPEC, () => checkBuckets(options.buckets, options.name));
    if (this.isObservable) {
      const bounds = this.#bounds = this._extra as readonly number[];
      if (this._inline) this.#counts = new Array<number>(bounds.length + 1).fill(0);
      else this.#backends = [...bucketNames(bounds), "sum"].map((name) => this._backend(name));
    }
  }

  /**
   * Records one observation.
   *
   * @param value The observed value.
   * @throws {RangeError} For NaN.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  observe(value: number): void {
    if (typeof value !== "number" || value !== value) throw invalid(value, this.name);
    const bounds = this.#bounds;
    let i = 0;
    while (value > bounds[i]) i++;
    const counts = this.#counts;
    if (counts !== undefined) {
      counts[i]++;
      counts[bounds.length] += value;
      return;
    }
    const backends = this.#backends;
    if (backends === undefined) throw this._incomplete();
    backends[i].inc(1);
    backends[bounds.length].inc(value);
  }

  /**
   * Starts a timer that observes the elapsed seconds when stopped or disposed.
   *
   * @returns The timer.
   * @throws {TypeError} When labels are missing.
   */
  startTimer(): Timer {
    if (!this.isObservable) throw this._incomplete();
    return new TimerImpl((seconds) => this.observe(seconds));
  }

  /**
   * Runs `fn` (sync or async) and observes its duration in seconds.
   *
   * @param fn The function to time.
   * @returns What `fn` returns.
   * @throws {TypeError} When labels are missing.
   */
  time<T>(fn: () => T): T {
    if (!this.isObservable) throw this._incomplete();
    return timed(fn, (seconds) => this.observe(seconds));
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    for (const backend of this.#backends ?? []) backend.dispose?.();
  }

  /** Reads the series of this child. */
  protected _read(): HistogramSeries | Promise<HistogramSeries> {
    const labels = this.labelValues;
    if (this.#counts !== undefined) return series(labels, this.#counts.slice());
    const raw = this.#backends!.map((backend) => backend.get());
    return raw.every((v) => typeof v === "number") ? series(labels, raw as number[]) : Promise.all(raw).then(
      (values) => series(labels, values),
    );
  }
}

const names = new WeakMap<readonly number[], readonly string[]>();

// The canonical names of a histogram's buckets, made once per set of bounds.
function bucketNames(bounds: readonly number[]): readonly string[] {
  let cached = names.get(bounds);
  if (cached === undefined) names.set(bounds, cached = bounds.map(formatBound));
  return cached;
}

function series(labels: HistogramSeries["labels"], values: number[]): HistogramSeries {
  const sum = values.pop()!;
  let count = 0;
  for (let i = 0; i < values.length; i++) values[i] = count += values[i];
  return { labels, buckets: values, sum, count };
}

function invalid(value: unknown, metric: string): Error {
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
