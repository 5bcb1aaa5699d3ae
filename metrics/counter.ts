/**
 * Counter: a value that only goes up.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import type { ValueSeries } from "../core/types.ts";
import { sampleNames } from "./_check.ts";
import { labelsFirst, Metric, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";
import { isThenable } from "./_timer.ts";
import { checkExemplar, type ExemplarLabels } from "./_exemplar.ts";

/** Options of {@linkcode Counter}. */
export interface CounterOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the counter as `this`, before its values are read. */
  collect?(this: Counter<L>): void | Promise<void>;
}

const SPEC: TypeSpec = {
  type: "counter",
  claims: (name) => sampleNames("counter", name),
};

/**
 * Counter counts things that only go up: requests, errors, bytes sent. It is exposed with the
 * `_total` suffix whether or not its name has it.
 *
 * A counter with labels is observed through its children, `labels({...})`, which are cached:
 * keep one in a variable for the fastest updates.
 *
 * @example
 * ```ts
 * import { Counter, Registry } from "../mod.ts";
 *
 * const registry = new Registry();
 * const requests = new Counter({
 *   name: "http_requests_total",
 *   help: "HTTP requests handled",
 *   labelNames: ["method", "status"],
 *   registry,
 * });
 * requests.labels({ method: "GET", status: "200" }).inc();
 * requests.labels({ method: "GET", status: "200" }).inc(2);
 * ```
 */
export class Counter<const L extends string = string> extends Metric<L> {
  #values: SeriesValues;

  /**
   * Creates a counter and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name, label name or default label.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: CounterOptions<L>) {
    super(options, SPEC);
    this.#values = this._values();
  }

  /**
   * Adds `value` to the counter, and keeps an exemplar of it when given one.
   *
   * @param value A non-negative number, 1 by default.
   * @param exemplar Labels that point at this increment elsewhere, such as `{ trace_id }`: at
   * most 128 characters of names and values together. The series keeps the latest, which
   * OpenMetrics writes after its sample.
   * @param timestamp When, in Unix seconds, for the exemplar; now by default.
   * @throws {RangeError} For a negative value or NaN, or an exemplar too long.
   * @throws {TypeError} When labels are missing, or for an invalid exemplar.
   */
  inc(value = 1, exemplar?: ExemplarLabels, timestamp?: number): void {
    if (typeof value !== "number" || !(value >= 0)) throw this.#invalid(value, exemplar);
    const values = this.#values;
    values.inc(0, value);
    if (exemplar !== undefined) values.exemplar?.(0, checkExemplar(exemplar, value, timestamp, this.name));
  }

  /**
   * Returns the current value (asynchronously on remote backends).
   *
   * @returns The value.
   * @throws {TypeError} When labels are missing.
   */
  get(): number | Promise<number> {
    return this.#values.get(0);
  }

  /**
   * Runs `fn` and counts one if it throws (or its promise rejects); the error is rethrown.
   *
   * @param fn A function, sync or async.
   * @returns What `fn` returns.
   */
  countExceptions<T>(fn: () => T): T {
    if (!this.isObservable) throw this._incomplete();
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.inc();
      throw error;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).catch((error) => {
        this.inc();
        throw error;
      }) as T;
    }
    return result;
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values.dispose?.();
  }

  /** Creates the values of this series afresh, after `reset()`. */
  protected _renew(): void {
    this.#values = this._values();
  }

  /** Reads the series of this child. */
  protected _read(): ValueSeries | Promise<ValueSeries> {
    return readValue(this.labelValues, this.#values);
  }

  #invalid(value: unknown, second: unknown): Error {
    if (typeof value === "object" && value !== null) return labelsFirst(this.name, "inc", value, second);
    if (typeof value !== "number") {
      return new TypeError(
        `Invalid value for inc() on counter "${this.name}": expected a number, got ${typeof value}`,
      );
    }
    return new RangeError(
      `Invalid value for inc() on counter "${this.name}": ${value} (counters only go up)`,
    );
  }
}
