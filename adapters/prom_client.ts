/**
 * `fromPromClient()`: a prom-client registry as a theus collector, for a service that moves
 * from prom-client to theus a metric at a time and serves both from one endpoint meanwhile.
 *
 * @module
 */

import { describe } from "../core/_names.ts";
import type {
  Collector,
  Exemplar,
  HistogramSeries,
  Labels,
  MetricFamily,
  SummarySeries,
  ValueSeries,
} from "../core/types.ts";
import { checkExemplar } from "../metrics/_exemplar.ts";

/**
 * One metric as prom-client's `getMetricsAsJSON()` returns it (prom-client 13 to 15, and
 * `@prometheus-io/client`, its successor under the Prometheus organisation).
 */
export interface PromClientMetric {
  /** The metric name; a counter's with or without `_total`. */
  readonly name: string;
  /** The help text. */
  readonly help?: string;
  /**
   * `"counter"`, `"gauge"`, `"histogram"`, `"summary"`; anything else is bridged as untyped.
   * A string at run time; prom-client's typings declare a numeric enum, hence `number`.
   */
  readonly type: string | number;
  /** The samples: a histogram's and a summary's name theirs in `metricName`. */
  readonly values?: readonly {
    /** The sample value. */
    readonly value: number;
    /** The labels; prom-client allows numbers, which become strings. */
    readonly labels?: Readonly<Record<string, unknown>>;
    /** The sample name, when it is not the metric name (`x_bucket`, `x_sum`, `x_count`). */
    readonly metricName?: string;
    /** The exemplar of a counter or a bucket (`enableExemplars`), timestamp in Unix seconds. */
    readonly exemplar?: {
      /** The exemplar's labels. */
      readonly labelSet?: Readonly<Record<string, unknown>>;
      /** The value observed; null before any. */
      readonly value?: number | null;
      /** When, in Unix seconds. */
      readonly timestamp?: number;
    } | null;
  }[];
}

/**
 * What {@linkcode fromPromClient} reads: prom-client's `Registry` (13 to 15), its global
 * `register`, `@prometheus-io/client`'s, or any object with a `getMetricsAsJSON()` like theirs.
 */
export interface PromClientRegistry {
  /** The metrics of the registry and their current samples. */
  getMetricsAsJSON(): PromiseLike<readonly PromClientMetric[]> | readonly PromClientMetric[];
}

type PromValue = NonNullable<PromClientMetric["values"]>[number];

/**
 * Returns a collector that bridges a prom-client registry into a theus `Registry`:
 * every scrape of the theus registry awaits `register.getMetricsAsJSON()` and writes its
 * metrics next to theus' own, in text 0.0.4 or OpenMetrics, whichever the scraper asked for.
 * A service can then move its metrics from prom-client to theus one at a time, behind one
 * endpoint, with the names its dashboards use.
 *
 * What carries over, and how:
 *
 * - counters and gauges, with their labels and values; a counter is written `x_total` whether
 *   prom-client named it `x_total` or `x` (prom-client writes the latter as `x` in text 0.0.4,
 *   and as `x_total` in OpenMetrics, as theus does in both);
 * - histograms: buckets, `_sum` and `_count` per label set, the same counts; the `le` label is
 *   written canonically (`le="1.0"` where prom-client writes `le="1"`), as client_golang and
 *   client_python do and Prometheus 3 normalises to at ingestion (Prometheus 2 sees a new
 *   series for such a bucket);
 * - summaries: their quantiles (`x{quantile="0.99"}`), `_sum` and `_count`, as prom-client
 *   computed them (in its process only: unlike a theus summary's, they do not add up across
 *   processes);
 * - any other type: untyped, one family per sample name;
 * - label values become strings (`String(value)`, as prom-client writes them), default labels
 *   (`setDefaultLabels`) included, since `getMetricsAsJSON()` applies them;
 * - exemplars (`enableExemplars`) of counters and histogram buckets, written in OpenMetrics as
 *   prom-client writes them; one theus would refuse (a label name that is not one) is dropped
 *   rather than failing the scrape.
 *
 * prom-client's cluster `aggregator` is not carried over: the bridge reads one registry. The
 * families are checked as any custom collector's, and a name that a theus metric also writes
 * (a metric moved to theus but not yet removed from prom-client) fails the collection with an
 * error naming it, rather than writing the series twice.
 *
 * The collector has no `name`: it writes many families, and a registry reserves a collector's
 * name for it. prom-client is not imported; any object with `getMetricsAsJSON()` works.
 *
 * @param register prom-client's `register`, a prom-client `Registry`, or any object with a
 * `getMetricsAsJSON()` method returning (a promise of) the same shape.
 * @returns A collector to pass to `registry.register()`.
 * @throws {TypeError} When `register` has no `getMetricsAsJSON()` method; at collection, when
 * it returns something other than an array of metrics, or a histogram or summary lacks a
 * sample (`_sum`, `_count`) or its series have different buckets.
 *
 * @example A service halfway through the move, serving both from one endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import promClient from "prom-client";
 * import { Counter, metricsHandler, Registry } from "../mod.ts";
 * import { fromPromClient } from "./prom_client.ts";
 *
 * // Not moved yet: still recorded with prom-client, in its global registry.
 * const legacy = new promClient.Counter({ name: "jobs_total", help: "Jobs run", labelNames: ["queue"] });
 * legacy.inc({ queue: "mail" });
 *
 * // Already moved: recorded with theus.
 * const registry = new Registry();
 * const orders = new Counter({ name: "orders_total", help: "Orders", registry });
 * orders.inc();
 *
 * registry.register(fromPromClient(promClient.register));
 * const metrics = metricsHandler({ registry });
 * const text = await (await metrics(new Request("http://localhost/metrics"))).text();
 * assert.ok(text.includes("orders_total 1\n") && text.includes('jobs_total{queue="mail"} 1\n'));
 * promClient.register.clear();
 * ```
 */
