// Checks what custom collectors return, so a bad family fails the collection with a clear
// error instead of writing an exposition that Prometheus rejects.

import { checkLabelName, checkMetricName, describe } from "./_names.ts";
import type { MetricFamily } from "./types.ts";

const TYPES = new Set(["counter", "gauge", "untyped", "histogram", "summary"]);

/** Returns the family, its counter name without `_total`, or throws a TypeError. */
export function checkFamily(family: MetricFamily): MetricFamily {
  if (typeof family !== "object" || family === null) {
    throw new TypeError(
      `Invalid family from a custom collector: expected an object, got ${describe(family)}`,
    );
  }
  const name = checkMetricName(family.name, "family name");
  const fail = (why: string): never => {
    throw new TypeError(`Invalid family "${name}" from a custom collector: ${why}`);
  };
  if (!TYPES.has(family.type)) fail(`unknown type ${describe(family.type)}`);
  if (typeof family.help !== "string") fail("help must be a string");
  if (!Array.isArray(family.series)) fail("series must be an array");
  const reserved = family.type === "histogram" ? "le" : family.type === "summary" ? "quantile" : undefined;
  const seen = new Set<string>();
  for (const series of family.series) {
    if (typeof series !== "object" || series === null) fail("a series is not an object");
    const labels = series.labels;
    if (typeof labels !== "object" || labels === null) fail("a series has no labels object");
    for (const [label, value] of Object.entries(labels)) {
      checkLabelName(label, name, reserved);
      if (typeof value !== "string") fail(`label "${label}" has a value that is not a string`);
    }
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (seen.has(key)) fail(`two series have the labels ${JSON.stringify(labels)}`);
    seen.add(key);
    if (family.type === "histogram") {
      const buckets = family.buckets;
      if (!Array.isArray(buckets) || buckets.length === 0 || buckets[buckets.length - 1] !== Infinity) {
        fail("buckets must be sorted upper bounds ending with Infinity");
      }
      for (let i = 1; i < buckets.length; i++) {
        if (!(buckets[i] > buckets[i - 1])) fail("buckets must be strictly increasing");
      }
      const s = series as { buckets?: unknown; sum?: unknown; count?: unknown };
      if (!Array.isArray(s.buckets) || s.buckets.length !== buckets.length) {
        fail("each series needs one cumulative count per bucket");
      }
      if (!(s.buckets as unknown[]).every((v) => typeof v === "number")) {
        fail("bucket counts must be numbers");
      }
      if (typeof s.sum !== "number" || typeof s.count !== "number") fail("sum and count must be numbers");
    } else if (family.type === "summary") {
      const s = series as { sum?: unknown; count?: unknown };
      if (typeof s.sum !== "number" || typeof s.count !== "number") fail("sum and count must be numbers");
    } else if (typeof (series as { value?: unknown }).value !== "number") {
      fail("each series needs a number value");
    }
  }
  if (family.type === "counter" && name.endsWith("_total")) return { ...family, name: name.slice(0, -6) };
  return family;
}
