/**
 * Summary: the count and sum of observations.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import type { SummarySeries } from "../core/types.ts";
import { valueNames } from "../core/_values.ts";
import { sampleNames } from "./_check.ts";
import { labelsFirst, type MetricOptions, type TypeSpec } from "./_metric.ts";
import { Observer } from "./_observer.ts";
import { checkNumber } from "./_timer.ts";

/** Options of {@linkcode Summary}. */
export interface SummaryOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the summary as `this`, before its values are read. */
  collect?(this: Summary<L>): void | Promise<void>;
}

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
export class Summary<const L extends string = string> extends Observer<L> {
  // The count, then the sum.
  #values: SeriesValues;

  /**
   * Creates a summary and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name or label name (`quantile` is reserved).
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: SummaryOptions<L>) {
    super(options, SPEC);
    this.#values = this._values(valueNames("summary"));
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
    values.inc(0, 1);
    values.inc(1, value);
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values.dispose?.();
  }

  /** Creates the values of this series afresh, after `reset()`. */
  protected _renew(): void {
    this.#values = this._values(valueNames("summary"));
  }

  /** Reads the series of this child. */
  protected _read(): SummarySeries | Promise<SummarySeries> {
    const labels = this.labelValues;
    const values = this.#values.getAll();
    if (Array.isArray(values)) return { labels, count: values[0], sum: values[1] };
    return values.then(([count, sum]) => ({ labels, count, sum }));
  }
}
