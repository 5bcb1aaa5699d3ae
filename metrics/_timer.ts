// Timers and in-progress trackers: disposable, idempotent, exception-safe.

/**
 * A running timer. `stop()` records the elapsed seconds once and returns them; disposing it
 * (`using`) stops it too.
 */
export interface Timer extends Disposable {
  /** Records the elapsed seconds (only the first call records) and returns them. */
  stop(): number;
}

/** A tracker started by `trackInProgress()`: disposing or ending it undoes the increment once. */
export interface InProgress extends Disposable {
  /** Undoes the increment; later calls do nothing. */
  end(): void;
}

export class TimerImpl implements Timer {
  #start = performance.now();
  #seconds: number | undefined;
  #record: (seconds: number) => void;

  constructor(record: (seconds: number) => void) {
    this.#record = record;
  }

  stop(): number {
    if (this.#seconds === undefined) {
      this.#seconds = (performance.now() - this.#start) / 1000;
      this.#record(this.#seconds);
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
