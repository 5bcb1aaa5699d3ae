/**
 * The shapes shared by metrics, collectors, registries and the exposition writers.
 *
 * @module
 */

/** A label set: label names mapped to string values. */
export type Labels = Readonly<Record<string, string>>;

/**
 * The metric types theus exposes. `untyped` is for custom collectors only. `info` and `stateset`
 * are OpenMetrics types: text 0.0.4 writes them as gauges. A backend never stores one: an `Info`
 * or a `StateSet` keeps its values as a gauge does, and its family is reshaped once it is read.
 */
export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped" | "info" | "stateset";

/**
 * An exemplar: one observation singled out, with labels that point at it elsewhere (a
 * `trace_id`). OpenMetrics writes it after the sample of a counter or a histogram bucket.
 */
export interface Exemplar {
  /** The exemplar's labels: at most 128 code points of names and values together. */
  readonly labels: Labels;
  /** The value observed (a counter's increment, a histogram's observation). */
  readonly value: number;
  /** When, in Unix seconds; the time it was recorded unless given. */
  readonly timestamp?: number;
}

/** One series of a counter, gauge or untyped family. */
export interface ValueSeries {
  /** The complete label set of the series. */
  readonly labels: Labels;
  /** The current value. */
  readonly value: number;
  /** A counter's latest exemplar, if it has one. */
  readonly exemplar?: Exemplar;
}

/** One series of a histogram family. */
export interface HistogramSeries {
  /** The complete label set of the series, without `le`. */
  readonly labels: Labels;
  /** Cumulative counts, one per upper bound of the family's `buckets`. */
  readonly buckets: readonly number[];
  /** The sum of every observed value. */
  readonly sum: number;
  /** The number of observations; equals the last (`+Inf`) bucket. */
  readonly count: number;
  /** The latest exemplar of each bucket, by the position of its bound; absent where none. */
  readonly exemplars?: readonly (Exemplar | undefined)[];
  /** The native (sparse, exponential) buckets of a native histogram; absent for a classic one. */
  readonly native?: NativeBuckets;
}

/**
 * The sparse buckets of a native histogram, as Prometheus defines them. With
 * `base = 2 ** (2 ** -schema)`, positive bucket `index` counts the observations in
 * `(base ** (index - 1), base ** index]`, and negative bucket `index` those in
 * `[-(base ** index), -(base ** (index - 1)))`. Observations within `zeroThreshold` of zero are
 * counted in the zero bucket.
 */
export interface NativeBuckets {
  /** The resolution: from -4 (each bucket 65,536 times as wide as the last) to 8 (2 ** (1/256)). */
  readonly schema: number;
  /** The half-width of the zero bucket: `[-zeroThreshold, zeroThreshold]`. */
  readonly zeroThreshold: number;
  /** The observations in the zero bucket. */
  readonly zeroCount: number;
  /** The positive buckets that hold observations, by ascending index; counts not cumulative. */
  readonly positive: readonly NativeBucket[];
  /** The negative buckets that hold observations, by ascending index; counts not cumulative. */
  readonly negative: readonly NativeBucket[];
}

/** One bucket of a native histogram: its index and the observations in it alone. */
export interface NativeBucket {
  /** The bucket's index (see {@linkcode NativeBuckets}). */
  readonly index: number;
  /** The observations in this bucket alone. */
  readonly count: number;
}

/** One quantile of a summary series. */
export interface Quantile {
  /** The rank, between 0 and 1 (`0.99`). */
  readonly quantile: number;
  /** The value at that rank in the summary's window; NaN when the window holds no observation. */
  readonly value: number;
}

/** One series of a summary family. */
export interface SummarySeries {
  /** The complete label set of the series. */
  readonly labels: Labels;
  /** The sum of every observed value. */
  readonly sum: number;
  /** The number of observations. */
  readonly count: number;
  /** The quantiles over the summary's sliding window, by ascending rank; absent when it has none. */
  readonly quantiles?: readonly Quantile[];
}

/** A counter, gauge or untyped family. */
export interface ValueFamily {
  /**
   * The family name. A counter's name is given without the `_total` suffix, which the
   * exposition adds to its samples.
   */
  readonly name: string;
  /** The help text, any string. */
  readonly help: string;
  /** The metric type. */
  readonly type: "counter" | "gauge" | "untyped";
  /**
   * The unit (`"seconds"`, `"bytes"`), written by OpenMetrics as `# UNIT`: the family name must
   * end with an underscore and the unit (a counter's before `_total`).
   */
  readonly unit?: string;
  /** The series of the family. */
  readonly series: readonly ValueSeries[];
}

/** A histogram family. */
export interface HistogramFamily {
  /**
   * The family name. A counter's name is given without the `_total` suffix, which the
   * exposition adds to its samples.
   */
  readonly name: string;
  /** The help text, any string. */
  readonly help: string;
  /** The metric type. */
  readonly type: "histogram";
  /**
   * The unit (`"seconds"`, `"bytes"`), written by OpenMetrics as `# UNIT`: the family name must
   * end with an underscore and the unit (a counter's before `_total`).
   */
  readonly unit?: string;
  /** Sorted upper bounds, the last one `Infinity`. */
  readonly buckets: readonly number[];
  /** The series of the family. */
  readonly series: readonly HistogramSeries[];
}

/** A summary family. */
export interface SummaryFamily {
  /**
   * The family name. A counter's name is given without the `_total` suffix, which the
   * exposition adds to its samples.
   */
  readonly name: string;
  /** The help text, any string. */
  readonly help: string;
  /** The metric type. */
  readonly type: "summary";
  /**
   * The unit (`"seconds"`, `"bytes"`), written by OpenMetrics as `# UNIT`: the family name must
   * end with an underscore and the unit (a counter's before `_total`).
   */
  readonly unit?: string;
  /** The series of the family. */
  readonly series: readonly SummarySeries[];
}

/**
 * An info family (OpenMetrics): textual information as labels, such as a version. Each series is
 * written `<name>_info{…} 1`; in text 0.0.4 the family is a gauge named `<name>_info`.
 */
export interface InfoFamily {
  /** The family name, without the `_info` suffix, which the exposition adds to its samples. */
  readonly name: string;
  /** The help text, any string. */
  readonly help: string;
  /** The metric type. */
  readonly type: "info";
  /** The series of the family: every label of the info, and the value 1. */
  readonly series: readonly ValueSeries[];
}

/**
 * A state set family (OpenMetrics): a set of states, each true or false. Each state is a series
 * labelled with the family name (`job_state{job_state="running"} 1`), valued 1 (true) or 0; the
 * series of one label set are written together. In text 0.0.4 the family is a gauge.
 */
export interface StateSetFamily {
  /** The family name, also the name of the label that holds the state; no `:` in it. */
  readonly name: string;
  /** The help text, any string. */
  readonly help: string;
  /** The metric type. */
  readonly type: "stateset";
  /** The series of the family: one per state and label set, valued 0 or 1. */
  readonly series: readonly ValueSeries[];
}

/** A collected metric family, as `Registry.collect()` returns it and the exposition writes it. */
export type MetricFamily = ValueFamily | HistogramFamily | SummaryFamily | InfoFamily | StateSetFamily;

/**
 * A collector: anything a registry can collect from. Every metric is one; a custom collector
 * is any object with a `collect()` method, and optionally a `name` it is registered under.
 */
export interface Collector {
  /** The name the collector is registered under, if any. */
  readonly name?: string;
  /** Returns the current families, synchronously or not. */
  collect(): readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
}
