// Reading the protobuf exposition in tests, independently of the writer: a small decoder of the
// wire format (varints as BigInt, fixed64 as doubles, nested messages) that knows just enough of
// io/prometheus/client/metrics.proto to read a MetricFamily, and `protoc --decode`, the reference
// decoder, run on the vendored tests/fixtures/metrics.proto. A missing protoc fails the test with
// a message saying what to install; it never skips.

import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./_root.ts";
import { concat } from "./_validate.ts";

/** The protoc binary, from the Debian package `protobuf-compiler`. */
export const PROTOC = "protoc";

/** One field of a message as it is on the wire. */
export interface WireField {
  /** The field number. */
  field: number;
  /** The wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wire: number;
  /** A varint's value, unsigned. */
  varint?: bigint;
  /** A fixed64's eight bytes, read as a little-endian double. */
  double?: number;
  /** A length-delimited field's bytes. */
  bytes?: Uint8Array;
}

function readVarint(bytes: Uint8Array, at: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (at >= bytes.length) throw new Error("Truncated varint");
    const byte = bytes[at++];
    value |= BigInt(byte & 127) << shift;
    if (byte < 128) return [value, at];
    shift += 7n;
  }
  throw new Error("Varint longer than 10 bytes");
}

/**
 * Splits a body of length-delimited messages into the messages.
 *
 * @param body The response body.
 * @returns Each message's bytes, without its length.
 */
export function splitDelimited(body: Uint8Array): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let at = 0;
  while (at < body.length) {
    const [length, start] = readVarint(body, at);
    if (start - at > 5) throw new Error(`A length of ${start - at} bytes: Prometheus reads at most 5`);
    const end = start + Number(length);
    if (end > body.length) throw new Error(`A message of ${length} bytes runs past the body's end`);
    messages.push(body.subarray(start, end));
    at = end;
  }
  return messages;
}

/**
 * Reads the fields of one message, in wire order.
 *
 * @param bytes The message.
 * @returns Its fields.
 */
export function wireFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    const [key, next] = readVarint(bytes, at);
    at = next;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [varint, after] = readVarint(bytes, at);
      fields.push({ field, wire, varint });
      at = after;
    } else if (wire === 1) {
      if (at + 8 > bytes.length) throw new Error("Truncated fixed64");
      fields.push({ field, wire, double: view.getFloat64(at, true) });
      at += 8;
    } else if (wire === 2) {
      const [length, start] = readVarint(bytes, at);
      const end = start + Number(length);
      if (end > bytes.length) throw new Error(`Field ${field} runs past its message's end`);
      fields.push({ field, wire, bytes: bytes.subarray(start, end) });
      at = end;
    } else {
      throw new Error(`Unexpected wire type ${wire} of field ${field}`);
    }
  }
  return fields;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function zigzag(value: bigint): bigint {
  return (value >> 1n) ^ -(value & 1n);
}

// A repeated scalar, unpacked (one field each) or packed (one length-delimited field).
function repeatedVarints(fields: WireField[], field: number): bigint[] {
  const out: bigint[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(f.varint!);
    else {
      for (let at = 0; at < f.bytes!.length;) {
        const [value, next] = readVarint(f.bytes!, at);
        out.push(value);
        at = next;
      }
    }
  }
  return out;
}

function repeatedDoubles(fields: WireField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 1) out.push(f.double!);
    else {
      const view = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, f.bytes!.byteLength);
      for (let at = 0; at < f.bytes!.length; at += 8) out.push(view.getFloat64(at, true));
    }
  }
  return out;
}

// The last occurrence wins, as protobuf parsers merge a repeated optional scalar.
function last(fields: WireField[], field: number): WireField | undefined {
  let found: WireField | undefined;
  for (const f of fields) if (f.field === field) found = f;
  return found;
}

function all(fields: WireField[], field: number): Uint8Array[] {
  return fields.filter((f) => f.field === field).map((f) => f.bytes!);
}

const str = (f: WireField | undefined) => (f === undefined ? undefined : decoder.decode(f.bytes!));

/** A google.protobuf.Timestamp. */
export interface DecodedTimestamp {
  /** Seconds since the epoch. */
  seconds: bigint;
  /** Nanoseconds, 0 to 999,999,999. */
  nanos: number;
}

/** An Exemplar message. */
export interface DecodedExemplar {
  /** The label pairs, in wire order. */
  labels: [string, string][];
  /** The value. */
  value?: number;
  /** The timestamp, if present. */
  timestamp?: DecodedTimestamp;
}

/** A Bucket message of a classic histogram. */
export interface DecodedBucket {
  /** cumulative_count. */
  cumulativeCount?: bigint;
  /** cumulative_count_float. */
  cumulativeCountFloat?: number;
  /** upper_bound. */
  upperBound?: number;
  /** The bucket's exemplar. */
  exemplar?: DecodedExemplar;
}

