// Where the remote backends keep their data in Redis: every key, and the field of every value.
// The layout is written here and nowhere else; the Lua scripts get keys and fields from here,
// through KEYS and ARGV.
//
//   {<tag>}:m:<metric name>        hash    one field per value of the metric's series in a shard
//   {<tag>}:t:<metric name>        zset    the last write of each of those series (Redis time, ms)
//   {<tag>}:applied:<process>      string  the last batch sequence number applied for a process
//   {<prefix>}:instances           hash    instance id -> heartbeat expiry (unix ms)
//
// The series of a metric are spread over SHARDS shards by a hash of the metric's name and the
// series' labels. Each shard has its own Redis Cluster hash tag, `<prefix>:<n>`, where n is chosen
// so that the 16 tags fall in 16 equal ranges of the cluster's 16,384 slots: on a cluster whose
// masters hold equal ranges (as `redis-cli --cluster create` makes them), every master holds an
// equal part of every large metric. A script only ever touches the keys of one shard (and the
// instances hash), so the scripts run on a cluster too; a process applies its batches at most
// once per shard.
//
// A field is `<labels>|<value>|<instance>`: the label set as a JSON array of name/value pairs
// sorted by name, the value's name (a histogram bucket's canonical bound or "sum", a summary's
// "count" or "sum", empty for counters and gauges), and the instance id of a per-instance gauge or
// of any per-instance metric (empty otherwise). A field is never valid JSON, so a client that
// parses JSON replies (as @upstash/redis does) leaves it alone. Value names and instance ids never
// hold "|", so a field splits from the end.
//
// The last-write index has one member per series and instance, `<labels>|<instance>`, scored with
// the Redis time of the last flush that wrote it; a flush deletes, a few at a time, the series
// whose score is older than the expiry, so a series no process writes any more disappears even
// while others of its metric stay busy.
//
// The latest exemplar of a counter series or of a histogram bucket has a field of its own, next
// to its value's: the same field with "#" before the value name (`<labels>|#<value>|<instance>`;
// no value name starts with "#"), holding `<timestamp> <value> <labels as JSON>` (Unix seconds
// first, so the flush script compares timestamps without parsing JSON; never valid JSON as a
// whole, so a client that parses JSON replies leaves it alone either).

import type { Exemplar, Labels } from "../../core/types.ts";

export { labelsText, parseLabels } from "../../core/_labeltext.ts";

/** How many shards the series of every metric are spread over. */
export const SHARDS = 16;

// CRC16/XMODEM, as Redis Cluster hashes keys to slots.
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    table[i] = crc;
  }
  return table;
})();

/** The Redis Cluster slot of a key: CRC16 of its hash tag (or of the whole key) modulo 16384. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of new TextEncoder().encode(key)) {
    crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[(crc >> 8) ^ byte];
  }
  return crc & 16383;
}

const TAGS = new Map<string, readonly string[]>();

/**
 * The hash tags of a prefix's shards: `<prefix>:<n>`, the n of shard i the smallest whose slot
 * falls in the i-th sixteenth of the slots.
 */
export function shardTags(prefix: string): readonly string[] {
  let tags = TAGS.get(prefix);
  if (tags !== undefined) return tags;
  const found: string[] = new Array(SHARDS);
  let left = SHARDS;
  for (let n = 0; left > 0; n++) {
    const tag = `${prefix}:${n}`;
    const shard = Math.floor(keySlot(tag) * SHARDS / 16384);
    if (found[shard] === undefined) {
      found[shard] = tag;
      left--;
    }
  }
  TAGS.set(prefix, tags = Object.freeze(found));
  return tags;
}

/** The shard of a series: a hash (FNV-1a) of its metric's name and its labels text. */
export function shardOf(name: string, labels: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ 10, 0x01000193);
  for (let i = 0; i < labels.length; i++) hash = Math.imul(hash ^ labels.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % SHARDS;
}

/** The hash of a metric's series in one shard. */
export function metricKey(prefix: string, name: string, shard: number): string {
  return `{${shardTags(prefix)[shard]}}:m:${name}`;
}

/** The last-write index of a metric's series in one shard. */
export function indexKey(prefix: string, name: string, shard: number): string {
  return `{${shardTags(prefix)[shard]}}:t:${name}`;
}

/** A metric's hash and last-write index in every shard. */
export interface MetricKeys {
  /** The metric's hash in each shard. */
  readonly hashes: readonly string[];
  /** The metric's last-write index in each shard. */
  readonly indexes: readonly string[];
}

/** A metric's keys in every shard, each made flat once for all its series. */
export function metricKeys(prefix: string, name: string): MetricKeys {
  const hashes: string[] = [];
  const indexes: string[] = [];
  for (let shard = 0; shard < SHARDS; shard++) {
    hashes.push(whole(metricKey(prefix, name, shard)));
    indexes.push(whole(indexKey(prefix, name, shard)));
  }
  return { hashes, indexes };
}

/**
 * The text as one flat piece. A string joined with `+` or a template is a tree of its pieces until
 * it is first read whole; reading a character makes it one flat piece. The strings a series keeps
 * for every flush are made whole with the series: made in the first flush instead, a million new
 * series would leave a million new strings for the engine's young-generation collector to copy,
 * holding the event loop.
 */
export function whole(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** The marker of the last batch applied for a process in one shard. */
export function appliedKey(prefix: string, shard: number, processId: string): string {
  return `{${shardTags(prefix)[shard]}}:applied:${processId}`;
}

/** The hash of instance heartbeats. */
export function instancesKey(prefix: string): string {
  return `{${prefix}}:instances`;
}

/** The member of a series (and instance) in the last-write index. */
export function indexMember(labels: string, instance = ""): string {
  return `${labels}|${instance}`;
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
