// Where the remote backends keep their data in Redis: every key, and the field of every value.
// The layout is written here and nowhere else; the Lua scripts get keys and fields from here,
// through KEYS and ARGV.
//
//   {<prefix>}:m:<metric name>     hash    one field per value of every series of the metric
//   {<prefix>}:applied:<process>   string  the last batch sequence number applied for a process
//   {<prefix>}:instances           hash    instance id -> heartbeat expiry (unix ms)
//
// A field is `<labels>|<value>|<instance>`: the label set as a JSON array of name/value pairs
// sorted by name, the value's name (a histogram bucket's canonical bound or "sum", a summary's
// "count" or "sum", empty for counters and gauges), and the instance id of a per-instance gauge or
// of any per-instance metric (empty otherwise). A field is never valid JSON, so a client that parses JSON replies (as
// @upstash/redis does) leaves it alone. Value names and instance ids never hold "|", so a field
// splits from the end. Every key of a prefix shares the `{prefix}` hash tag: one Redis Cluster
// slot, so every script runs on a cluster too.
//
// The latest exemplar of a counter series or of a histogram bucket has a field of its own, next
// to its value's: the same field with "#" before the value name (`<labels>|#<value>|<instance>`;
// no value name starts with "#"), holding `<timestamp> <value> <labels as JSON>` (Unix seconds
// first, so the flush script compares timestamps without parsing JSON; never valid JSON as a
// whole, so a client that parses JSON replies leaves it alone either).

import type { Exemplar, Labels } from "../../core/types.ts";

export { labelsText, parseLabels } from "../../core/_labeltext.ts";

/** The hash of a metric. */
export function metricKey(prefix: string, name: string): string {
  return `{${prefix}}:m:${name}`;
}

/** The marker of the last batch applied for a process. */
export function appliedKey(prefix: string, processId: string): string {
  return `{${prefix}}:applied:${processId}`;
}

/** The hash of instance heartbeats. */
export function instancesKey(prefix: string): string {
  return `{${prefix}}:instances`;
}

/** The field of one value: labels text, value name and instance id. */
export function field(labels: string, value = "", instance = ""): string {
  return `${labels}|${value}|${instance}`;
}

/** The start every field of a series shares, whatever its value and instance. */
export function seriesPrefix(labels: string): string {
  return `${labels}|`;
}

/** The parts of a field. */
export interface FieldParts {
  /** The labels text. */
  readonly labels: string;
  /** The value name; empty for counters and gauges. */
  readonly value: string;
  /** The instance id; empty but for per-instance gauges and metrics. */
  readonly instance: string;
}

/** Splits a field into its parts; undefined for text that is not a field. */
export function parseField(text: string): FieldParts | undefined {
  const b = text.lastIndexOf("|");
  const a = text.lastIndexOf("|", b - 1);
  if (a < 0) return undefined;
  return { labels: text.slice(0, a), value: text.slice(a + 1, b), instance: text.slice(b + 1) };
}

// What starts the value name of an exemplar's field.
const EXEMPLAR_MARK = "#";

/** The field of the latest exemplar of a value: its value field, "#" before the value name. */
export function exemplarField(labels: string, value = "", instance = ""): string {
  return field(labels, EXEMPLAR_MARK + value, instance);
}

/**
 * The name of the value an exemplar field belongs to, from the value name a field parsed to;
 * undefined for the field of a value.
 */
export function exemplarOf(value: string): string | undefined {
  return value.startsWith(EXEMPLAR_MARK) ? value.slice(EXEMPLAR_MARK.length) : undefined;
}

/** What an exemplar field holds: `<timestamp> <value> <labels as JSON>`. */
export function exemplarText(exemplar: Exemplar): string {
  const timestamp = exemplar.timestamp ?? Date.now() / 1000;
  return `${timestamp} ${exemplar.value} ${JSON.stringify(exemplar.labels)}`;
}

/** The exemplar an exemplar field holds, frozen; undefined for text that is not one. */
export function parseExemplar(text: string): Exemplar | undefined {
  const a = text.indexOf(" ");
  const b = text.indexOf(" ", a + 1);
  if (a <= 0 || b <= a + 1) return undefined;
  const timestamp = Number(text.slice(0, a));
  const valueText = text.slice(a + 1, b);
  const value = Number(valueText);
  if (!(timestamp >= 0) || (value !== value && valueText !== "NaN")) return undefined;
  let labels: unknown;
  try {
    labels = JSON.parse(text.slice(b + 1));
  } catch {
    return undefined;
  }
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) return undefined;
  for (const label of Object.values(labels)) if (typeof label !== "string") return undefined;
  return Object.freeze({ labels: Object.freeze(labels) as Labels, value, timestamp });
}
