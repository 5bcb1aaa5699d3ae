/**
 * Gauge: a value that goes up and down.
 *
 * @module
 */

import { GAUGE_MODES, type GaugeMode, INSTANCE_LABEL, type SeriesValues } from "../core/backend.ts";
import type { ValueSeries } from "../core/types.ts";
import { Metric, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";
import { checkNumber, type InProgress, InProgressImpl, timed, type Timer, TimerImpl } from "./_timer.ts";

/** Options of {@linkcode Gauge}. */
export interface GaugeOptions extends MetricOptions {
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

const SPEC: TypeSpec = { type: "gauge", claims: (name) => [name] };

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
export class Gauge extends Metric {
  #values: SeriesValues;

  /**
   * Creates a gauge and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name, label name or default label.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: GaugeOptions) {
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
    if (typeof value !== "number") checkNumber(value, "inc()", this.name);
    this.#values.inc(0, value);
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount, 1 by default.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  dec(value = 1): void {
    if (typeof value !== "number") checkNumber(value, "dec()", this.name);
    this.#values.dec(0, value);
  }

  /**
   * Sets the value.
   *
   * @param value The new value.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  set(value: number): void {
    if (typeof value !== "number") checkNumber(value, "set()", this.name);
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
   * Starts a timer that sets the gauge to the elapsed seconds when stopped or disposed.
   *
   * @returns The timer.
   */
  startTimer(): Timer {
    if (!this.isObservable) throw this._incomplete();
    const values = this.#values;
    return new TimerImpl((seconds) => values.set(0, seconds));
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

  /** Reads the series of this child. */
  protected _read(): ValueSeries | Promise<ValueSeries> {
    return readValue(this.labelValues, this.#values);
  }
}