export function fromPromClient(register: PromClientRegistry): Collector {
  if (typeof (register as Partial<PromClientRegistry> | null)?.getMetricsAsJSON !== "function") {
    throw new TypeError(
      `fromPromClient() needs a prom-client registry (an object with a getMetricsAsJSON() method), got ${
        describe(register)
      }`,
    );
  }
  return {
    async collect(): Promise<MetricFamily[]> {
      const metrics: unknown = await register.getMetricsAsJSON();
      if (!Array.isArray(metrics)) {
        throw new TypeError(
          `Invalid result from the prom-client registry: getMetricsAsJSON() must return an array, got ${
            describe(metrics)
          }`,
        );
      }
      const out: MetricFamily[] = [];
      for (const metric of metrics) out.push(...familiesOf(metric));
      return out;
    },
  };
}

/** The theus families of one prom-client metric. */
function familiesOf(metric: PromClientMetric): MetricFamily[] {
  if (typeof metric !== "object" || metric === null || typeof metric.name !== "string") {
    throw new TypeError(`Invalid metric from the prom-client registry: got ${describe(metric)}`);
  }
  const name = metric.name;
  const help = typeof metric.help === "string" ? metric.help : "";
  const values: readonly PromValue[] = Array.isArray(metric.values) ? metric.values : [];
  switch (metric.type) {
    case "counter": {
      const series = values.map((v): ValueSeries => {
        const exemplar = exemplarOf(v.exemplar, name);
        const labels = labelsOf(v.labels);
        return exemplar === undefined ? { labels, value: v.value } : { labels, value: v.value, exemplar };
      });
      return [{ name: name.endsWith("_total") ? name.slice(0, -6) : name, help, type: "counter", series }];
    }
    case "gauge": {
      const series = values.map((v) => ({ labels: labelsOf(v.labels), value: v.value }));
      return [{ name, help, type: "gauge", series }];
    }
    case "histogram":
      return [histogramOf(name, help, values)];
    case "summary":
      return [summaryOf(name, help, values)];
    default:
      return untypedOf(name, help, values);
  }
}

/** Label values as strings, as prom-client writes them. */
function labelsOf(labels: Readonly<Record<string, unknown>> | undefined, skip?: string): Labels {
  const out: Record<string, string> = {};
  if (labels === undefined || labels === null) return out;
  for (const key of Object.keys(labels)) {
    if (key !== skip) out[key] = String(labels[key]);
  }
  return out;
}

/** An exemplar as theus keeps it, or undefined for none, or one theus would refuse. */
function exemplarOf(exemplar: PromValue["exemplar"], metric: string): Exemplar | undefined {
  if (typeof exemplar !== "object" || exemplar === null || typeof exemplar.value !== "number") {
    return undefined;
  }
  try {
    return checkExemplar(labelsOf(exemplar.labelSet), exemplar.value, exemplar.timestamp, metric);
  } catch {
    return undefined;
  }
}

/** A label set as a key that ignores the order of its labels. */
function keyOf(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((key) => [key, labels[key]]));
}

function bucketBound(le: unknown): number {
  if (le === "+Inf" || le === "Inf" || le === "inf" || le === "+inf") return Infinity;
  return typeof le === "number" ? le : Number(le);
}

interface Pending {
  labels: Labels;
  buckets: Map<number, number>;
  exemplars?: Map<number, Exemplar>;
  sum?: number;
  count?: number;
}

/** Groups a histogram's or summary's samples by label set (without `le`). */
function groupOf(groups: Map<string, Pending>, labels: Labels): Pending {
  const key = keyOf(labels);
  let group = groups.get(key);
  if (group === undefined) groups.set(key, group = { labels, buckets: new Map() });
  return group;
}

