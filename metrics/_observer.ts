// What Histogram and Summary share: they observe values, and time functions and scopes with it.

import { Metric } from "./_metric.ts";
import { timed, type Timer, TimerImpl } from "./_timer.ts";

/**
 * A metric that observes values: the timers of Histogram and Summary are built on `observe()`.
 *
 * @internal The base of `Histogram` and `Summary`, not an entry point.
 */
export abstract class Observer extends Metric {
  /**
   * Records one observation.
   *
   * @param value The observed value.
   */
  abstract observe(value: number): void;

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
}