/** A BucketSpan message. */
export interface DecodedSpan {
  /** Gap to the previous span, or the first span's start index. */
  offset: number;
  /** Consecutive buckets. */
  length: number;
}

/** A Histogram message. */
export interface DecodedHistogram {
  /** sample_count. */
  sampleCount?: bigint;
  /** sample_count_float. */
  sampleCountFloat?: number;
  /** sample_sum. */
  sampleSum?: number;
  /** The classic buckets. */
  buckets: DecodedBucket[];
  /** schema (sint32). */
  schema?: number;
  /** zero_threshold. */
  zeroThreshold?: number;
  /** zero_count. */
  zeroCount?: bigint;
  /** zero_count_float. */
  zeroCountFloat?: number;
  /** negative_span. */
  negativeSpans: DecodedSpan[];
  /** negative_delta (sint64). */
  negativeDeltas: bigint[];
  /** negative_count. */
  negativeCounts: number[];
  /** positive_span. */
  positiveSpans: DecodedSpan[];
  /** positive_delta (sint64). */
  positiveDeltas: bigint[];
  /** positive_count. */
  positiveCounts: number[];
}

/** A Summary message. */
export interface DecodedSummary {
  /** sample_count. */
  sampleCount?: bigint;
  /** sample_sum. */
  sampleSum?: number;
  /** The quantiles: [quantile, value]. */
  quantiles: [number | undefined, number | undefined][];
}

/** A Metric message. */
export interface DecodedMetric {
  /** The label pairs, in wire order. */
  labels: [string, string][];
  /** gauge.value, when the metric has a gauge. */
  gauge?: number;
  /** untyped.value, when the metric has an untyped. */
  untyped?: number;
  /** The counter, when the metric has one. */
  counter?: { value?: number; exemplar?: DecodedExemplar };
  /** The summary, when the metric has one. */
  summary?: DecodedSummary;
  /** The histogram, when the metric has one. */
  histogram?: DecodedHistogram;
  /** timestamp_ms. */
  timestampMs?: bigint;
}

/** A MetricFamily message. */
export interface DecodedFamily {
  /** name. */
  name?: string;
  /** help. */
  help?: string;
  /** type: 0 COUNTER, 1 GAUGE, 2 SUMMARY, 3 UNTYPED, 4 HISTOGRAM, 5 GAUGE_HISTOGRAM. */
  type?: number;
  /** unit. */
  unit?: string;
  /** The metrics. */
  metrics: DecodedMetric[];
}

function labelPairs(fields: WireField[]): [string, string][] {
  return all(fields, 1).map((bytes) => {
    const pair = wireFields(bytes);
    return [str(last(pair, 1)) ?? "", str(last(pair, 2)) ?? ""];
  });
}

function exemplar(bytes: Uint8Array): DecodedExemplar {
  const fields = wireFields(bytes);
  const out: DecodedExemplar = { labels: labelPairs(fields), value: last(fields, 2)?.double };
  const time = last(fields, 3);
  if (time !== undefined) {
    const t = wireFields(time.bytes!);
    const seconds = last(t, 1)?.varint ?? 0n;
    out.timestamp = { seconds: BigInt.asIntN(64, seconds), nanos: Number(last(t, 2)?.varint ?? 0n) };
  }
  return out;
}

function spans(fields: WireField[], field: number): DecodedSpan[] {
  return all(fields, field).map((bytes) => {
    const span = wireFields(bytes);
    return {
      offset: Number(zigzag(last(span, 1)?.varint ?? 0n)),
      length: Number(last(span, 2)?.varint ?? 0n),
    };
  });
}

function histogram(bytes: Uint8Array): DecodedHistogram {
  const f = wireFields(bytes);
  const schema = last(f, 5)?.varint;
  return {
    sampleCount: last(f, 1)?.varint,
    sampleCountFloat: last(f, 4)?.double,
    sampleSum: last(f, 2)?.double,
    buckets: all(f, 3).map((b) => {
      const bucket = wireFields(b);
      const ex = last(bucket, 3);
      return {
        cumulativeCount: last(bucket, 1)?.varint,
        cumulativeCountFloat: last(bucket, 4)?.double,
        upperBound: last(bucket, 2)?.double,
        ...(ex === undefined ? {} : { exemplar: exemplar(ex.bytes!) }),
      };
    }),
    schema: schema === undefined ? undefined : Number(zigzag(schema)),
    zeroThreshold: last(f, 6)?.double,
    zeroCount: last(f, 7)?.varint,
    zeroCountFloat: last(f, 8)?.double,
    negativeSpans: spans(f, 9),
    negativeDeltas: repeatedVarints(f, 10).map(zigzag),
    negativeCounts: repeatedDoubles(f, 11),
    positiveSpans: spans(f, 12),
    positiveDeltas: repeatedVarints(f, 13).map(zigzag),
    positiveCounts: repeatedDoubles(f, 14),
  };
}

