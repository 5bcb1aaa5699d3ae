/**
 * Gauge: a value that goes up and down.
 *
 * @module
 */

import { GAUGE_MODES, type GaugeMode, INSTANCE_LABEL, type SeriesValues } from "../core/backend.ts";
import type { ValueSeries } from "../core/types.ts";
import {
  labelsFirst,
  type LabelValues,
  Metric,
  type MetricOptions,
  readValue,
  type TypeSpec,
} from "./_metric.ts";
import { checkNumber, type InProgress, InProgressImpl, timed, type Timer, TimerImpl } from "./_timer.ts";

/** Options of {@linkcode Gauge}. */
export interface GaugeOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the gauge as `this`, before its values are read. */
  collect?(this: Gauge<L>): void | Promise<void>;
  /**
   * How the values of many processes combine on a shared backend (`redis`, `upstash`):
   * `"shared"` by default. See {@linkcode GaugeMode}.
   */
  mode?: GaugeMode;
}

function checkMode(mode: unknown, metric: string, labelNames: readonly string[] | undefined): GaugeMode {
  if (mode === undefined) return "shared";
  if (!(GAUGE_MODES as readonly unknown[]).includes(mode)) {
    throw new TypeError(
      `Invalid mode ${JSON.stringify(mode)} for gauge "${metric}": expected one of ${
        GAUGE_MODES.map((m) => `"${m}"`).join(", ")
      }`,
    );
  }
  if ((mode === "all" || mode === "liveall") && labelNames?.includes(INSTANCE_LABEL)) {
    throw new TypeError(
      `Invalid label name "${INSTANCE_LABEL}" for gauge "${metric}": mode "${mode}" adds it`,
    );
  }
  return mode as GaugeMode;
}

const SPEC: TypeSpec = { type: "gauge", claims: (name) => [name], options: ["mode"] };

/**
 * Gauge holds a value that goes up and down: requests in flight, queue length, temperature.
 *
 * @example Track requests in flight
 * ```ts
 * import { Gauge, Registry } from "../mod.ts";
 *
 * const inflight = new Gauge({ name: "inflight_requests", help: "In flight", registry: new Registry() });
 * {
 *   using _ = inflight.trackInProgress(); // +1 now, -1 at the end of the block, even on throw
 * }
 * ```
 */
export class Gauge<const L extends string = string> extends Metric<L> {
  #values: SeriesValues;

  /**
   * Creates a gauge and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name, label name or default label.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: GaugeOptions<L>) {
    super(options, SPEC, () => checkMode(options.mode, options.name, options.labelNames));
    this.#values = this._values();
  }

  /** How the gauge combines the values of many processes on a shared backend. */
  get gaugeMode(): GaugeMode {
    return this._extra as GaugeMode;
  }

  /**
   * Adds `value`.
   *
   * @param value The amount, 1 by default.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  inc(value = 1): void {
    if (typeof value !== "number") this.#invalid(value, "inc", arguments[1]);
    this.#values.inc(0, value);
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount, 1 by default.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  dec(value = 1): void {
    if (typeof value !== "number") this.#invalid(value, "dec", arguments[1]);
    this.#values.dec(0, value);
  }

  /**
   * Sets the value.
   *
   * @param value The new value.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  set(value: number): void {
    if (typeof value !== "number") this.#invalid(value, "set", arguments[1]);
    this.#values.set(0, value);
  }

  /** Sets the value to the current Unix time in seconds. */
  setToCurrentTime(): void {
    this.#values.set(0, Date.now() / 1000);
  }

  /**
   * Increments now and returns a tracker that decrements once, when disposed or ended.
   *
   * @returns The tracker; use it with `using`, or call `end()` in a `finally`.
   */
  trackInProgress(): InProgress {
    const values = this.#values;
    values.inc(0, 1);
    return new InProgressImpl(() => values.dec(0, 1));
  }

  /**
   * Starts a timer that sets the gauge to the elapsed seconds when stopped or disposed. Labels
   * given here, and to `stop(labels)`, are bound onto the gauge's: those known only at the end
   * (a status) go to `stop()`.
   *
   * @param labels Label values known now.
   * @returns The timer.
   * @throws {TypeError} For unknown labels or values that are not strings.
   */
  startTimer(labels?: LabelValues<L>): Timer<L> {
    const start = labels === undefined ? this : this.labels(labels);
    return new TimerImpl<L>((seconds, end) => (end === undefined ? start : start.labels(end)).set(seconds));
  }

  /**
   * Runs `fn` (sync or async) and sets the gauge to its duration in seconds.
   *
   * @param fn The function to time.
   * @returns What `fn` returns.
   */
  time<T>(fn: () => T): T {
    if (!this.isObservable) throw this._incomplete();
    const values = this.#values;
    return timed(fn, (seconds) => values.set(0, seconds));
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

  #invalid(value: unknown, method: string, second: unknown): never {
    if (typeof value === "object" && value !== null) throw labelsFirst(this.name, method, value, second);
    return checkNumber(value, `${method}()`, this.name) as never;
  }
}
