// Timers and in-progress trackers: disposable, idempotent, exception-safe.

import type { LabelValues } from "./_metric.ts";

/**
 * A running timer. `stop()` records the elapsed seconds once and returns them; disposing it
 * (`using`) stops it too. `L` is the metric's label names.
 */
export interface Timer<L extends string = string> extends Disposable {
  /**
   * Records the elapsed seconds (only the first call that records does) and returns them.
   *
   * @param labels Label values known only now (a status), added to those of the metric and of
   * `startTimer()`.
   * @throws {TypeError} For unknown labels, values that are not strings, or labels still missing.
   */
  stop(labels?: LabelValues<L>): number;
}

/** A tracker started by `trackInProgress()`: disposing or ending it undoes the increment once. */
export interface InProgress extends Disposable {
  /** Undoes the increment; later calls do nothing. */
  end(): void;
}

export class TimerImpl<L extends string = string> implements Timer<L> {
  #start = performance.now();
  #seconds: number | undefined;
  #record: (seconds: number, labels?: LabelValues<L>) => void;

  constructor(record: (seconds: number, labels?: LabelValues<L>) => void) {
    this.#record = record;
  }

  stop(labels?: LabelValues<L>): number {
    if (this.#seconds === undefined) {
      const seconds = (performance.now() - this.#start) / 1000;
      // Recorded first: a stop() that fails (labels missing) leaves the timer running.
      this.#record(seconds, labels);
      this.#seconds = seconds;
    }
    return this.#seconds;
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

export class InProgressImpl implements InProgress {
  #end: (() => void) | undefined;

  constructor(end: () => void) {
    this.#end = end;
  }

  end(): void {
    const end = this.#end;
    this.#end = undefined;
    end?.();
  }

  [Symbol.dispose](): void {
    this.end();
  }
}

/** Runs `fn` and calls `record` with its duration in seconds, after it returns, throws or settles. */
export function timed<T>(fn: () => T, record: (seconds: number) => void): T {
  if (typeof fn !== "function") throw new TypeError(`Invalid argument to time(): expected a function`);
  const timer = new TimerImpl(record);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    timer.stop();
    throw error;
  }
  if (isThenable(result)) {
    return Promise.resolve(result).finally(() => timer.stop()) as T;
  }
  timer.stop();
  return result;
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

export function checkNumber(value: unknown, what: string, metric: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Invalid value for ${what} on metric "${metric}": expected a number, got ${typeof value}`,
    );
  }
  return value;
}