function metric(bytes: Uint8Array): DecodedMetric {
  const f = wireFields(bytes);
  const out: DecodedMetric = { labels: labelPairs(f) };
  const inner = (field: number) => {
    const found = last(f, field);
    return found === undefined ? undefined : wireFields(found.bytes!);
  };
  const gauge = inner(2);
  if (gauge !== undefined) out.gauge = last(gauge, 1)?.double;
  const counter = inner(3);
  if (counter !== undefined) {
    const ex = last(counter, 2);
    out.counter = {
      value: last(counter, 1)?.double,
      ...(ex === undefined ? {} : { exemplar: exemplar(ex.bytes!) }),
    };
  }
  const summary = inner(4);
  if (summary !== undefined) {
    out.summary = {
      sampleCount: last(summary, 1)?.varint,
      sampleSum: last(summary, 2)?.double,
      quantiles: all(summary, 3).map((q) => {
        const quantile = wireFields(q);
        return [last(quantile, 1)?.double, last(quantile, 2)?.double];
      }),
    };
  }
  const untyped = inner(5);
  if (untyped !== undefined) out.untyped = last(untyped, 1)?.double;
  const h = last(f, 7);
  if (h !== undefined) out.histogram = histogram(h.bytes!);
  const ts = last(f, 6);
  if (ts !== undefined) out.timestampMs = BigInt.asIntN(64, ts.varint!);
  return out;
}

/**
 * Decodes one MetricFamily message.
 *
 * @param bytes The message, without its length.
 * @returns What it holds.
 */
export function decodeFamily(bytes: Uint8Array): DecodedFamily {
  const f = wireFields(bytes);
  const type = last(f, 3)?.varint;
  return {
    name: str(last(f, 1)),
    help: str(last(f, 2)),
    type: type === undefined ? undefined : Number(type),
    unit: str(last(f, 5)),
    metrics: all(f, 4).map(metric),
  };
}

/**
 * Decodes a whole delimited body.
 *
 * @param body The response body.
 * @returns Its families, in order.
 */
export function decodeBody(body: Uint8Array): DecodedFamily[] {
  return splitDelimited(body).map(decodeFamily);
}

/**
 * Expands native buckets back to `{ index, count }` from spans and deltas (or absolute counts),
 * empty buckets inside spans included.
 *
 * @param spans The spans.
 * @param counts The deltas (BigInt) or the absolute counts (numbers).
 * @returns The buckets by ascending index.
 */
export function expandNative(
  spans: readonly DecodedSpan[],
  counts: readonly bigint[] | readonly number[],
): { index: number; count: number | bigint }[] {
  const out: { index: number; count: number | bigint }[] = [];
  let index = 0;
  let at = 0;
  let running = 0n;
  for (const span of spans) {
    // The first span's offset is its start; every other one's, the gap after the previous span.
    index += span.offset;
    for (let j = 0; j < span.length; j++) {
      const c = counts[at++];
      if (c === undefined) throw new Error("Fewer counts than the spans hold");
      if (typeof c === "bigint") {
        running += c;
        out.push({ index, count: running });
      } else {
        out.push({ index, count: c });
      }
      index++;
    }
  }
  if (at !== counts.length) throw new Error(`The spans hold ${at} buckets, the counts ${counts.length}`);
  return out;
}

/**
 * Runs `protoc --decode=io.prometheus.client.MetricFamily` on one message.
 *
 * @param message The message, without its length.
 * @returns protoc's text format of it.
 * @throws {Error} When protoc is missing or cannot parse the message.
 */
export function protocDecode(message: Uint8Array): Promise<string> {
  const args = [
    "--decode=io.prometheus.client.MetricFamily",
    `--proto_path=${join(ROOT, "tests", "fixtures")}`,
    "metrics.proto",
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(PROTOC, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    child.stdout.on("data", (chunk: Uint8Array) => out.push(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => err.push(chunk));
    child.on("error", (error: Error & { code?: string }) => {
      reject(
        new Error(
          error.code === "ENOENT"
            ? "protoc not found: install the Debian package `protobuf-compiler` (and `libprotobuf-dev`, " +
              "which holds google/protobuf/timestamp.proto)"
            : `Cannot run protoc: ${error}`,
        ),
      );
    });
    child.on("close", (code: number | null) => {
      const text = new TextDecoder();
      const stderr = text.decode(concat(err)).trim();
      if (code === 0) return resolve(text.decode(concat(out)));
      const hint = stderr.includes("google/protobuf/timestamp.proto")
        ? " (install the Debian package `libprotobuf-dev`, which holds google/protobuf/timestamp.proto)"
        : "";
      reject(new Error(`protoc exit ${code}: ${stderr}${hint}`));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(message);
  });
}
