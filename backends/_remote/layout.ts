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