function histogramOf(name: string, help: string, values: readonly PromValue[]): MetricFamily {
  const fail = (why: string): never => {
    throw new TypeError(`Invalid histogram "${name}" from the prom-client registry: ${why}`);
  };
  const groups = new Map<string, Pending>();
  for (const v of values) {
    const sample = v.metricName ?? name;
    if (sample === `${name}_bucket`) {
      const bound = bucketBound(v.labels?.le);
      if (Number.isNaN(bound)) fail(`a bucket has the le label ${describe(v.labels?.le)}`);
      const group = groupOf(groups, labelsOf(v.labels, "le"));
      group.buckets.set(bound, v.value);
      const exemplar = exemplarOf(v.exemplar, name);
      if (exemplar !== undefined) (group.exemplars ??= new Map()).set(bound, exemplar);
    } else if (sample === `${name}_sum`) {
      groupOf(groups, labelsOf(v.labels)).sum = v.value;
    } else if (sample === `${name}_count`) {
      groupOf(groups, labelsOf(v.labels)).count = v.value;
    }
  }
  // prom-client gives every series of a histogram the same bounds: the family's are theirs.
  const first = groups.values().next().value;
  const bounds = first === undefined ? [] : [...first.buckets.keys()].filter((b) => b !== Infinity);
  bounds.sort((a, b) => a - b);
  bounds.push(Infinity);
  const series: HistogramSeries[] = [];
  for (const group of groups.values()) {
    const count = group.count ?? group.buckets.get(Infinity);
    if (count === undefined) fail(`the series ${JSON.stringify(group.labels)} has no _count`);
    if (group.sum === undefined) fail(`the series ${JSON.stringify(group.labels)} has no _sum`);
    if (!group.buckets.has(Infinity)) group.buckets.set(Infinity, count!);
    if (group.buckets.size !== bounds.length || !bounds.every((b) => group.buckets.has(b))) {
      fail(`its series have different buckets`);
    }
    const one: HistogramSeries = {
      labels: group.labels,
      buckets: bounds.map((b) => group.buckets.get(b)!),
      sum: group.sum!,
      count: count!,
    };
    const exemplars = group.exemplars;
    series.push(exemplars === undefined ? one : { ...one, exemplars: bounds.map((b) => exemplars.get(b)) });
  }
  return { name, help, type: "histogram", buckets: bounds, series };
}

function summaryOf(name: string, help: string, values: readonly PromValue[]): MetricFamily {
  const fail = (why: string): never => {
    throw new TypeError(`Invalid summary "${name}" from the prom-client registry: ${why}`);
  };
  const groups = new Map<string, Pending>();
  for (const v of values) {
    const sample = v.metricName ?? name;
    if (sample === `${name}_sum`) groupOf(groups, labelsOf(v.labels)).sum = v.value;
    else if (sample === `${name}_count`) groupOf(groups, labelsOf(v.labels)).count = v.value;
    else if (sample === name && v.labels?.quantile !== undefined) {
      // A quantile sample: metricName absent, the rank in the quantile label.
      const quantile = Number(v.labels.quantile);
      if (!(quantile >= 0 && quantile <= 1)) fail(`a quantile has the label ${describe(v.labels.quantile)}`);
      // prom-client's buckets map is keyed by number; a summary's by rank.
      groupOf(groups, labelsOf(v.labels, "quantile")).buckets.set(quantile, v.value);
    }
  }
  const series: SummarySeries[] = [];
  for (const group of groups.values()) {
    if (group.count === undefined) fail(`the series ${JSON.stringify(group.labels)} has no _count`);
    if (group.sum === undefined) fail(`the series ${JSON.stringify(group.labels)} has no _sum`);
    const quantiles = [...group.buckets].sort(([a], [b]) => a - b).map(([quantile, value]) => ({
      quantile,
      value,
    }));
    series.push(
      quantiles.length === 0
        ? { labels: group.labels, sum: group.sum!, count: group.count! }
        : { labels: group.labels, sum: group.sum!, count: group.count!, quantiles },
    );
  }
  return { name, help, type: "summary", series };
}

/** A metric of a type theus does not know: one untyped family per sample name, in order. */
function untypedOf(name: string, help: string, values: readonly PromValue[]): MetricFamily[] {
  const families = new Map<string, { labels: Labels; value: number }[]>([[name, []]]);
  for (const v of values) {
    const sample = v.metricName ?? name;
    let series = families.get(sample);
    if (series === undefined) families.set(sample, series = []);
    series.push({ labels: labelsOf(v.labels), value: v.value });
  }
  // The metric's own name is written even without samples, unless all of them have others.
  if (families.get(name)!.length === 0 && families.size > 1) families.delete(name);
  return [...families].map(([sample, series]): MetricFamily => ({
    name: sample,
    help,
    type: "untyped",
    series,
  }));
}
