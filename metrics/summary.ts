/**
 * Summary: the count and sum of observations.
 *
 * @module
 */

import type { Backend } from "../backends/types.ts";
import { sampleNames } from "./_check.ts";
import { Metric, type MetricOptions, type TypeSpec } from "./_metric.ts";
import { checkNumber, timed, type Timer, TimerImpl } from "./_timer.ts";
import type { SummarySeries } from "./types.ts";

/** Options of {@linkcode Summary}. */
export type SummaryOptions = MetricOptions;

const SPEC: TypeSpec = {
  type: "summary",
  reserved: "quantile",
  claims: (name) => sampleNames("summary", name),
};

/**
 * Summary keeps the count and the sum of observations, exposed as `_count` and `_sum`
 * (as pytheus does, without quantiles, so it can be summed across processes).
 *
 * @example
 * ```ts
 * import { Registry, Summary } from "../mod.ts";
 *
 * const sizes = new Summary({ name: "response_bytes", help: "Response sizes", registry: new Registry() });
 * sizes.observe(512);
 * ```
 */
export class Summary extends Metric {
  // On the memory backend the values live in #count and #sum and #backends is null; on other
  // backends #backends holds [count, sum]. Undefined while labels are missing.
  #backends: [count: Backend, sum: Backend] | null | undefined;
  #count = 0;
  #sum = 0;

  /**
   * Creates a summary and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name or label name (`quantile` is reserved).
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: SummaryOptions) {
    super(options, SPEC);
    if (this.isObservable) {
      this.#backends = this._inline ? null : [this._backend("count"), this._backend("sum")];
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
    if (typeof value !== "number") checkNumber(value, "observe()", this.name);
    if (value !== value) throw new RangeError(`Invalid value for observe() on metric "${this.name}": NaN`);
    const backends = this.#backends;
    if (backends === null) {
      this.#count++;
      this.#sum += value;
    } else if (backends === undefined) {
      throw this._incomplete();
    } else {
      backends[0].inc(1);
      backends[1].inc(value);
    }
  }

  /**
   * Starts a timer that observes the elapsed seconds when stopped or disposed.
   *
   * @returns The timer.
   * @throws {TypeError} When labels are missing.
   */
  startTimer(): Timer {
    if (this.#backends === undefined) throw this._incomplete();
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
    if (this.#backends === undefined) throw this._incomplete();
    return timed(fn, (seconds) => this.observe(seconds));
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    for (const backend of this.#backends ?? []) backend.dispose?.();
  }

  /** Reads the series of this child. */
  protected _read(): SummarySeries | Promise<SummarySeries> {
    const labels = this.labelValues;
    if (this.#backends === null) return { labels, count: this.#count, sum: this.#sum };
    const count = this.#backends![0].get();
    const sum = this.#backends![1].get();
    if (typeof count === "number" && typeof sum === "number") return { labels, count, sum };
    return Promise.all([count, sum]).then(([count, sum]) => ({ labels, count, sum }));
  }
}
