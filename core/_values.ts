// The names of a series' values, as backends receive them: a histogram's canonical bucket
// bounds and "sum", a summary's "count" and "sum".

import { formatBound } from "./_format.ts";
import type { MetricType } from "./types.ts";

const SUMMARY: readonly string[] = Object.freeze(["count", "sum"]);
const HISTOGRAMS = new WeakMap<readonly number[], readonly string[]>();

/**
 * The names of the values of one series of this type, in position order; undefined for a
 * counter or gauge, which have a single value. Made once per set of histogram bounds.
 */
export function valueNames(type: MetricType, buckets?: readonly number[]): readonly string[] | undefined {
  if (type === "summary") return SUMMARY;
  if (type !== "histogram" || buckets === undefined) return undefined;
  let names = HISTOGRAMS.get(buckets);
  if (names === undefined) {
    HISTOGRAMS.set(buckets, names = Object.freeze([...buckets.map(formatBound), "sum"]));
  }
  return names;
}
