// What Histogram and Summary share: they observe values, and time functions and scopes with it.

import { type LabelValues, Metric } from "./_metric.ts";
import { timed, type Timer, TimerImpl } from "./_timer.ts";

/**
 * A metric that observes values: the timers of Histogram and Summary are built on `observe()`.
 *
 * @internal The base of `Histogram` and `Summary`, not an entry point.
 */
export abstract class Observer<L extends string = string> extends Metric<L> {
  /**
   * Records one observation.
   *
   * @param value The observed value.
   */
  abstract observe(value: number): void;

  /**
   * Starts a timer that observes the elapsed seconds when stopped or disposed. Labels given
   * here, and to `stop(labels)`, are bound onto the metric's: those known only at the end (a
   * status code) go to `stop()`. A timer disposed by `using` observes with the labels it has.
   *
   * @param labels Label values known now.
   * @returns The timer.
   * @throws {TypeError} For unknown labels or values that are not strings; `stop()` throws when
   * labels are still missing.
   */
  startTimer(labels?: LabelValues<L>): Timer<L> {
    const start = labels === undefined ? this : this.labels(labels);
    return new TimerImpl<L>((seconds, end) =>
      (end === undefined ? start : start.labels(end)).observe(seconds)
    );
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
