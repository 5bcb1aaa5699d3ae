/**
 * The backend protocol: where metric values live. This is the entry point for writing a backend
 * (`@theus/theus/backend`, npm `theus/backend`); applications only choose one, with `loadBackend`.
 *
 * A backend instance holds one value: the value of a counter or gauge series, or one bucket,
 * the sum or the count of a histogram or summary series. Writing a backend means writing a
 * class that implements {@linkcode Backend} and whose constructor matches
 * {@linkcode BackendClass}. A class may also hold a whole series in one object
 * ({@linkcode SeriesValues}, through the optional `values` hook), as the built-in backends do.
 *
 * @example A backend that keeps every value in one Map
 * ```ts
 * import type { Backend, BackendConfig, MetricInfo } from "./backend.ts";
 * import { Counter, loadBackend, Registry } from "../mod.ts";
 *
 * const store = new Map<string, number>();
 *
 * class MapBackend implements Backend {
 *   #key: string;
 *   constructor(_config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
 *     this.#key = JSON.stringify([metric.name, metric.labelValues, histogramBucket ?? ""]);
 *   }
 *   inc(value: number): void {
 *     store.set(this.#key, (store.get(this.#key) ?? 0) + value);
 *   }
 *   dec(value: number): void {
 *     this.inc(-value);
 *   }
 *   set(value: number): void {
 *     store.set(this.#key, value);
 *   }
 *   get(): number {
 *     return store.get(this.#key) ?? 0;
 *   }
 * }
 *
 * await loadBackend({ backend: MapBackend });
 * new Counter({ name: "jobs_total", help: "Jobs", registry: new Registry() }).inc();
 * await loadBackend({ backend: "memory" });
 * ```
 *
 * @module
 */

import type { Collector, Exemplar, Labels, MetricFamily, MetricType } from "./types.ts";

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

/** The label that tells instances apart in the `all` and `liveall` gauge modes and per-instance metrics. */
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
  /** Whether each instance keeps series of its own: see {@linkcode CollectTarget.perInstance}. */
  readonly perInstance?: boolean;
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
  /**
   * Whether each instance keeps series of its own, whatever the type (the runtime metrics of
   * `theus/runtime`: one process's CPU time or memory is never added to another's). A backend
   * shared by processes keeps every instance's values apart, exposes them labelled
   * `theus_instance`, and leaves an instance out once its heartbeat has expired; a backend shared
   * by the threads of one process shows one thread's values. The memory backend, one instance,
   * ignores it.
   */
  readonly perInstance?: boolean;
  /**
   * Whether a series of the metric, once removed, is never written again by any process or
   * thread (a summary's buckets of a slice that has left its window): a store may give the space
   * of a removed series to a new series of the same metric.
   */
  readonly windowed?: boolean;
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

/**
 * The values of one series, held together by a backend that implements
 * {@linkcode BackendClass.values}. Values are addressed by position: a counter or gauge has one
 * (0); a histogram one per bucket, in the order of its bounds, then its sum; a summary its
 * count, then its sum. A bucket holds the count of observations that fell into it alone; the
 * exposition makes buckets cumulative. Mutations are synchronous; a read may be asynchronous.
 */
export interface SeriesValues {
  /**
   * Adds `value` to the value at `index` (never negative for counters, histograms and summaries).
   *
   * @param index The position of the value.
   * @param value The amount to add.
   */
  inc(index: number, value: number): void;
  /**
   * Subtracts `value` from the value at `index` (gauges only).
   *
   * @param index The position of the value.
   * @param value The amount to subtract.
   */
  dec(index: number, value: number): void;
  /**
   * Replaces the value at `index` (gauges only).
   *
   * @param index The position of the value.
   * @param value The new value.
   */
  set(index: number, value: number): void;
  /**
   * Returns the value at `index`.
   *
   * @param index The position of the value.
   * @returns The value, or a promise of it.
   */
  get(index: number): number | Promise<number>;
  /**
   * Returns every value, in position order, in a new array the caller may keep: how a
   * histogram or summary series is read for collection.
   *
   * @returns The values, or a promise of them.
   */
  getAll(): number[] | Promise<number[]>;
  /**
   * Keeps `exemplar` as the latest of the value at `index` (a counter's 0, a histogram's
   * bucket), replacing an older one. Optional: a backend without it drops exemplars.
   *
   * @param index The position of the value.
   * @param exemplar The exemplar, checked already.
   */
  exemplar?(index: number, exemplar: Exemplar): void;
  /**
   * The latest exemplar of each value, by position, or undefined when there is none.
   *
   * @returns The exemplars, or a promise of them.
   */
  exemplars?():
    | readonly (Exemplar | undefined)[]
    | undefined
    | Promise<readonly (Exemplar | undefined)[] | undefined>;
  /**
   * Called when the series is removed (`remove()`, `clear()`): the values may drop what they
   * still buffer and ignore later writes, which go to a series nobody collects.
   */
  dispose?(): void;
}

/** Some of the series of one metric's family, as the `stream` hook of a backend class gives them. */
export interface FamilyPart {
  /** The position of the metric among the targets. */
  readonly index: number;
  /** The family, with some of its series. */
  readonly family: MetricFamily;
  /** Whether this is the metric's last part. */
  readonly last: boolean;
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
  /**
   * Told of every metric created on the backend, when it is created. A backend shared with
   * other threads or processes checks the definition against theirs and throws a `TypeError`
   * when one name is defined two ways (another type, other label names or buckets).
   */
  define?(config: BackendConfig, target: CollectTarget): void;
  /** Pushes everything buffered to the backend's store. Called by `flush()` and before collection. */
  flush?(): Promise<void>;
  /**
   * Reads every series of these metrics at once (pytheus' `_generate_samples`), including
   * series that only other processes created. Used instead of reading value by value.
   * Returns one family per target, in order.
   */
  collect?(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]>;
  /**
   * Reads the same as `collect`, as parts given while the rest is still being read, so that a
   * scrape's body goes out as it is read: for each target in order, one or more parts with some
   * of its series, the last marked. Optional, beside `collect`; a failure to reach the store
   * should be thrown before the first part.
   */
  stream?(config: BackendConfig, targets: readonly CollectTarget[]): AsyncIterable<FamilyPart>;
  /**
   * Removes a series from a shared store, after `remove()` or `clear()` dropped it here, so that
   * `collect` no longer returns it. Needed only by backends with a `collect` hook.
   */
  remove?(config: BackendConfig, target: CollectTarget, labels: Labels): void;
  /**
   * Creates the values of a whole series in one object, instead of one instance per value:
   * smaller and faster, and what the built-in backends do. Optional: without it, each value is
   * an instance of the class. `names` are the values' names, as the constructor's
   * `histogramBucket` would get them (`"0.1"`, `"+Inf"`, `"sum"`; `"count"`, `"sum"`), in
   * position order; undefined for a counter or gauge, which have one value.
   */
  values?(config: BackendConfig, metric: MetricInfo, names: readonly string[] | undefined): SeriesValues;
  /**
   * The backend's own metrics (flushes, failures), registered in `defaultRegistry` the first
   * time the class is selected.
   */
  readonly health?: Collector;
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
