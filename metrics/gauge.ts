/**
 * Gauge: a value that goes up and down.
 *
 * @module
 */

import { type Backend, GAUGE_MODES, type GaugeMode, INSTANCE_LABEL } from "../backends/types.ts";
import { Metric, type MetricOptions, type TypeSpec } from "./_metric.ts";
import { checkNumber, type InProgress, InProgressImpl, timed, type Timer, TimerImpl } from "./_timer.ts";
import type { ValueSeries } from "./types.ts";

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
  // On the memory backend the value lives in #value and #backend is null; on other backends
  // #backend holds it. Undefined while labels are missing.
  #backend: Backend | null | undefined;
  #value = 0;

  /**
   * Creates a gauge and registers it.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name, label name or default label.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: GaugeOptions) {
    super(options, SPEC, () => checkMode(options.mode, options.name, options.labelNames));
    if (this.isObservable) this.#backend = this._inline ? null : this._backend();
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
    this.#inc(value);
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount, 1 by default.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  dec(value = 1): void {
    if (typeof value !== "number") checkNumber(value, "dec()", this.name);
    this.#dec(value);
  }

  /**
   * Sets the value.
   *
   * @param value The new value.
   * @throws {TypeError} For a value that is not a number, or when labels are missing.
   */
  set(value: number): void {
    if (typeof value !== "number") checkNumber(value, "set()", this.name);
    this.#set(value);
  }

  /** Sets the value to the current Unix time in seconds. */
  setToCurrentTime(): void {
    this.#set(Date.now() / 1000);
  }

  /**
   * Increments now and returns a tracker that decrements once, when disposed or ended.
   *
   * @returns The tracker; use it with `using`, or call `end()` in a `finally`.
   */
  trackInProgress(): InProgress {
    this.#inc(1);
    return new InProgressImpl(() => this.#dec(1));
  }

  /**
   * Starts a timer that sets the gauge to the elapsed seconds when stopped or disposed.
   *
   * @returns The timer.
   */
  startTimer(): Timer {
    if (this.#backend === undefined) throw this._incomplete();
    return new TimerImpl((seconds) => this.#set(seconds));
  }

  /**
   * Runs `fn` (sync or async) and sets the gauge to its duration in seconds.
   *
   * @param fn The function to time.
   * @returns What `fn` returns.
   */
  time<T>(fn: () => T): T {
    if (this.#backend === undefined) throw this._incomplete();
    return timed(fn, (seconds) => this.#set(seconds));
  }

  /**
   * Returns the current value (asynchronously on remote backends).
   *
   * @returns The value.
   * @throws {TypeError} When labels are missing.
   */
  get(): number | Promise<number> {
    const backend = this.#backend;
    if (backend === null) return this.#value;
    if (backend === undefined) throw this._incomplete();
    return backend.get();
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#backend?.dispose?.();
  }

  /** Reads the series of this child. */
  protected _read(): ValueSeries | Promise<ValueSeries> {
    const labels = this.labelValues;
    const value = this.#backend === null ? this.#value : this.#backend!.get();
    return typeof value === "number" ? { labels, value } : value.then((value) => ({ labels, value }));
  }

  #inc(value: number): void {
    const backend = this.#backend;
    if (backend === null) this.#value += value;
    else if (backend === undefined) throw this._incomplete();
    else backend.inc(value);
  }

  #dec(value: number): void {
    const backend = this.#backend;
    if (backend === null) this.#value -= value;
    else if (backend === undefined) throw this._incomplete();
    else backend.dec(value);
  }

  #set(value: number): void {
    const backend = this.#backend;
    if (backend === null) this.#value = value;
    else if (backend === undefined) throw this._incomplete();
    else backend.set(value);
  }
}
