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

import type { Labels, MetricFamily, MetricType } from "../metrics/types.ts";

/** Backend configuration, as given to `loadBackend` or read from `THEUS_BACKEND_CONFIG`. */
export type BackendConfig = Record<string, unknown>;

/**
 * How a gauge combines the values of many processes on a shared backend. `shared` (the
 * default): one value, `set` is last-writer-wins and `inc`/`dec` add up. The others keep one
 * value per instance and expose their `sum`, `max`, `min`, the `latest` written, or `all` of
 * them (one series per instance, labelled `theus_instance`); the `live` variants count only
 * instances whose heartbeat has not expired. The memory backend has one instance, so every
 * mode reads the same there.
 */
export type GaugeMode = (typeof GAUGE_MODES)[number];

/** Every {@linkcode GaugeMode}, the default first. */
export const GAUGE_MODES = [
  "shared",
  "sum",
  "max",
  "min",
  "latest",
  "all",
  "livesum",
  "livemax",
  "livemin",
  "livelatest",
  "liveall",
] as const;

/** The label that tells instances apart in the `all` and `liveall` gauge modes. */
export const INSTANCE_LABEL = "theus_instance";

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
  /** How a gauge combines instances; undefined for other types. */
  readonly gaugeMode?: GaugeMode;
}

/** What a backend's class-level `collect` hook is asked to read: one metric and its shape. */
export interface CollectTarget {
  /** The metric name as given at construction. */
  readonly name: string;
  /** The family name to expose (a counter's without `_total`). */
  readonly exposedName: string;
  /** The help text. */
  readonly help: string;
  /** The metric type. */
  readonly type: MetricType;
  /** The label names, in declaration order. */
  readonly labelNames: readonly string[];
  /** A histogram's upper bounds, ending with `Infinity`. */
  readonly buckets?: readonly number[];
  /** A gauge's mode. */
  readonly gaugeMode?: GaugeMode;
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
  /**
   * Called when the series is removed (`remove()`, `clear()`): the value may drop what it
   * still buffers and ignore later writes, which go to a series nobody collects.
   */
  dispose?(): void;
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
  /**
   * Reads every series of these metrics at once (pytheus' `_generate_samples`), including
   * series that only other processes created. Used instead of reading value by value.
   * Returns one family per target, in order.
   */
  collect?(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]>;
  /**
   * Removes a series from a shared store, after `remove()` or `clear()` dropped it here, so that
   * `collect` no longer returns it. Needed only by backends with a `collect` hook.
   */
  remove?(config: BackendConfig, target: CollectTarget, labels: Labels): void;
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
