// Checks what custom collectors return, so a bad family fails the collection with a clear
// error instead of writing an exposition that Prometheus rejects.

import { checkLabelName, checkMetricName, describe } from "../core/_names.ts";
import type { Labels, MetricFamily, MetricType } from "../core/types.ts";
import { toWellFormed } from "./_labels.ts";
import { checkExemplar } from "./_exemplar.ts";

const TYPES = new Set(["counter", "gauge", "untyped", "histogram", "summary", "info", "stateset"]);

/** Every sample name a family of this type and name writes (and so claims in a registry). */
export function sampleNames(type: MetricType, name: string): string[] {
  switch (type) {
    case "counter":
      return [name, `${name}_total`, `${name}_created`];
    case "histogram":
      return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`, `${name}_created`];
    case "summary":
      return [name, `${name}_sum`, `${name}_count`, `${name}_created`];
    case "info":
      return [name, `${name}_info`];
    default:
      return [name];
  }
}

/**
 * The family name a metric of this type exposes for the name it was given: a counter's without
 * `_total`, an info's without `_info` (the exposition adds them to the samples).
 */
export function familyName(type: MetricType, name: string): string {
  const suffix = type === "counter" ? "_total" : type === "info" ? "_info" : undefined;
  if (suffix === undefined || !name.endsWith(suffix) || name.length === suffix.length) return name;
  return name.slice(0, -suffix.length);
}

/**
 * Checks a unit: a non-empty string that, after an underscore, ends the family name (a counter's
 * before `_total`). Info and state set families have none (OpenMetrics).
 *
 * @param unit The unit given.
 * @param type The family's type.
 * @param family The family name, as exposed (`familyName`).
 * @param what Who has the unit, for the error message: `metric "x"`.
 * @returns The unit.
 */
export function checkUnit(unit: unknown, type: MetricType, family: string, what: string): string {
  if (type === "info" || type === "stateset") {
    const kind = type === "info" ? "an info" : "a state set";
    throw new TypeError(`Invalid unit of ${what}: ${kind} has no unit in OpenMetrics`);
  }
  if (typeof unit !== "string" || unit === "") {
    throw new TypeError(`Invalid unit of ${what}: expected a non-empty string, got ${describe(unit)}`);
  }
  if (!family.endsWith(`_${unit}`) || family.length === unit.length + 1) {
    const where = type === "counter" ? ` (before "_total")` : "";
    throw new TypeError(
      `Invalid unit ${JSON.stringify(unit)} of ${what}: the name must end with "_${unit}"${where}, ` +
        `as OpenMetrics requires; name it "${family}_${unit}${type === "counter" ? "_total" : ""}"`,
    );
  }
  return unit;
}

// The series of a state set family with those of one label set together, in the order they
// first appear (OpenMetrics rejects a label set whose states are split by another's); the same
// array when they are together already.
function groupStates<S extends { readonly labels: Labels }>(
  series: readonly S[],
  stateLabel: string,
): readonly S[] {
  const groups = new Map<string, S[]>();
  let together = true;
  let previous: string | undefined;
  for (const s of series) {
    const key = groupKey(s.labels, stateLabel);
    let group = groups.get(key);
    if (group === undefined) groups.set(key, group = []);
    else if (key !== previous) together = false;
    previous = key;
    group.push(s);
  }
  return together ? series : [...groups.values()].flat();
}

// The canonical text of a series' labels without the state label.
function groupKey(labels: Labels, stateLabel: string): string {
  const names = Object.keys(labels).filter((name) => name !== stateLabel).sort();
  const flat: string[] = [];
  for (const name of names) flat.push(name, labels[name]);
  return JSON.stringify(flat);
}

/**
 * Returns the family, its counter name without `_total` and its info name without `_info`, a
 * state set's series grouped by label set, or throws a TypeError.
 */
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
  const exposed = familyName(family.type, name);
  const unit = (family as { unit?: unknown }).unit;
  if (unit !== undefined) checkUnit(unit, family.type, exposed, `family "${name}" from a custom collector`);
  if (family.type === "stateset") {
    // The state label is named after the family.
    try {
      checkLabelName(name, name);
    } catch {
      fail("a state set's name is also its state label's, so it must be a valid label name (no colon)");
    }
  }
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
    // Values are compared as they are written: a lone surrogate becomes U+FFFD.
    const entries = Object.entries(labels).map(([label, value]) => [label, toWellFormed(value)]);
    const key = JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
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
      const counts = s.buckets as unknown[];
      for (let i = 0; i < counts.length; i++) {
        const count = counts[i];
        if (typeof count !== "number" || !(count >= 0) || (i > 0 && count < (counts[i - 1] as number))) {
          fail("bucket counts must be cumulative: non-negative and never decreasing");
        }
      }
      if (typeof s.sum !== "number" || typeof s.count !== "number") fail("sum and count must be numbers");
      if (s.count !== counts[counts.length - 1]) fail("count must equal the +Inf bucket");
      const exemplars = (series as { exemplars?: unknown }).exemplars;
      if (exemplars !== undefined) {
        if (!Array.isArray(exemplars) || exemplars.length > buckets.length) {
          fail("exemplars must be an array with at most one exemplar per bucket");
        }
        for (const exemplar of exemplars as unknown[]) {
          if (exemplar !== undefined) checkCollectedExemplar(exemplar, name);
        }
      }
      const native = (series as { native?: unknown }).native;
      if (native !== undefined) checkNative(native, fail);
    } else if (family.type === "summary") {
      const s = series as { sum?: unknown; count?: unknown; quantiles?: unknown };
      if (typeof s.sum !== "number" || typeof s.count !== "number") fail("sum and count must be numbers");
      if (s.quantiles !== undefined) {
        if (!Array.isArray(s.quantiles)) fail("quantiles must be an array of { quantile, value }");
        let previous = -1;
        for (const q of s.quantiles as unknown[]) {
          const { quantile, value } = (q ?? {}) as { quantile?: unknown; value?: unknown };
          if (typeof quantile !== "number" || !(quantile >= 0 && quantile <= 1) || !(quantile > previous)) {
            fail("each quantile must be a number between 0 and 1, in ascending order, given once");
          }
          if (typeof value !== "number") fail("each quantile needs a number value (NaN for none)");
          previous = quantile as number;
        }
      }
    } else {
      const value = (series as { value?: unknown }).value;
      if (typeof value !== "number") fail("each series needs a number value");
      if (family.type === "counter" && !((value as number) >= 0)) fail("counter values must be >= 0");
      if (family.type === "info" && value !== 1) fail("info values must be 1");
      if (family.type === "stateset") {
        if (value !== 0 && value !== 1) fail("state set values must be 0 or 1");
        if (typeof labels[name] !== "string") fail(`each series needs the state label "${name}"`);
      }
      const exemplar = (series as { exemplar?: unknown }).exemplar;
      if (exemplar !== undefined) {
        if (family.type !== "counter") fail("only counters and histograms have exemplars");
        checkCollectedExemplar(exemplar, name);
      }
    }
  }
  if (family.type === "stateset") {
    const series = groupStates(family.series, name);
    if (series !== family.series) return { ...family, series };
  }
  return exposed === name ? family : { ...family, name: exposed };
}

// The native buckets of a histogram series a custom collector returns.
function checkNative(native: unknown, fail: (why: string) => never): void {
  const n = native as {
    schema?: unknown;
    zeroThreshold?: unknown;
    zeroCount?: unknown;
    positive?: unknown;
    negative?: unknown;
  };
  if (typeof n !== "object" || n === null) fail("native must be an object");
  if (typeof n.schema !== "number" || !Number.isInteger(n.schema) || n.schema < -4 || n.schema > 8) {
    fail("native.schema must be a whole number from -4 to 8");
  }
  if (typeof n.zeroThreshold !== "number" || !(n.zeroThreshold >= 0 && n.zeroThreshold < Infinity)) {
    fail("native.zeroThreshold must be a finite number of at least 0");
  }
  if (typeof n.zeroCount !== "number" || !(n.zeroCount >= 0)) fail("native.zeroCount must be a number >= 0");
  for (const side of ["positive", "negative"] as const) {
    const buckets = n[side];
    if (!Array.isArray(buckets)) fail(`native.${side} must be an array of { index, count }`);
    let previous = -Infinity;
    for (const bucket of buckets as unknown[]) {
      const { index, count } = (bucket ?? {}) as { index?: unknown; count?: unknown };
      if (typeof index !== "number" || !Number.isInteger(index) || !(index > previous)) {
        fail(`native.${side} indices must be whole numbers in ascending order, each given once`);
      }
      if (typeof count !== "number" || !(count >= 0)) fail(`native.${side} counts must be numbers >= 0`);
      previous = index as number;
    }
  }
}

// An exemplar a custom collector returns: checked as one recorded by a metric is.
function checkCollectedExemplar(exemplar: unknown, family: string): void {
  const e = exemplar as { labels?: unknown; value?: unknown; timestamp?: unknown } | null;
  if (typeof e !== "object" || e === null || typeof e.value !== "number") {
    throw new TypeError(
      `Invalid family "${family}" from a custom collector: an exemplar needs labels and a number value`,
    );
  }
  checkExemplar(e.labels, e.value, e.timestamp, family);
}
