/**
 * The backend protocol: where metric values live.
 *
 * A backend instance holds one value: the value of a counter or gauge series, or one bucket,
 * the sum or the count of a histogram or summary series. Writing a backend means writing a
 * class that implements {@linkcode Backend} and whose constructor matches
 * {@linkcode BackendClass}.
 *
 * @module
 */

import type { Labels, MetricType } from "../metrics/types.ts";

/** Backend configuration, as given to `loadBackend` or read from `THEUS_BACKEND_CONFIG`. */
export type BackendConfig = Record<string, unknown>;

/** What a backend knows of the series it holds a value for. */
export interface MetricInfo {
  /** The metric name as given at construction. */
  readonly name: string;
  /** The metric type. */
  readonly type: MetricType;
  /** The complete, canonical label set of the series (keys in `labelNames` order). */
  readonly labelValues: Labels;
  /** The label names of the metric, in declaration order. */
  readonly labelNames: readonly string[];
}

/** One value of one series. Mutations are synchronous; a read may be asynchronous. */
export interface Backend {
  /** Adds `value` (never negative for counters, histograms and summaries). */
  inc(value: number): void;
  /** Subtracts `value`. */
  dec(value: number): void;
  /** Replaces the value. */
  set(value: number): void;
  /** Returns the current value. */
  get(): number | Promise<number>;
}

/** A backend class: a constructor plus optional class-level hooks. */
export interface BackendClass {
  /**
   * Creates the backend of one value.
   *
   * `histogramBucket` tells which value of a histogram or summary series this is: the
   * canonical upper bound of a bucket (`"0.1"`, `"1.0"`, `"+Inf"`), `"sum"` or `"count"`.
   * Histogram buckets hold the count of observations that fell into that bucket alone;
   * the exposition makes them cumulative.
   */
  new (config: BackendConfig, metric: MetricInfo, histogramBucket?: string): Backend;
  /** One-time set-up, called by `loadBackend` before any instance is created. */
  initialize?(config: BackendConfig): void | Promise<void>;
  /** Pushes everything buffered to the backend's store. Called by `flush()` and before collection. */
  flush?(): Promise<void>;
}

/**
 * Thrown when a collection cannot read the backend. `metricsHandler` answers it with 503, so
 * a scrape fails visibly instead of serving numbers that look like a counter reset.
 */
export class BackendUnavailableError extends Error {
  /**
   * Creates the error.
   *
   * @param message What could not be read, and why.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendUnavailableError";
  }
}
